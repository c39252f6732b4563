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
//           Call k is scheduled at t0 + k/rate, and its latency counts
//           from that time, not from when it left: a sender held back (by
//           its own event loop, or by maxInFlight calls outstanding) sends
//           the calls it owes as soon as it can, each counted as late when it
//           left LATE_AFTER_MS or more after its time. No call of the
//           schedule is skipped (that would hide the stall: coordinated
//           omission).
//
// Per call it records the grpc-status (trailers, or headers for a
// trailers-only answer), the ErrorInfo reason of refusals, and the latency in
// a fixed-bucket histogram per status. A refusal carrying the edge's
// `x-seckill-limited` header (Envoy's PlaceOrder token bucket) is its own
// outcome, `RESOURCE_EXHAUSTED/edge`. With `tokens`, every call carries its
// own purchase token (x-purchase-token, ES256, signed with the gateway's key
// while the pool is built). runLoadInChild() runs it in a forked process, so
// the generator has its own event loop; results come back by IPC, and the
// parent is told when the pool is built and the connections are open, so it
// can start measuring then.
import { fork } from "node:child_process";
import { createPrivateKey } from "node:crypto";
import { fileURLToPath } from "node:url";
import { Metadata, status as grpcStatus } from "@grpc/grpc-js";
import { DETAILS_TRAILER, PURCHASE_TOKEN_HEADER, PlaceOrderRequest, SALE_ID_HEADER, USER_ID_HEADER, rejectionOf } from "@seckill/sdk";
import { signPurchaseToken } from "../gateway/access/jwt.js";
import { connect as connectH2, type ClientStream, type H2Connection, type StreamHandler } from "./h2-wire.js";
import { Histogram, type HistogramData } from "./histogram.js";
import { encodeHeaders, literalField, type HeaderField } from "./hpack.js";

export const PLACE_ORDER_PATH = "/seckill.v1.OrderService/PlaceOrder";
/** Open loop: a call that leaves this long or longer after its scheduled time counts as sent late. */
export const LATE_AFTER_MS = 10;
/** The edge's PlaceOrder token bucket refusal (RESOURCE_EXHAUSTED with `x-seckill-limited`). */
export const EDGE_LIMITED = "RESOURCE_EXHAUSTED/edge";
const LIMITED_HEADER = "x-seckill-limited";

/** What the generator needs to sign purchase tokens as the gateway does. */
export interface TokenSigner {
  kid: string;
  /** PKCS#8 PEM of the gateway's signing key. */
  privateKeyPem: string;
  ttlMs: number;
}

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
  /** Open loop: at most this many calls outstanding; the schedule's next calls wait (and their time runs). */
  maxInFlight?: number;
  /** Pre-encoded requests for a timed run; the run stops early if they run out. */
  poolSize?: number;
  /** Sent as grpc-timeout; the client cancels a call 1 s after it. 0: no deadline. */
  deadlineMs?: number;
  /** Prefix of the request ids and user ids, unique per run. */
  tag: string;
  path?: string;
  /** A purchase token per call (sub = the call's user, sale = saleId), in x-purchase-token. */
  tokens?: TokenSigner;
}

type HistogramJson = { buckets: HistogramData; sumUs: number; maxUs: number };

export interface LoadResult {
  mode: "closed" | "open";
  sent: number;
  /** Calls sent whose start (open loop: scheduled time) is inside the measured window: the offered load achieved. */
  sentInWindow: number;
  /** Every call by outcome: grpc status names, CLIENT_TIMEOUT, NO_STATUS (stream or connection failed). */
  statuses: Record<string, number>;
  /** ErrorInfo reasons of refusals (SOLD_OUT, ...). */
  reasons: Record<string, number>;
  /** The measured window: completions inside it, per outcome. */
  window: { seconds: number; completed: Record<string, number> };
  /** Latency of the calls started inside the window (all calls in count mode), per outcome; open loop: from the scheduled time. */
  latency: Record<string, HistogramJson>;
  /** Epoch ms of the last OK answer (0 if none). */
  lastOkAt: number;
  /** Epoch ms when the first call was sent. */
  firstSentAt: number;
  poolExhausted: boolean;
  /** Open loop: calls of the schedule never sent (the request pool ran out, or no connection was left). */
  notSent: number;
  /** Open loop: calls sent LATE_AFTER_MS or more after their scheduled time (all of them, and those scheduled inside the window). */
  late: number;
  lateInWindow: number;
  /** Open loop: how late the calls scheduled inside the window left (send time − scheduled time). */
  sendLag: HistogramJson;
  /** Open loop: the longest a call waited past its scheduled time before it was sent, ms. */
  maxLagMs: number;
  /** Open loop: connections opened again after the server closed one. */
  reconnects: number;
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

function buildPool(saleId: string, tag: string, size: number, tokens?: TokenSigner): RequestPool {
  const frames = new Slab(size);
  const userFields = new Slab(size);
  const key = tokens && { kid: tokens.kid, privateKey: createPrivateKey(tokens.privateKeyPem) };
  const nowMs = Date.now();
  for (let i = 0; i < size; i++) {
    const message = PlaceOrderRequest.encode({ saleId, quantity: 1, requestId: `${tag}-r${i}`, purchaseToken: "", retry: false }).finish();
    const frame = Buffer.allocUnsafe(5 + message.length);
    frame.writeUInt8(0, 0); // not compressed
    frame.writeUInt32BE(message.length, 1);
    frame.set(message, 5);
    frames.push(frame);
    const userId = `${tag}-u${i}`;
    userFields.push(literalField(USER_ID_HEADER, userId));
    if (key) userFields.extend(literalField(PURCHASE_TOKEN_HEADER, signPurchaseToken(key, { userId, saleId, nowMs, ttlMs: tokens.ttlMs }).token));
  }
  return { size, frame: frames.view(), userField: userFields.view() };
}

/** Byte strings end to end in one growing buffer (far less memory than a buffer each); view() returns the i-th. */
class Slab {
  private buf = Buffer.allocUnsafe(1 << 16);
  private length = 0;
  private readonly offsets: Uint32Array;
  private count = 0;

  constructor(capacity: number) {
    this.offsets = new Uint32Array(capacity + 1);
  }

  /** Starts the next entry with these bytes. */
  push(bytes: Uint8Array): void {
    this.count++;
    this.extend(bytes);
  }

  /** Appends bytes to the last entry. */
  extend(bytes: Uint8Array): void {
    if (this.length + bytes.length > this.buf.length) {
      const grown = Buffer.allocUnsafe(Math.max(2 * this.buf.length, this.length + bytes.length));
      this.buf.copy(grown, 0, 0, this.length);
      this.buf = grown;
    }
    this.buf.set(bytes, this.length);
    this.length += bytes.length;
    this.offsets[this.count] = this.length;
  }

  view(): (i: number) => Buffer {
    const { buf, offsets } = this;
    return (i) => buf.subarray(offsets[i], offsets[i + 1]);
  }
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
  /** The answer carried the edge's x-seckill-limited header. */
  edgeLimited = false;

  constructor(
    readonly conn: Connection,
    /** When the call's time starts: its send time, or in open loop its scheduled time. */
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
      else if (name === LIMITED_HEADER) this.edgeLimited = true;
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

async function connect(address: string, errors: string[], onDead?: (conn: Connection) => void): Promise<Connection> {
  const colon = address.lastIndexOf(":");
  const host = address.slice(0, colon).replace(/^\[(.*)\]$/, "$1"); // [::1]:port
  const state = { alive: true } as Connection;
  const wire = await connectH2({
    host,
    port: Number(address.slice(colon + 1)),
    onEnd: (why) => {
      if (state.alive && errors.length < 20) errors.push(why);
      state.alive = false;
      onDead?.(state);
    },
  });
  return Object.assign(state, { wire });
}

/** Open loop: how often a connection the server closed is opened again, and how long after. */
const RECONNECT_ATTEMPTS = 20;
const RECONNECT_DELAY_MS = 100;

/** Hooks of a run: ready() is awaited once the pool is built and the connections are open, before the first call. */
export interface RunHooks {
  ready?: () => Promise<void>;
}

export async function runLoad(options: LoadOptions, hooks: RunHooks = {}): Promise<LoadResult> {
  const countMode = options.mode === "closed" && options.calls !== undefined;
  const openLoop = options.mode === "open";
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
  // As the SDK's purchaseMetadata sends it: the edge's [sale_id, user_id] rate-limit descriptor reads it.
  constantHeaders.push([SALE_ID_HEADER, options.saleId]);
  const headerBlock = encodeHeaders(constantHeaders);

  const pool = buildPool(options.saleId, options.tag, poolSize, options.tokens);
  const errors: string[] = [];
  let stopping = false;
  /** Open loop: every call of the schedule has been sent (or given up on). */
  let scheduleDone = false;
  // Open loop: a connection the server closes (a GOAWAY, a reset) is opened
  // again, as a client would, so the schedule goes on; the calls it carried
  // count as NO_STATUS. Closed loop: the run goes on with the others.
  let reconnects = 0;
  let reconnecting = 0;
  const revive = (dead: Connection, attempt = 1): void => {
    if (stopping || scheduleDone || attempt > RECONNECT_ATTEMPTS) return;
    reconnecting++;
    setTimeout(() => {
      connect(options.address, errors, revive)
        .then(
          (fresh) => {
            const at = conns.indexOf(dead);
            if (at >= 0 && !stopping && !scheduleDone) {
              conns[at] = fresh;
              reconnects++;
            } else void fresh.wire.close();
          },
          () => revive(dead, attempt + 1),
        )
        .finally(() => reconnecting--);
    }, RECONNECT_DELAY_MS);
  };
  const conns = await Promise.all(Array.from({ length: options.connections }, () => connect(options.address, errors, openLoop ? (c) => revive(c) : undefined)));
  await hooks.ready?.();

  const statuses = new Map<string, number>();
  const windowCounts = new Map<string, number>();
  const histograms = new Map<string, Histogram>();
  const reasons = new Map<string, number>();
  const reasonCache = new Map<string, string>();
  const inFlight = new Set<Call>();
  const sendLag = new Histogram();
  const bump = (m: Map<string, number>, key: string) => m.set(key, (m.get(key) ?? 0) + 1);

  let next = 0;
  let sent = 0;
  let sentInWindow = 0;
  let notSent = 0;
  let late = 0;
  let lateInWindow = 0;
  let maxLagMs = 0;
  // Open loop: the calls of the schedule (call k, from 0, at t0 + k / rate, to the end of the
  // window), as many of them as the pool holds, and how many have been sent.
  const rate = options.rate ?? 1000;
  const schedule = openLoop ? Math.floor(((warmupMs + windowMs) * rate) / 1000) : 0;
  const total = Math.min(schedule, pool.size);
  let scheduled = 0;
  let lastOkAt = 0;
  let lastCompletion = 0;
  const cpuStart = process.cpuUsage();
  const t0 = performance.now();
  const firstSentAt = Date.now();
  const windowStart = t0 + warmupMs;
  const windowEnd = windowStart + windowMs;
  const inWindow = (t: number) => t >= windowStart && t < windowEnd;
  let done!: () => void;
  const finished = new Promise<void>((resolve) => (done = resolve));
  const allSent = () => stopping || scheduleDone || (countMode && next >= pool.size);

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
    const name = call.timedOut ? CLIENT_TIMEOUT : call.code < 0 ? NO_STATUS : call.edgeLimited ? `${statusName(call.code)}/edge` : statusName(call.code);
    bump(statuses, name);
    if (call.code === 0) lastOkAt = now;
    else if (call.details) bump(reasons, reasonOf(call.details, call.code));
    if (countMode || inWindow(call.start)) {
      let h = histograms.get(name);
      if (!h) {
        h = new Histogram();
        histograms.set(name, h);
      }
      h.record((now - call.start) * 1000);
    }
    if (countMode || inWindow(now)) bump(windowCounts, name);
    if (!call.conn.alive && !conns.some((c) => c.alive) && reconnecting === 0) stopping = true;
    if (options.mode === "closed" && !stopping && call.conn.alive) send(call.conn);
    if (inFlight.size === 0 && allSent()) done();
  };

  /** Sends the pool's next request; `start` is its scheduled time in open loop. */
  const send = (conn: Connection, start?: number): void => {
    if (next >= pool.size) {
      if (!countMode) stopping = true;
      if (inFlight.size === 0) done();
      return;
    }
    const i = next++;
    const now = performance.now();
    const call = new Call(conn, start ?? now, finish);
    try {
      call.stream = conn.wire.request([headerBlock, pool.userField(i)], pool.frame(i), call);
    } catch (error) {
      conn.alive = false;
      if (errors.length < 20) errors.push(`request: ${(error as Error).message}`);
      bump(statuses, NO_STATUS);
      return;
    }
    sent++;
    if (inWindow(call.start)) sentInWindow++;
    if (start !== undefined) {
      const lagMs = now - start;
      if (lagMs > maxLagMs) maxLagMs = lagMs;
      if (lagMs >= LATE_AFTER_MS) {
        late++;
        if (inWindow(start)) lateInWindow++;
      }
      if (inWindow(start)) sendLag.record(Math.max(0, lagMs) * 1000);
    }
    inFlight.add(call);
  };

  // Calls the server never answers are cancelled a second after their deadline
  // (open loop: counted from the scheduled time, as the caller would).
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

  if (options.mode === "closed") {
    if (!countMode) {
      stopTimer = setTimeout(() => {
        stopping = true;
        if (inFlight.size === 0) done();
      }, warmupMs + windowMs);
    }
    for (const conn of conns) for (let s = 0; s < options.streams; s++) send(conn);
  } else {
    const maxInFlight = options.maxInFlight ?? 20_000;
    const intervalMs = 1000 / rate;
    let rr = 0;
    let lastTick = t0;
    const liveConn = (): Connection | undefined => {
      for (let n = 0; n < conns.length; n++) {
        const conn = conns[rr++ % conns.length];
        if (conn.alive) return conn;
      }
      return undefined;
    };
    const finishSchedule = () => {
      scheduleDone = true;
      clearInterval(ticker);
      if (inFlight.size === 0) done();
    };
    // Every tick sends the calls now due. A sender that fell behind (its own
    // stall, or maxInFlight calls outstanding) catches up at most the time
    // since the last tick plus 10 ms of schedule per tick, so a long stall
    // does not turn into one synchronous burst; the calls it owes keep their
    // scheduled times, so the stall shows in their latency, and each one that
    // leaves LATE_AFTER_MS or more after its time is counted as late.
    const tick = () => {
      const now = performance.now();
      const budget = Math.max(1, Math.ceil(((now - lastTick + 10) * rate) / 1000));
      lastTick = now;
      const due = Math.min(total, Math.floor(((now - t0) * rate) / 1000) + 1);
      for (let n = 0; n < budget && scheduled < due && inFlight.size < maxInFlight && !stopping; n++) {
        const start = t0 + scheduled * intervalMs;
        scheduled++;
        const conn = liveConn();
        if (conn) send(conn, start);
        else if (reconnecting > 0) {
          scheduled--; // no connection until one is open again: the call waits (and is late)
          break;
        } else stopping = true; // every connection failed for good: the rest of the schedule is not sent
      }
      if (stopping || scheduled >= total) finishSchedule();
    };
    ticker = setInterval(tick, 1);
  }

  await finished;
  clearInterval(sweeper);
  clearTimeout(stopTimer);
  if (ticker) clearInterval(ticker);
  // The schedule's calls never sent: past the pool's end, or after every connection failed.
  if (openLoop) notSent = schedule - scheduled;
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
    poolExhausted: openLoop ? schedule > pool.size : !countMode && next >= pool.size,
    notSent,
    late,
    lateInWindow,
    sendLag: sendLag.toData(),
    maxLagMs: Math.round(maxLagMs),
    reconnects,
    cpuMs: Math.round((cpu.user + cpu.system) / 1000),
    errors,
  };
}

// ------------------------------------------------------ the child process

const WORKER = fileURLToPath(new URL("./h2-load-worker.ts", import.meta.url));
const REPO_ROOT = fileURLToPath(new URL("..", import.meta.url));

/**
 * Runs the generator in a forked process (its own event loop); kills it after
 * timeoutMs. onReady runs once the child has built its pool and opened its
 * connections; the first call leaves when it has resolved (so building the
 * pool, signing tokens included, is outside what the caller measures).
 */
export function runLoadInChild(options: LoadOptions, timeoutMs = 600_000, onReady?: () => Promise<void>): Promise<LoadResult> {
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
    child.on("message", (message: { ready?: true; result?: LoadResult; error?: string }) => {
      if (message.ready) {
        (onReady ?? (async () => undefined))().then(
          () => child.send({ go: true }),
          (error: Error) => {
            child.kill("SIGKILL");
            settle(() => reject(error));
          },
        );
      } else if (message.result) settle(() => resolve(message.result!));
      else settle(() => reject(new Error(`load generator failed: ${message.error}`)));
    });
    child.on("error", (error) => settle(() => reject(error)));
    // "exit" can come before the last IPC message has been read: give it a moment.
    child.on("exit", (code, signal) => setTimeout(() => settle(() => reject(new Error(`load generator exited (${signal ?? `code ${code}`}) without a result`))), 2000));
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
