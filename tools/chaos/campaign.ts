// The fault campaign: runs after runs of flash sales against a fault stack
// (every process a child that can be killed, every dependency private, links
// through fault proxies, the gateway issuing purchase tokens that the order
// service requires). A run opens fresh sales one after the other over its
// length (a sale sells out within the first tenth of its crowd, so a run of
// several keeps stock on sale while the faults come), each with a crowd ten
// times the stock, and the nemesis injects seeded faults; then heal
// everything, wait (bounded) for the writer to drain and the sweeper to
// settle, check the invariants of every sale, and record the anomalies per
// fault. A campaign's seed replays it: each run's nemesis plan comes from
// (seed, run) alone.
import { status } from "@grpc/grpc-js";
import type { Anomaly } from "./invariants.js";
import { checkInvariants } from "./invariants.js";
import { startCrowd, type Purchase } from "./crowd.js";
import type { DependencyName } from "../stack/dependencies.js";
import { startFaultStack, type FaultStack, type FaultTarget, type Link } from "./fault-stack.js";
import { type Nemesis, planFaults, runNemesis, type FaultKind, type FaultRecord, type PlannedFault } from "./nemesis.js";
import { mulberry32, runSeed } from "./prng.js";

export interface CampaignOptions {
  seed: number;
  runs: number;
  /** Start at this run (1-based; default 1): replays one run of a campaign without the ones before it. */
  fromRun?: number;
  /** Sales per run, opened one after the other. */
  sales: number;
  /** Buyers per sale (each clicks twice: the second click tests the per-user limit). */
  users: number;
  /** Units per sale. */
  stock: number;
  /** The run's length: the sales' buyers arrive over it (each sale's over its share) and faults start within it. */
  durationMs: number;
  kinds: readonly FaultKind[];
  /** At most this many faults at a time. */
  maxConcurrent: number;
  /** A fault lasts [min, max] ms (default 300–2500). */
  faultMs?: [number, number];
  /** After healing: how long the writer may take to drain and the invariants to settle (the sweeper). */
  settleTimeoutMs?: number;
  /** NATS as a three-node JetStream cluster (three replicas), for the kill-nats-leader and cut-nats-node faults. */
  natsCluster?: boolean;
  /** Redis as a Redis Cluster (three masters, a replica each), for the kill-redis-master fault. */
  redisCluster?: boolean;
  log?: (line: string) => void;
  /** A stack to run on (tests); by default the campaign starts its own and stops it at the end. */
  stack?: FaultStack;
  /** Called after a run has settled, before its invariants are checked (a test damages the data here to see the campaign fail). */
  beforeCheck?: (run: { stack: FaultStack; sales: { saleId: string; purchases: Purchase[] }[] }) => Promise<void>;
}

/** What the campaign reports besides the invariant checker's anomalies. */
export type CampaignAnomalyKind = Anomaly["kind"] | "sold out early" | "not drained" | "run failed";
export interface CampaignAnomaly {
  kind: CampaignAnomalyKind;
  detail: string;
}

export interface RunResult {
  run: number;
  /** The seed of this run's nemesis plan and crowd jitter. */
  seed: number;
  saleIds: string[];
  plan: PlannedFault[];
  faults: FaultRecord[];
  anomalies: CampaignAnomaly[];
  purchases: { accepted: number; refused: number; unanswered: number; failedCalls: number };
  /** Units sold, all sales together (of sales × stock). */
  sold: number;
  /** From healing to the invariants holding (or the timeout). */
  settleMs: number;
}

export interface CampaignResult {
  seed: number;
  options: Omit<CampaignOptions, "log" | "stack" | "beforeCheck">;
  runs: RunResult[];
  ok: boolean;
}

/** The processes and links the campaign's stack runs with, and what the nemesis may hit. */
export const CAMPAIGN_TARGETS: FaultTarget[] = ["redis", "nats", "postgres", "inventory", "order", "writer", "gateway"];
export const CAMPAIGN_LINKS: Link[] = [
  { service: "inventory", dependency: "redis" },
  { service: "inventory", dependency: "nats" },
  { service: "order", dependency: "redis" },
  { service: "writer", dependency: "nats" },
  { service: "writer", dependency: "postgres" },
];

/** The services' settings for fault runs: short AckWait and sweeper delays, so that recovery fits in a run. */
export const CAMPAIGN_ENV: Record<string, string> = {
  WRITER_ACK_WAIT_MS: "2000",
  SWEEP_INTERVAL_MS: "200",
  SWEEP_AFTER_MS: "2000",
  PURCHASE_TOKEN_REQUIRED: "true",
};

/** A NATS cluster's nodes, as tools/stack/nats-cluster.ts names them. */
const NATS_CLUSTER_NODES = ["nats-1", "nats-2", "nats-3"];

/** Which of the campaign's engines run as clusters. */
export interface Clusters {
  natsCluster?: boolean;
  redisCluster?: boolean;
}

/**
 * What the nemesis may hit: on a NATS cluster, its nodes instead of the single
 * NATS process and the links to it; on a Redis Cluster, the master of the hot
 * sale's slot instead of the single Redis process and the links to it.
 */
export function campaignScope({ natsCluster = false, redisCluster = false }: Clusters = {}): {
  targets: FaultTarget[];
  links: Link[];
  natsNodes: string[];
  redisCluster: boolean;
} {
  const clustered = new Set<FaultTarget>([...(natsCluster ? (["nats"] as const) : []), ...(redisCluster ? (["redis"] as const) : [])]);
  return {
    targets: CAMPAIGN_TARGETS.filter((t) => !clustered.has(t)),
    links: CAMPAIGN_LINKS.filter((l) => !clustered.has(l.dependency)),
    natsNodes: natsCluster ? NATS_CLUSTER_NODES : [],
    redisCluster,
  };
}

export function startCampaignStack(seed: number, clusters: Clusters = {}): Promise<FaultStack> {
  const { natsCluster, redisCluster } = clusters;
  return startFaultStack({
    privateDependencies: ["redis", "nats", "postgres"].filter((d) => !(d === "nats" && natsCluster) && !(d === "redis" && redisCluster)) as DependencyName[],
    natsCluster,
    redisCluster,
    gateway: true,
    links: campaignScope(clusters).links,
    env: CAMPAIGN_ENV,
    random: mulberry32(seed ^ 0x5eed),
  });
}

/** The nemesis plan of one run of a campaign: a function of the seed, the run and the options only. */
export function runPlan(opts: Pick<CampaignOptions, "seed" | "durationMs" | "kinds" | "maxConcurrent" | "faultMs" | "natsCluster" | "redisCluster">, run: number): PlannedFault[] {
  return planFaults({
    seed: runSeed(opts.seed, run),
    windowMs: opts.durationMs,
    kinds: opts.kinds,
    ...campaignScope(opts),
    maxConcurrent: opts.maxConcurrent,
    durationMs: opts.faultMs,
  });
}

export async function runCampaign(opts: CampaignOptions): Promise<CampaignResult> {
  const log = opts.log ?? (() => undefined);
  const { log: _l, stack: given, beforeCheck: _b, ...options } = opts;
  const stack = given ?? (await startCampaignStack(opts.seed, opts));
  const runs: RunResult[] = [];
  try {
    for (let run = (opts.fromRun ?? 1) - 1; run < opts.runs; run++) runs.push(await oneRun(stack, opts, run, log));
  } finally {
    if (!given) await stack.stop();
  }
  return { seed: opts.seed, options, runs, ok: runs.every((r) => r.anomalies.length === 0) };
}

async function oneRun(stack: FaultStack, opts: CampaignOptions, run: number, log: (line: string) => void): Promise<RunResult> {
  const seed = runSeed(opts.seed, run);
  const plan = runPlan(opts, run);
  const result: RunResult = {
    run,
    seed,
    saleIds: [],
    plan,
    faults: [],
    anomalies: [],
    purchases: { accepted: 0, refused: 0, unanswered: 0, failedCalls: 0 },
    sold: 0,
    settleMs: 0,
  };
  log(`run ${run + 1}/${opts.runs} (seed ${seed}): ${plan.length} fault(s) planned`);
  let nemesis: Nemesis | undefined;
  try {
    await healAll(stack);
    const waveMs = opts.durationMs / opts.sales;
    const random = mulberry32(seed ^ 0xc10d);
    nemesis = runNemesis(stack, plan, { maxConcurrent: opts.maxConcurrent, log: (line) => log(`  ${line}`), hotSale: () => result.saleIds.at(-1) });
    const t0 = Date.now();
    const waves: Promise<{ saleId: string; purchases: Purchase[]; failedCalls: number }>[] = [];
    for (let i = 0; i < opts.sales; i++) {
      await new Promise((r) => setTimeout(r, Math.max(0, t0 + i * waveMs - Date.now())));
      // CreateSale is retried like a buyer's call: a fault may be under way.
      const sale = await retryUnavailable(() => stack.createSale({ totalStock: opts.stock, perUserLimit: 1, requestId: `chaos-${opts.seed}-${run}-${i}-${t0}` }));
      result.saleIds.push(sale.saleId);
      const crowd = startCrowd(stack.orders, sale.saleId, {
        users: opts.users,
        clicksPerUser: 2,
        arrivalMs: waveMs,
        access: stack.access,
        random,
        giveUpAfterMs: 20_000,
        prefix: `r${run}s${i}`,
      });
      waves.push(crowd.done.then(({ purchases, failedCalls }) => ({ saleId: sale.saleId, purchases, failedCalls: failedCalls.length })));
    }
    result.faults = await nemesis.done;
    const sales = await Promise.all(waves);
    for (const { purchases, failedCalls } of sales) {
      for (const p of purchases) result.purchases[p.answer.kind === "accepted" ? "accepted" : p.answer.kind === "refused" ? "refused" : "unanswered"]++;
      result.purchases.failedCalls += failedCalls;
    }

    const healedAt = Date.now();
    await healAll(stack);
    const settleTimeoutMs = opts.settleTimeoutMs ?? 45_000;
    const deadline = healedAt + settleTimeoutMs;
    try {
      await stack.drained(Math.max(1000, deadline - Date.now()));
    } catch (error) {
      result.anomalies.push({ kind: "not drained", detail: `the writer had not drained the stream ${settleTimeoutMs / 1000} s after healing: ${(error as Error).message}` });
    }
    await opts.beforeCheck?.({ stack, sales });
    const redis = { client: stack.redis, namespace: stack.config.namespace };
    // The sweeper republishes reservations whose publish died with a fault: give it until the deadline.
    let anomalies: CampaignAnomaly[] = [];
    // A check that fails (a Redis Cluster client still following a failover) is made again until then too.
    for (;;) {
      anomalies = [];
      try {
        for (const { saleId, purchases } of sales) {
          const found = [...(await checkInvariants(stack.db, saleId, purchases, { redis })), ...(await soldOutEarly(stack, saleId, opts.stock, purchases))];
          anomalies.push(...found.map((a) => ({ kind: a.kind, detail: `sale ${saleId}: ${a.detail}` })));
        }
      } catch (error) {
        if (Date.now() > deadline) throw error;
        anomalies = [{ kind: "run failed", detail: String(error) }];
      }
      if (anomalies.length === 0 || Date.now() > deadline) break;
      await new Promise((r) => setTimeout(r, 250));
    }
    result.settleMs = Date.now() - healedAt;
    result.anomalies.push(...anomalies);
    for (const { saleId } of sales) result.sold += await stack.sold(saleId);
  } catch (error) {
    result.anomalies.push({ kind: "run failed", detail: (error as Error).stack ?? String(error) });
    // Its faults end before the next run starts: two nemeses at once could kill a Redis master and its only replica.
    if (nemesis) result.faults = await nemesis.done;
    await healAll(stack).catch(() => undefined);
  }
  const { accepted, refused, unanswered } = result.purchases;
  log(
    `  sold ${result.sold}/${opts.stock * opts.sales}; ${accepted} accepted, ${refused} refused, ${unanswered} unanswered; ` +
      `${result.anomalies.length === 0 ? "no anomaly" : result.anomalies.map((a) => `${a.kind}: ${a.detail}`).join("\n  ")}`,
  );
  return result;
}

/** Calls `call` again while it fails UNAVAILABLE or DEADLINE_EXCEEDED, for up to 20 s. */
async function retryUnavailable<T>(call: () => Promise<T>): Promise<T> {
  const deadline = Date.now() + 20_000;
  for (;;) {
    try {
      return await call();
    } catch (error) {
      const code = (error as { code?: number }).code;
      if ((code !== status.UNAVAILABLE && code !== status.DEADLINE_EXCEEDED) || Date.now() > deadline) throw error;
      await new Promise((r) => setTimeout(r, 200));
    }
  }
}

/** Somebody was told SOLD_OUT, yet units are left once everything has settled (no run releases any). */
async function soldOutEarly(stack: FaultStack, saleId: string, stock: number, purchases: Purchase[]): Promise<CampaignAnomaly[]> {
  const told = purchases.filter((p) => p.answer.kind === "refused" && p.answer.reason === "SOLD_OUT");
  if (told.length === 0) return [];
  const sold = await stack.sold(saleId);
  return sold < stock ? [{ kind: "sold out early", detail: `${told.length} purchase(s) were told SOLD_OUT, but only ${sold} of ${stock} units were sold` }] : [];
}

/** Every process running (SIGCONT, restart what is dead), every link healed, every service SERVING. */
export async function healAll(stack: FaultStack): Promise<void> {
  const scope = campaignScope({ natsCluster: stack.natsNodes.length > 0, redisCluster: stack.redisNodes.length > 0 });
  for (const link of scope.links) stack.proxy(link).heal();
  for (const node of stack.natsNodes) {
    stack.natsNodeProxy(node).heal();
    await stack.restartNatsNode(node);
  }
  for (const node of stack.redisNodes) await stack.restartRedisNode(node);
  const dependencies = (["redis", "nats", "postgres"] as const).filter((d) => scope.targets.includes(d));
  for (const target of [...dependencies, ...stack.services]) {
    const state = stack.state(target);
    if (state === "stopped") await stack.kill(target, "SIGCONT");
    if (state === "dead") await stack.restart(target);
  }
  await stack.waitServing();
}

// ---------------------------------------------------------------- summary

export interface FaultRow {
  /** "kill redis", "latency inventory->redis", ... */
  fault: string;
  kind: FaultKind;
  /** Runs in which it was injected. */
  runs: number;
  injected: number;
  /** Injections or heals that failed. */
  failed: number;
  /** Anomalies of the runs it was injected in, by kind (a run's anomalies count for each of its faults). */
  anomalies: Partial<Record<CampaignAnomalyKind, number>>;
}

export function faultRows(result: CampaignResult): FaultRow[] {
  const rows = new Map<string, FaultRow>();
  for (const run of result.runs) {
    const seen = new Set<string>();
    for (const f of run.faults) {
      if (f.injectedAtMs === undefined) continue;
      const name = `${f.kind} ${f.target}`;
      const row = rows.get(name) ?? { fault: name, kind: f.kind, runs: 0, injected: 0, failed: 0, anomalies: {} };
      rows.set(name, row);
      row.injected++;
      if (f.error) row.failed++;
      if (seen.has(name)) continue;
      seen.add(name);
      row.runs++;
      for (const a of run.anomalies) row.anomalies[a.kind] = (row.anomalies[a.kind] ?? 0) + 1;
    }
  }
  return [...rows.values()].sort((a, b) => a.fault.localeCompare(b.fault));
}

export function formatSummary(result: CampaignResult): string {
  const rows = faultRows(result);
  const anomalies = (a: FaultRow["anomalies"]) =>
    Object.entries(a)
      .map(([k, n]) => `${k} ${n}`)
      .join(", ") || "none";
  const byKind = new Map<FaultKind, FaultRow>();
  for (const r of rows) {
    const k = byKind.get(r.kind) ?? { fault: `${r.kind} (all)`, kind: r.kind, runs: 0, injected: 0, failed: 0, anomalies: {} };
    byKind.set(r.kind, k);
    k.injected += r.injected;
    k.failed += r.failed;
  }
  // Runs and anomalies per kind are counted per run, not summed over its targets.
  for (const [kind, row] of byKind) {
    for (const run of result.runs) {
      if (!run.faults.some((f) => f.kind === kind && f.injectedAtMs !== undefined)) continue;
      row.runs++;
      for (const a of run.anomalies) row.anomalies[a.kind] = (row.anomalies[a.kind] ?? 0) + 1;
    }
  }
  const table = [
    ["fault", "runs", "injected", "failed", "anomalies"],
    ...[...byKind.values(), ...rows].map((r) => [r.fault, String(r.runs), String(r.injected), String(r.failed), anomalies(r.anomalies)]),
  ];
  const widths = table[0].map((_, i) => Math.max(...table.map((row) => row[i].length)));
  const lines = table.map((row) => row.map((cell, i) => (i === row.length - 1 ? cell : cell.padEnd(widths[i]))).join("  "));
  lines.splice(1 + byKind.size, 0, "");
  const total = result.runs.reduce((n, r) => n + r.anomalies.length, 0);
  const sum = (f: (r: RunResult) => number) => result.runs.reduce((n, r) => n + f(r), 0);
  const o = result.options;
  const head = [
    `seed ${result.seed} (replay: npm run chaos -- --seed ${result.seed}${(o.fromRun ?? 1) > 1 ? ` --from-run ${o.fromRun}` : ""} --runs ${o.runs} --sales ${o.sales} --users ${o.users} --stock ${o.stock} --duration ${o.durationMs} --faults ${o.kinds.join(",")} --max-concurrent ${o.maxConcurrent}${o.faultMs ? ` --fault-ms ${o.faultMs.join("-")}` : ""}${o.natsCluster ? " --nats-cluster" : ""}${o.redisCluster ? " --redis-cluster" : ""})`,
    `${result.runs.length} run(s), ${result.runs.reduce((n, r) => n + r.faults.filter((f) => f.injectedAtMs !== undefined).length, 0)} fault(s) injected, ` +
      `${result.runs.filter((r) => r.anomalies.length > 0).length} run(s) with anomalies`,
    `purchases: ${sum((r) => r.purchases.accepted)} accepted, ${sum((r) => r.purchases.refused)} refused, ` +
      `${sum((r) => r.purchases.unanswered)} unanswered (given up after 20 s of retries); ${sum((r) => r.sold)} units sold`,
    "",
  ];
  const tail = ["", total === 0 ? "PASS: no anomaly" : `FAIL: ${total} anomal${total === 1 ? "y" : "ies"}`];
  for (const r of result.runs.filter((x) => x.anomalies.length > 0)) {
    tail.push(
      `  run ${r.run + 1} (replay it alone with --from-run ${r.run + 1} --runs ${r.run + 1}; run seed ${r.seed}, sales ${r.saleIds.join(", ")}); faults: ${r.faults.map((f) => `${f.kind} ${f.target} @${f.atMs}ms`).join(", ") || "none"}`,
    );
    for (const a of r.anomalies) tail.push(`    ${a.kind}: ${a.detail}`);
  }
  return [...head, ...lines, ...tail].join("\n");
}
