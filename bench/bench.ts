// The bench's measuring kit: its settings (BENCH_* variables), one generator
// run with the CPU and memory it cost every process (Bench.load), and polling
// Postgres for persisted orders (SoldWatch).
import os from "node:os";
import { setTimeout as sleep } from "node:timers/promises";
import type { Config } from "../services/common/config.js";
import type { EdgeLimits } from "../envoy/src/limits.js";
import type { BenchEdge } from "./edge.js";
import { latencyOf, rateOf, runLoadInChild, type LoadOptions, type LoadResult } from "./h2-load.js";
import { meterCpu, pidsNamed, sampleRss } from "./proc.js";
import { fmt } from "./report.js";
import type { BenchStack, NoopServer } from "./stack.js";

export const MAX_STOCK = 1_000_000; // sales.total_stock CHECK
export const PERSIST_TIMEOUT_MS = 180_000;

// ---------------------------------------------------------------- settings

export interface Settings {
  seconds: number;
  warmup: number;
  reps: number;
  connections: number;
  streams: number;
  burst: number;
  overload: number;
  deadlineMs: number;
  /** Upper bound of calls/s, to size the pre-encoded pool of a timed no-op run. */
  maxRate: number;
  /** Also measure the writer alone, draining a backlog queued while it was stopped. */
  drain: boolean;
  /** Figure e-edge: the offered loads, as multiples of the sustainable rate through the edge. */
  edgeOverloads: number[];
  /** Figure e-edge: the PlaceOrder token bucket's rate, as a fraction of the sustainable rate. */
  edgeBucket: number;
  figures: Set<string>;
}

export const ALL_FIGURES = "a,b,c,d,e,f,a-edge,e-edge,g";

export function readSettings(env: NodeJS.ProcessEnv): Settings {
  const int = (name: string, fallback: number, min: number, max: number) => {
    const raw = env[name];
    if (raw === undefined || raw === "") return fallback;
    const n = Number(raw);
    if (!Number.isInteger(n) || n < min || n > max) throw new Error(`${name}=${raw}: expected a whole number from ${min} to ${max}`);
    return n;
  };
  return {
    seconds: int("BENCH_SECONDS", 10, 1, 600),
    warmup: int("BENCH_WARMUP", 2, 0, 60),
    reps: int("BENCH_REPS", 3, 1, 20),
    connections: int("BENCH_CONNS", 8, 1, 256),
    streams: int("BENCH_STREAMS", 32, 1, 1000),
    burst: int("BENCH_BURST", 50_000, 100, MAX_STOCK),
    overload: int("BENCH_OVERLOAD", 3, 1, 20),
    deadlineMs: int("BENCH_DEADLINE_MS", 2000, 0, 60_000),
    maxRate: int("BENCH_MAX_RATE", 20_000, 100, 1_000_000),
    drain: env.BENCH_DRAIN !== "0",
    edgeOverloads: numbers("BENCH_EDGE_OVERLOADS", env.BENCH_EDGE_OVERLOADS ?? "3,10", 1, 50),
    edgeBucket: fraction("BENCH_EDGE_BUCKET", env.BENCH_EDGE_BUCKET ?? "0.9"),
    figures: new Set((env.BENCH_FIGURES ?? ALL_FIGURES).split(",").map((s) => s.trim())),
  };
}

function numbers(name: string, raw: string, min: number, max: number): number[] {
  const list = raw.split(",").map((s) => Number(s.trim()));
  if (list.length === 0 || list.some((n) => !Number.isFinite(n) || n < min || n > max)) throw new Error(`${name}=${raw}: expected numbers from ${min} to ${max}, comma-separated`);
  return list;
}

function fraction(name: string, raw: string): number {
  const n = Number(raw);
  if (!Number.isFinite(n) || n <= 0 || n > 1) throw new Error(`${name}=${raw}: expected a number above 0, at most 1`);
  return n;
}

/** The settings as RESULTS.md lists them. */
export function describeSettings(settings: Settings, config: Config): Record<string, string> {
  return {
    "BENCH_SECONDS (measured window per run)": `${settings.seconds} s`,
    "BENCH_WARMUP (per run, before the window)": `${settings.warmup} s`,
    "BENCH_REPS (figures a, b and g)": String(settings.reps),
    "BENCH_CONNS × BENCH_STREAMS (closed loop)": `${settings.connections} × ${settings.streams}`,
    "BENCH_BURST (figures c, d)": String(settings.burst),
    "BENCH_OVERLOAD (figure e)": `${settings.overload}×`,
    "BENCH_DEADLINE_MS (grpc-timeout of every call)": String(settings.deadlineMs),
    "BENCH_MAX_RATE (sizes the request pool of timed no-op runs)": `${settings.maxRate}/s`,
    "BENCH_DRAIN (c′)": settings.drain ? "on" : "off",
    "BENCH_EDGE_OVERLOADS (e-edge, × the sustainable rate through the edge)": settings.edgeOverloads.join(", "),
    "BENCH_EDGE_BUCKET (e-edge: PlaceOrder token bucket, × the sustainable rate)": String(settings.edgeBucket),
    BENCH_FIGURES: [...settings.figures].join(","),
    "service settings":
      `defaults of services/common/config.ts unless set in the environment (MAX_IN_FLIGHT=${config.maxInFlight}, ` +
      `RESERVE_BATCH_MAX=${config.reserveBatchMax}, WRITER_BATCH_SIZE=${config.writerBatchSize}, WRITER_CONCURRENCY=${config.writerConcurrency})`,
    services: "bundles from dist/ (tools/build.ts), one process each (inventory, order, order-writer, gateway); the no-op server bundled the same way",
  };
}

export const log = (line: string) => process.stderr.write(`[bench] ${line}\n`);

// ------------------------------------------------------------ measuring

/** One generator run, with the CPU every process used and (optionally) the services' RSS. */
export interface Measured {
  name: string;
  result: LoadResult;
  cpu: Record<string, number>;
  /** Highest RSS of each service during the run, MB (when sampled). */
  rssMax?: Record<string, number>;
  /** Every RSS sample of each process during the run, MB (when sampled). */
  rssSeries?: Record<string, number[]>;
}

/** Starts the edge with the given limits (the bench's stack behind it). */
export type EdgeStarter = (limits: Partial<EdgeLimits>) => Promise<BenchEdge>;

export class Bench {
  readonly runs: Measured[] = [];
  /** Runs during which other processes used over a quarter of the machine's CPU. */
  readonly disturbed: string[] = [];
  /** Services that exited during a run (and were started again), with their last lines. */
  readonly crashes: string[] = [];
  readonly rss: Record<string, number[]> = { inventory: [], order: [], "order-writer": [], gateway: [], envoy: [], noop: [] };
  /**
   * The Redis and NATS processes a run's CPU is counted on, per kind: every
   * redis-server and nats-server on the machine unless a figure names them
   * (figure g counts its stacks' own servers).
   */
  servers: Record<"redis" | "nats", () => number[]> = { redis: () => pidsNamed("redis-server"), nats: () => pidsNamed("nats-server") };
  /** The edge in front of the stack, while one runs (figures a-edge, e-edge). */
  edge: BenchEdge | undefined;
  private tagCount = 0;
  private readonly runId = Math.random().toString(36).slice(2, 8);

  constructor(
    readonly settings: Settings,
    readonly noop: NoopServer,
    readonly stack: BenchStack,
    /** Starts an edge; undefined when there is no Envoy (why in edgeMissing). */
    readonly startEdge?: EdgeStarter,
    readonly edgeMissing?: string,
  ) {}

  /** Replaces the running edge (if any) with one on these limits. */
  async useEdge(limits: Partial<EdgeLimits>): Promise<BenchEdge> {
    if (!this.startEdge) throw new Error(this.edgeMissing ?? "no edge");
    await this.stopEdge();
    this.edge = await this.startEdge(limits);
    return this.edge;
  }

  async stopEdge(): Promise<void> {
    const edge = this.edge;
    this.edge = undefined;
    await edge?.stop();
  }

  private pids(): Record<string, number> {
    const { services } = this.stack;
    const pids: Record<string, number> = {
      inventory: services.inventory.pid,
      order: services.order.pid,
      "order-writer": services["order-writer"].pid,
      gateway: services.gateway.pid,
      noop: this.noop.process.pid,
    };
    if (this.edge) pids.envoy = this.edge.pid;
    return pids;
  }

  /** Runs the generator against `address`; samples RSS when `sampleMemory`. */
  async load(name: string, address: string, options: Pick<LoadOptions, "saleId" | "mode"> & Partial<LoadOptions>, sampleMemory = false): Promise<LoadResult> {
    const s = this.settings;
    const full: LoadOptions = {
      address,
      connections: s.connections,
      streams: s.streams,
      seconds: s.seconds,
      warmupSeconds: s.warmup,
      deadlineMs: s.deadlineMs,
      tag: `b${this.runId}${++this.tagCount}`,
      ...options,
    };
    const pids = this.pids();
    let cpu: Awaited<ReturnType<typeof meterCpu>> | undefined;
    let rss: ReturnType<typeof sampleRss> | undefined;
    // Measuring starts when the generator is ready: building its pool (signing tokens) is not part of the run.
    const started = async () => {
      cpu = await meterCpu({
        ...Object.fromEntries(Object.entries(pids).map(([n, pid]) => [n, () => [pid]])),
        redis: this.servers.redis,
        nats: this.servers.nats,
        postgres: () => this.postgresPids(),
      });
      rss = sampleMemory ? sampleRss(pids) : undefined;
    };
    const poolCalls = full.calls ?? full.poolSize ?? 0;
    const timeoutMs = ((full.seconds ?? 0) + (full.warmupSeconds ?? 0) + full.deadlineMs! / 1000 + 120) * 1000 + poolCalls * (full.tokens ? 0.1 : 0.005);
    const result = await runLoadInChild(full, timeoutMs, started);
    if (!cpu) throw new Error(`${name}: the generator finished without starting`);
    const used: Record<string, number> = { ...(await cpu.stop()), generator: result.cpuMs / 1000 };
    const tracked = Object.entries(used).reduce((sum, [n, v]) => (n === "wall" || n === "machine" ? sum : sum + v), 0);
    const other = Math.max(0, used.machine - tracked);
    if (other > 0.25 * os.availableParallelism() * used.wall) {
      this.disturbed.push(`${name} (${fmt.pct(other / (os.availableParallelism() * used.wall))} of the machine's CPU)`);
    }
    let rssMax: Record<string, number> | undefined;
    let rssSeries: Record<string, number[]> | undefined;
    if (rss) {
      rssMax = {};
      rssSeries = rss.stop();
      for (const [n, series] of Object.entries(rssSeries)) {
        this.rss[n] ??= [];
        this.rss[n].push(...series);
        if (series.length > 0) rssMax[n] = Math.max(...series);
      }
    }
    this.runs.push({ name, result, cpu: used, rssMax, rssSeries });
    await this.restartCrashed(name);
    const ok = latencyOf(result, "OK");
    log(
      `${name}: sent ${result.sent}, ${JSON.stringify(result.statuses)}` +
        `${Object.keys(result.reasons).length ? ` ${JSON.stringify(result.reasons)}` : ""}, ` +
        `OK ${fmt.rate(rateOf(result, "OK"))} p50 ${fmt.ms(ok.percentile(50))} p99 ${fmt.ms(ok.percentile(99))}` +
        `${result.mode === "open" ? `, late sends ${result.late} (max lag ${result.maxLagMs} ms)${result.notSent ? `, ${result.notSent} not sent` : ""}${result.reconnects ? `, ${result.reconnects} reconnects` : ""}` : ""}` +
        `${result.poolExhausted ? " (request pool exhausted: raise BENCH_MAX_RATE)" : ""}` +
        `${result.errors.length ? ` errors: ${result.errors.slice(0, 3).join("; ")}` : ""}; ` +
        `CPU: this run ${tracked.toFixed(1)} s, other processes ${other.toFixed(1)} s in ${used.wall.toFixed(1)} s`,
    );
    return result;
  }

  /** A service that died during a run is reported and started again, so the figures after it can run. */
  private async restartCrashed(run: string): Promise<void> {
    for (const [service, child] of Object.entries(this.stack.services) as [keyof BenchStack["services"], BenchStack["services"][keyof BenchStack["services"]]][]) {
      if (child.running() || this.stack.stopped.has(service)) continue;
      const how = await child.exited;
      const last = child
        .lastLines()
        .filter((l) => l.trim() !== "")
        .slice(-6)
        .join(" ⏎ ");
      this.crashes.push(`${service} exited (${how}) during "${run}"; its last lines: ${last.slice(0, 1200)}`);
      log(`${service} exited (${how}) during ${run}: starting it again`);
      await this.stack.startService(service);
    }
  }

  /** Postgres processes working for the bench: backends of its database, and the server's own background processes. */
  private async postgresPids(): Promise<number[]> {
    const { rows } = await this.stack.db.raw("SELECT pid FROM pg_stat_activity WHERE datname = current_database() OR backend_type <> 'client backend'");
    return (rows as { pid: number }[]).map((r) => r.pid);
  }

  /** The sale's sold counter in Postgres (the writer adds each batch to it in the batch's transaction). */
  async sold(saleId: string): Promise<number> {
    const row = await this.stack.db("sales").where({ id: saleId }).first("sold");
    return Number(row?.sold ?? 0);
  }

  /** Starts polling the sale's persisted orders; see SoldWatch. */
  watchSold(saleId: string): SoldWatch {
    return new SoldWatch(() => this.sold(saleId));
  }

  /** Waits until `target` orders of the sale are in Postgres. */
  waitPersisted(saleId: string, target: number) {
    return this.watchSold(saleId).until(target);
  }

  /** A timed no-op run's pool: enough for maxRate calls/s. */
  noopPool(): number {
    return Math.ceil(this.settings.maxRate * (this.settings.seconds + this.settings.warmup));
  }
}

/**
 * Polls a sale's sold counter every 50 ms from its creation until until()
 * sees the target: when that was (epoch ms), and the persist rate between the
 * first poll that saw an order and that one.
 */
export class SoldWatch {
  private first: { at: number; n: number } | undefined;
  private last = { at: 0, n: 0 };
  private stopped = false;
  private readonly loop: Promise<void>;

  constructor(private readonly read: () => Promise<number>) {
    this.loop = this.run();
  }

  private async run(): Promise<void> {
    while (!this.stopped) {
      // A failed read (Postgres busy or restarting) is tried again on the next poll.
      const n = await this.read().catch(() => undefined);
      const at = Date.now();
      if (n !== undefined) {
        this.last = { at, n };
        if (n > 0 && !this.first) this.first = { at, n };
      }
      await sleep(50);
    }
  }

  async until(target: number, timeoutMs = PERSIST_TIMEOUT_MS) {
    const deadline = Date.now() + timeoutMs;
    while (this.last.n < target && Date.now() < deadline) await sleep(10);
    this.stopped = true;
    await this.loop;
    const { first, last } = this;
    const reached = last.n >= target;
    const rate = reached && first && last.at > first.at ? (last.n - first.n) / ((last.at - first.at) / 1000) : NaN;
    return { doneAt: last.at, rate, reached, got: last.n };
  }
}
