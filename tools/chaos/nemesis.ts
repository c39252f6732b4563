// The nemesis: plans faults from a seed (planFaults, a pure function: the
// same seed and options give the same faults at the same offsets) and injects
// them into a fault stack during a sale (runNemesis), healing each after its
// bounded duration and recording what it did and when.
//
//   kill       SIGKILL of a process, restarted on the same port after the duration
//              (again every second while it exits at start-up, as under a supervisor)
//   pause      SIGSTOP, SIGCONT after the duration
//   latency    fixed latency + jitter on a service's link to a dependency (fault proxy)
//   partition  the link blackholed for the duration (bytes wait, then flow)
//   drop       every open connection of the link closed, at once
//   kill-nats-leader  on a NATS cluster: SIGKILL of the node leading the events
//              stream (found when the fault starts), restarted with its store after the duration
//   cut-nats-node     on a NATS cluster: one node cut off for the duration, every
//              service's connections to it and its routes to and from the other nodes
//              blackholed (their fault proxies); the other two go on as a majority
//   kill-redis-master  on a Redis Cluster: SIGKILL of the master owning the hot
//              sale's slot (the sale opened last), waiting for its replica's promotion;
//              after the duration it is restarted, empty, and rejoins as a replica
import type { DependencyName } from "../stack/dependencies.js";
import { linkName, type FaultStack, type FaultTarget, type Link } from "./fault-stack.js";
import { between, mulberry32, pick } from "./prng.js";

export const FAULT_KINDS = ["kill", "pause", "latency", "partition", "drop", "kill-nats-leader", "cut-nats-node", "kill-redis-master"] as const;
export type FaultKind = (typeof FAULT_KINDS)[number];
const PROCESS_KINDS = new Set<FaultKind>(["kill", "pause"]);
/** The target of kill-nats-leader: whichever node leads the stream when the fault starts. */
export const NATS_STREAM_LEADER = "nats-stream-leader";
/** The target of kill-redis-master: whichever Redis Cluster node masters the hot sale's slot when the fault starts. */
export const HOT_SALE_REDIS_MASTER = "redis-master-of-hot-sale";

export interface PlannedFault {
  /** Order in the plan, from 0. */
  id: number;
  kind: FaultKind;
  /** A process (kill, pause) or a link "service->dependency" (latency, partition, drop). */
  target: string;
  /** Offset from the start of the sale. */
  atMs: number;
  /** How long the fault lasts before it is healed (0 for drop). */
  durationMs: number;
  /** latency only. */
  latencyMs?: number;
  jitterMs?: number;
}

export interface NemesisPlanOptions {
  seed: number;
  /** Faults start within this window (the sale's length). */
  windowMs: number;
  kinds: readonly FaultKind[];
  /** Processes that kill and pause may hit. */
  targets: readonly FaultTarget[];
  /** Links that latency, partition and drop may hit. */
  links: readonly Link[];
  /** A NATS cluster's nodes, which kill-nats-leader and cut-nats-node need (default: none). */
  natsNodes?: readonly string[];
  /** Redis runs as a cluster, which kill-redis-master needs (default: false). */
  redisCluster?: boolean;
  /** At most this many faults at a time (default 1). */
  maxConcurrent?: number;
  /** Quiet time between two faults' starts, drawn in [min, max] (default 200–1000 ms). */
  gapMs?: [number, number];
  /** Duration of a fault, drawn in [min, max] (default 300–2500 ms). */
  durationMs?: [number, number];
}

/** The faults for one run: deterministic in its options (no clock, no unseeded randomness). */
export function planFaults(opts: NemesisPlanOptions): PlannedFault[] {
  const random = mulberry32(opts.seed);
  const maxConcurrent = opts.maxConcurrent ?? 1;
  const [gapMin, gapMax] = opts.gapMs ?? [200, 1000];
  const [durMin, durMax] = opts.durationMs ?? [300, 2500];
  const natsNodes = opts.natsNodes ?? [];
  const candidatesOf = (kind: FaultKind): string[] => {
    if (kind === "kill-nats-leader") return natsNodes.length > 0 ? [NATS_STREAM_LEADER] : [];
    if (kind === "cut-nats-node") return [...natsNodes];
    if (kind === "kill-redis-master") return opts.redisCluster ? [HOT_SALE_REDIS_MASTER] : [];
    return PROCESS_KINDS.has(kind) ? opts.targets.map(String) : opts.links.map(linkName);
  };
  const kinds = opts.kinds.filter((k) => candidatesOf(k).length > 0);
  const plan: PlannedFault[] = [];
  if (kinds.length === 0) return plan;

  let t = between(random, gapMin, gapMax);
  while (t < opts.windowMs) {
    const active = plan.filter((f) => f.atMs + f.durationMs > t);
    if (active.length >= maxConcurrent) {
      // Wait for the first active fault to heal, then a gap.
      t = Math.min(...active.map((f) => f.atMs + f.durationMs)) + between(random, gapMin, gapMax);
      continue;
    }
    const kind = pick(random, kinds);
    const candidates = candidatesOf(kind);
    // One fault per target at a time (killing a paused process, or two latencies on one link, mean nothing more).
    const free = candidates.filter((c) => !active.some((f) => f.target === c));
    const draw = between(random, durMin, durMax);
    if (free.length > 0) {
      const target = pick(random, free);
      const fault: PlannedFault = { id: plan.length, kind, target, atMs: t, durationMs: kind === "drop" ? 0 : Math.min(draw, durMax) };
      if (kind === "latency") {
        fault.latencyMs = between(random, 20, 300);
        fault.jitterMs = between(random, 0, 100);
      }
      plan.push(fault);
    }
    t += between(random, gapMin, gapMax);
  }
  return plan;
}

export interface FaultRecord extends PlannedFault {
  /** When it was injected and healed, from the start of the sale (actual times: they vary from run to run). */
  injectedAtMs?: number;
  healedAtMs?: number;
  /** Why it could not be injected or healed. */
  error?: string;
  /** The node kill-nats-leader killed (the stream's leader then). */
  natsNode?: string;
  /** The sale kill-redis-master aimed at, and the node it killed (its slot's master then). */
  saleId?: string;
  redisNode?: string;
}

export interface Nemesis {
  /** Resolves once every planned fault has been injected and healed. */
  done: Promise<FaultRecord[]>;
}

/** Injects `plan` into `stack`, offsets counted from now; at most `maxConcurrent` faults are active at once in fact too. */
export function runNemesis(
  stack: FaultStack,
  plan: readonly PlannedFault[],
  opts: { maxConcurrent?: number; log?: (line: string) => void /** The sale on sale now, for kill-redis-master. */; hotSale?: () => string | undefined } = {},
): Nemesis {
  const t0 = Date.now();
  const log = opts.log ?? (() => undefined);
  const maxConcurrent = opts.maxConcurrent ?? 1;
  const records: FaultRecord[] = plan.map((f) => ({ ...f }));
  const sleepUntil = (offsetMs: number) => new Promise<void>((r) => setTimeout(r, Math.max(0, t0 + offsetMs - Date.now())));
  let active = 0;
  const slotFreed: (() => void)[] = [];
  const busy = new Map<string, Promise<void>>();

  async function one(r: FaultRecord): Promise<void> {
    await sleepUntil(r.atMs);
    // In fact at most maxConcurrent (a slow restart can run over its planned end), and one per target.
    for (;;) {
      const previous = busy.get(r.target);
      if (active >= maxConcurrent) await new Promise<void>((resolve) => slotFreed.push(resolve));
      else if (previous) await previous;
      else break;
    }
    active++;
    let release: () => void = () => undefined;
    busy.set(
      r.target,
      new Promise<void>((resolve) => {
        release = () => {
          busy.delete(r.target);
          resolve();
        };
      }),
    );
    try {
      r.injectedAtMs = Date.now() - t0;
      log(`+${(r.injectedAtMs / 1000).toFixed(1)}s ${describe(r)}`);
      await inject(stack, r, opts.hotSale);
      if (r.natsNode) log(`  (${r.natsNode} led the stream)`);
      if (r.redisNode) log(`  (${r.redisNode} mastered the slot of sale ${r.saleId})`);
      await sleepUntil(r.injectedAtMs + r.durationMs);
      await heal(stack, r);
      r.healedAtMs = Date.now() - t0;
    } catch (error) {
      r.error = (error as Error).message;
      log(`fault ${r.id} (${r.kind} ${r.target}): ${r.error}`);
      await heal(stack, r).catch(() => undefined);
    } finally {
      active--;
      release();
      slotFreed.shift()?.();
    }
  }

  return { done: Promise.all(records.map(one)).then(() => records) };
}

export function describe(f: PlannedFault): string {
  const extra = f.kind === "latency" ? ` ${f.latencyMs}±${f.jitterMs} ms` : "";
  const target = f.kind === "cut-nats-node" ? `${f.target} (clients and routes)` : f.target;
  return `${f.kind} ${target}${extra}${f.kind === "drop" ? "" : ` for ${f.durationMs} ms`}`;
}

const linkOf = (target: string): Link => {
  const [service, dependency] = target.split("->");
  return { service: service as Link["service"], dependency: dependency as DependencyName };
};

async function inject(stack: FaultStack, f: FaultRecord, hotSale: () => string | undefined = () => undefined): Promise<void> {
  switch (f.kind) {
    case "kill-redis-master": {
      f.saleId = hotSale();
      if (!f.saleId) throw new Error("no sale is open yet");
      f.redisNode = await stack.killRedisMasterOf(f.saleId);
      return;
    }
    case "kill-nats-leader": {
      f.natsNode = await stack.natsStreamLeader();
      return stack.killNatsNode(f.natsNode);
    }
    case "cut-nats-node":
      // Its routes too: a node only its clients lose keeps its place in the cluster, and may stay the leader.
      for (const proxy of [stack.natsNodeProxy(f.target), ...stack.natsRouteProxies(f.target)]) proxy.blackhole();
      return;
    case "kill":
      return stack.kill(f.target as FaultTarget, "SIGKILL");
    case "pause":
      return stack.kill(f.target as FaultTarget, "SIGSTOP");
    case "latency":
      return stack.proxy(linkOf(f.target)).setLatency({ latencyMs: f.latencyMs ?? 0, jitterMs: f.jitterMs });
    case "partition":
      return stack.proxy(linkOf(f.target)).blackhole();
    case "drop":
      return stack.proxy(linkOf(f.target)).dropConnections();
  }
}

/** How long a killed process is restarted again and again before its fault counts as failed. */
const RESTART_FOR_MS = 30_000;

/**
 * A service that finds a dependency down at start-up exits (another fault may
 * hold Postgres down): start it again after a second, as a supervisor would,
 * for up to RESTART_FOR_MS.
 */
async function restartLikeASupervisor(stack: FaultStack, target: FaultTarget): Promise<void> {
  const deadline = Date.now() + RESTART_FOR_MS;
  for (;;) {
    try {
      return await stack.restart(target);
    } catch (error) {
      if (Date.now() > deadline) throw error;
      await new Promise((r) => setTimeout(r, 1000));
    }
  }
}

async function heal(stack: FaultStack, f: FaultRecord): Promise<void> {
  switch (f.kind) {
    case "kill-nats-leader":
      return f.natsNode ? stack.restartNatsNode(f.natsNode) : undefined;
    case "kill-redis-master":
      return f.redisNode ? stack.restartRedisNode(f.redisNode) : undefined;
    case "cut-nats-node":
      for (const proxy of [stack.natsNodeProxy(f.target), ...stack.natsRouteProxies(f.target)]) proxy.heal();
      return;
    case "kill":
      return restartLikeASupervisor(stack, f.target as FaultTarget);
    case "pause":
      return stack.kill(f.target as FaultTarget, "SIGCONT");
    case "latency":
    case "partition":
      return stack.proxy(linkOf(f.target)).heal();
    case "drop":
      return;
  }
}
