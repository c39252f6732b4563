// A gRPC load generator over raw HTTP/2 (h2-wire.ts: frames read and written
// on a plain TCP socket; no node:http2, whose client costs more CPU per call
// than the no-op server it measures, and no grpc-js client): N connections,
// each request a pre-encoded gRPC frame (5-byte prefix + PlaceOrderRequest
// bytes) with its own request id and x-user-id, behind a header block encoded
// once. Two modes:
//
//   closed  N connections × M streams each, a new call as soon as one ends,
//           for a duration (after a warm-up) or for a fixed number of calls;
//   open    a fixed offered rate, whatever the server does (for overload).
//
// Per call it records the grpc-status (trailers, or headers for a
// trailers-only answer), the ErrorInfo reason of refusals, and the latency in
// a fixed-bucket histogram per status. runLoadInChild() runs it in a forked
// process, so the generator has its own event loop; results come back by IPC.
import { fork } from "node:child_process";
import { fileURLToPath } from "node:url";
import { Metadata, status as grpcStatus } from "@grpc/grpc-js";
import { DETAILS_TRAILER, PlaceOrderRequest, USER_ID_HEADER, rejectionOf } from "@seckill/sdk";
import { connect as connectH2, type ClientStream, type H2Connection, type StreamHandler } from "./h2-wire.js";
import { Histogram, type HistogramData } from "./histogram.js";
import { encodeHeaders, type HeaderField } from "./hpack.js";

export const PLACE_ORDER_PATH = "/seckill.v1.OrderService/PlaceOrder";

export interface LoadOptions {
  /** host:port of the gRPC server. */
  address: string;
  saleId: string;
  mode: "closed" | "open";
  connections: number;
  /** Closed loop: concurrent streams per connection. */
  streams: number;
  /** Closed loop: send exactly this many calls (no warm-up), instead of running for `seconds`. */
  calls?: number;
  /** Measured window, after the warm-up. */
  seconds?: number;
  warmupSeconds?: number;
  /** Open loop: calls offered per second. */
  rate?: number;
  /** Open loop: calls in flight beyond this are not sent (counted as notSent). */
  maxInFlight?: number;
  /** Pre-encoded requests for a timed run; the run stops early if they run out. */
  poolSize?: number;
  /** Sent as grpc-timeout; the client cancels a call 1 s after it. 0: no deadline. */
  deadlineMs?: number;
  /** Prefix of the request ids and user ids, unique per run. */
  tag: string;
  path?: string;
}

type HistogramJson = { buckets: HistogramData; sumUs: number; maxUs: number };

export interface LoadResult {
  mode: "closed" | "open";
  sent: number;
  /** Calls sent inside the measured window (the offered load actually achieved). */
  sentInWindow: number;
  /** Every call by outcome: grpc status names, CLIENT_TIMEOUT, NO_STATUS (stream or connection failed). */
  statuses: Record<string, number>;
  /** ErrorInfo reasons of refusals (SOLD_OUT, ...). */
  reasons: Record<string, number>;
  /** The measured window: completions inside it, per outcome. */
  window: { seconds: number; completed: Record<string, number> };
  /** Latency of the calls started inside the window (all calls in count mode), per outcome. */
  latency: Record<string, HistogramJson>;
  /** Epoch ms of the last OK answer (0 if none). */
  lastOkAt: number;
  /** Epoch ms when the first call was sent. */
  firstSentAt: number;
  poolExhausted: boolean;
  /** Open loop: calls skipped because maxInFlight were outstanding or the sender was over 100 ms behind. */
  notSent: number;
  /** Open loop: the longest the sender fell behind its schedule, ms. */
  maxLagMs: number;
  /** CPU the generator process used during the run, ms (user + system). */
  cpuMs: number;
  errors: string[];
}

const CLIENT_TIMEOUT = "CLIENT_TIMEOUT";
const NO_STATUS = "NO_STATUS";

export function statusName(code: number): string {
  return (grpcStatus as unknown as Record<number, string>)[code] ?? `CODE_${code}`;
}

// ------------------------------------------------------------ request pool

/**
 * Pre-encoded gRPC frames, and each call's x-user-id as an HPACK field to
 * append to the constant header block: no encoding in the hot loop.
 */
interface RequestPool {
  size: number;
  frame(i: number): Buffer;
  userField(i: number): Buffer;
}

function buildPool(saleId: string, tag: string, size: number): RequestPool {
  const frames: Uint8Array[] = [];
  const userFields: Uint8Array[] = [];
  for (let i = 0; i < size; i++) {
    const message = PlaceOrderRequest.encode({ saleId, quantity: 1, requestId: `${tag}-r${i}`, purchaseToken: "", retry: false }).finish();
    const frame = Buffer.allocUnsafe(5 + message.length);
    frame.writeUInt8(0, 0); // not compressed
    frame.writeUInt32BE(message.length, 1);
    frame.set(message, 5);
    frames.push(frame);
    userFields.push(encodeHeaders([[USER_ID_HEADER, `${tag}-u${i}`]]));
  }
  return { size, frame: slabOf(frames), userField: slabOf(userFields) };
}

/** Byte strings end to end in one buffer (far less memory than a buffer each); returns the i-th as a view. */
function slabOf(parts: readonly Uint8Array[]): (i: number) => Buffer {
  const offsets = new Uint32Array(parts.length + 1);
  parts.forEach((part, i) => (offsets[i + 1] = offsets[i] + part.length));
  const slab = Buffer.allocUnsafe(offsets[parts.length]);
  parts.forEach((part, i) => slab.set(part, offsets[i]));
  return (i) => slab.subarray(offsets[i], offsets[i + 1]);
}

// ---------------------------------------------------------------- the run

interface Connection {
  wire: H2Connection;
  alive: boolean;
}

/** One call, and the handler of its stream. */
class Call implements StreamHandler {
  stream!: ClientStream;
  /** The grpc-status; -1 until one arrives. */
  code = -1;
  details: string | undefined = undefined;
  timedOut = false;

  constructor(
    readonly conn: Connection,
    readonly start: number,
    private readonly finish: (call: Call) => void,
  ) {}

  // A trailers-only answer carries the status in its one header block, others in the trailers.
  onHeaders(fields: HeaderField[]): void {
    let code: string | undefined;
    let details: string | undefined;
    for (const [name, value] of fields) {
      if (name === "grpc-status") code = value;
      else if (name === DETAILS_TRAILER) details = value;
    }
    if (code !== undefined) {
      this.code = Number(code);
      this.details = details;
    }
  }

  // A stream reset or a failed connection ends it without a status.
  onEnd(): void {
    this.finish(this);
  }
}

async function connect(address: string, errors: string[]): Promise<Connection> {
  const colon = address.lastIndexOf(":");
  const host = address.slice(0, colon).replace(/^\[(.*)\]$/, "$1"); // [::1]:port
  const state = { alive: true };
  const wire = await connectH2({
    host,
    port: Number(address.slice(colon + 1)),
    onEnd: (why) => {
      if (state.alive && errors.length < 20) errors.push(why);
      state.alive = false;
    },
  });
  return Object.assign(state, { wire });
}

export async function runLoad(options: LoadOptions): Promise<LoadResult> {
  const countMode = options.mode === "closed" && options.calls !== undefined;
  const warmupMs = countMode ? 0 : (options.warmupSeconds ?? 0) * 1000;
  const windowMs = countMode ? Infinity : (options.seconds ?? 10) * 1000;
  const poolSize = countMode ? options.calls! : (options.poolSize ?? 100_000);
  const deadlineMs = options.deadlineMs ?? 5000;
  const path = options.path ?? PLACE_ORDER_PATH;
  const constantHeaders: HeaderField[] = [
    [":method", "POST"],
    [":scheme", "http"],
    [":path", path],
    [":authority", options.address],
    ["content-type", "application/grpc"],
    ["te", "trailers"],
  ];
  if (deadlineMs > 0) constantHeaders.push(["grpc-timeout", `${deadlineMs}m`]);
  const headerBlock = encodeHeaders(constantHeaders);

  const pool = buildPool(options.saleId, options.tag, poolSize);
  const errors: string[] = [];
  const conns = await Promise.all(Array.from({ length: options.connections }, () => connect(options.address, errors)));

  const statuses = new Map<string, number>();
  const windowCounts = new Map<string, number>();
  const histograms = new Map<string, Histogram>();
  const reasons = new Map<string, number>();
  const reasonCache = new Map<string, string>();
  const inFlight = new Set<Call>();
  const bump = (m: Map<string, number>, key: string) => m.set(key, (m.get(key) ?? 0) + 1);

  let next = 0;
  let sent = 0;
  let sentInWindow = 0;
  let notSent = 0;
  let maxLagMs = 0;
  let stopping = false;
  let lastOkAt = 0;
  let lastCompletion = 0;
  const cpuStart = process.cpuUsage();
  const t0 = performance.now();
  const firstSentAt = Date.now();
  const windowStart = t0 + warmupMs;
  const windowEnd = windowStart + windowMs;
  let done!: () => void;
  const finished = new Promise<void>((resolve) => (done = resolve));

  const reasonOf = (details: string, code: number): string => {
    let reason = reasonCache.get(details);
    if (reason === undefined) {
      const metadata = new Metadata();
      metadata.set(DETAILS_TRAILER, Buffer.from(details, "base64"));
      reason = rejectionOf({ code, details: "", metadata }).reason ?? "(none)";
      if (reasonCache.size < 256) reasonCache.set(details, reason);
    }
    return reason;
  };

  const finish = (call: Call) => {
    inFlight.delete(call);
    const now = performance.now();
    lastCompletion = now;
    const name = call.timedOut ? CLIENT_TIMEOUT : call.code < 0 ? NO_STATUS : statusName(call.code);
    bump(statuses, name);
    if (call.code === 0) lastOkAt = now;
    else if (call.details) bump(reasons, reasonOf(call.details, call.code));
    if (countMode || (call.start >= windowStart && call.start < windowEnd)) {
      let h = histograms.get(name);
      if (!h) histograms.set(name, (h = new Histogram()));
      h.record((now - call.start) * 1000);
    }
    if (countMode || (now >= windowStart && now < windowEnd)) bump(windowCounts, name);
    if (!call.conn.alive && !conns.some((c) => c.alive)) stopping = true;
    if (options.mode === "closed" && !stopping && call.conn.alive) send(call.conn);
    if (inFlight.size === 0 && (stopping || (countMode && next >= pool.size))) done();
  };

  const send = (conn: Connection): void => {
    if (next >= pool.size) {
      if (!countMode) stopping = true;
      if (inFlight.size === 0) done();
      return;
    }
    const i = next++;
    const call = new Call(conn, performance.now(), finish);
    try {
      call.stream = conn.wire.request([headerBlock, pool.userField(i)], pool.frame(i), call);
    } catch (error) {
      conn.alive = false;
      if (errors.length < 20) errors.push(`request: ${(error as Error).message}`);
      bump(statuses, NO_STATUS);
      return;
    }
    sent++;
    if (call.start >= windowStart && call.start < windowEnd) sentInWindow++;
    inFlight.add(call);
  };

  // Calls the server never answers are cancelled a second after their deadline.
  const sweeper = setInterval(() => {
    if (deadlineMs <= 0) return;
    const cutoff = performance.now() - deadlineMs - 1000;
    for (const call of inFlight) {
      if (call.start > cutoff) break; // insertion order is start order
      if (!call.timedOut) {
        call.timedOut = true;
        call.stream.cancel(); // ends the call at once: finish() runs from here
      }
    }
  }, 100);

  let stopTimer: NodeJS.Timeout | undefined;
  let ticker: NodeJS.Timeout | undefined;
  if (!countMode) {
    stopTimer = setTimeout(() => {
      stopping = true;
      if (ticker) clearInterval(ticker);
      if (inFlight.size === 0) done();
    }, warmupMs + windowMs);
  }

  if (options.mode === "closed") {
    for (const conn of conns) for (let s = 0; s < options.streams; s++) send(conn);
  } else {
    const rate = options.rate ?? 1000;
    const maxInFlight = options.maxInFlight ?? 20_000;
    let scheduled = 0;
    let rr = 0;
    let lastTick = t0;
    // A stalled sender must not catch up in one synchronous burst (that stall
    // feeds itself): per tick at most the schedule of the time since the last
    // tick plus 10 ms, and what is more than 100 ms overdue is skipped and
    // counted as not sent.
    const maxBehind = Math.max(1, Math.ceil(rate / 10));
    const tick = () => {
      const now = performance.now();
      maxLagMs = Math.max(maxLagMs, now - lastTick - 1);
      const perTick = Math.max(1, Math.ceil(((now - lastTick + 10) * rate) / 1000));
      lastTick = now;
      // Never more than the whole run's schedule, even for a tick that lands
      // just after the end but before the stop timer fires.
      const due = Math.min(Math.floor(((warmupMs + windowMs) * rate) / 1000), Math.floor(((now - t0) * rate) / 1000));
      if (due - scheduled > maxBehind) {
        notSent += due - scheduled - maxBehind;
        scheduled = due - maxBehind;
      }
      for (let n = 0; n < perTick && scheduled < due && !stopping; n++) {
        scheduled++;
        if (inFlight.size >= maxInFlight) {
          notSent++;
          continue;
        }
        const conn = conns[rr++ % conns.length];
        if (conn.alive) send(conn);
        else bump(statuses, NO_STATUS);
      }
    };
    ticker = setInterval(tick, 1);
  }

  await finished;
  clearInterval(sweeper);
  clearTimeout(stopTimer);
  if (ticker) clearInterval(ticker);
  const cpu = process.cpuUsage(cpuStart);
  await Promise.all(conns.map((c) => c.wire.close()));

  const seconds = countMode ? (lastCompletion - t0) / 1000 : windowMs / 1000;
  return {
    mode: options.mode,
    sent,
    sentInWindow,
    statuses: Object.fromEntries(statuses),
    reasons: Object.fromEntries(reasons),
    window: { seconds, completed: Object.fromEntries(windowCounts) },
    latency: Object.fromEntries([...histograms].map(([k, h]) => [k, h.toData()])),
    lastOkAt: lastOkAt === 0 ? 0 : firstSentAt + (lastOkAt - t0),
    firstSentAt,
    poolExhausted: !countMode && next >= pool.size,
    notSent,
    maxLagMs: Math.round(maxLagMs),
    cpuMs: Math.round((cpu.user + cpu.system) / 1000),
    errors,
  };
}

// ------------------------------------------------------ the child process

const WORKER = fileURLToPath(new URL("./h2-load-worker.ts", import.meta.url));
const REPO_ROOT = fileURLToPath(new URL("..", import.meta.url));

/** Runs the generator in a forked process (its own event loop); kills it after timeoutMs. */
export function runLoadInChild(options: LoadOptions, timeoutMs = 600_000): Promise<LoadResult> {
  return new Promise((resolve, reject) => {
    const child = fork(WORKER, [], { cwd: REPO_ROOT, execArgv: ["--import", "tsx"], stdio: ["ignore", "inherit", "inherit", "ipc"] });
    let settled = false;
    const settle = (fn: () => void) => {
      if (settled) return;
      settled = true;
      clearTimeout(timer);
      fn();
    };
    const timer = setTimeout(() => {
      child.kill("SIGKILL");
      settle(() => reject(new Error(`load generator did not finish within ${timeoutMs / 1000} s`)));
    }, timeoutMs);
    child.on("message", (message: { result?: LoadResult; error?: string }) => {
      if (message.result) settle(() => resolve(message.result!));
      else settle(() => reject(new Error(`load generator failed: ${message.error}`)));
    });
    child.on("error", (error) => settle(() => reject(error)));
    // "exit" can come before the last IPC message has been read: give it a moment.
    child.on("exit", (code, signal) =>
      setTimeout(() => settle(() => reject(new Error(`load generator exited (${signal ?? `code ${code}`}) without a result`))), 2000),
    );
    child.send({ options });
  });
}

// ------------------------------------------------------- reading a result

/** Completions per second of the given outcomes inside the window. */
export function rateOf(result: LoadResult, ...names: string[]): number {
  const n = names.reduce((sum, name) => sum + (result.window.completed[name] ?? 0), 0);
  return result.window.seconds > 0 ? n / result.window.seconds : 0;
}

/** All calls, inside the window or not, of the given outcomes (every outcome when none given). */
export function countOf(result: LoadResult, ...names: string[]): number {
  const keys = names.length > 0 ? names : Object.keys(result.statuses);
  return keys.reduce((sum, name) => sum + (result.statuses[name] ?? 0), 0);
}

/** Latency histogram of the given outcomes (every outcome when none given). */
export function latencyOf(result: LoadResult, ...names: string[]): Histogram {
  const keys = names.length > 0 ? names : Object.keys(result.latency);
  const merged = new Histogram();
  for (const key of keys) if (result.latency[key]) merged.merge(Histogram.fromData(result.latency[key]));
  return merged;
}
