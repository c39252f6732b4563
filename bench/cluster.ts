// Figure g: what clustering costs on one machine. The purchases of figure a
// (PlaceOrder straight to the order service, closed loop, a new buyer per
// call) against two stacks in turn, in every repetition: the bench's
// single-node stack (one Redis, one NATS, JETSTREAM_REPLICAS=1) and a
// clustered one started here (a Redis Cluster of three masters with a replica
// each, three NATS nodes with JETSTREAM_REPLICAS=3), both on the same
// Postgres server. CPU is counted on each stack's own Redis and NATS
// processes, whatever else runs on the machine.
import { mkdirSync, mkdtempSync, rmSync } from "node:fs";
import os from "node:os";
import { join } from "node:path";
import { urlList } from "../services/common/config.js";
import { startNatsCluster, type NatsCluster } from "../tools/stack/nats-cluster.js";
import { startRedisCluster, type RedisCluster } from "../tools/stack/redis-cluster.js";
import { Bench, MAX_STOCK, log, type Measured } from "./bench.js";
import { skippedRow, type Outcome } from "./figures.js";
import { countOf, rateOf } from "./h2-load.js";
import { pidListeningOn, pidsNamed } from "./proc.js";
import { fmt, median, spread, type Row } from "./report.js";
import { startBenchStack, type BenchStack } from "./stack.js";

export const CLUSTER_FIGURE = "g. accepted purchases/s, clustered stack (Redis Cluster 3 masters + 3 replicas, 3 NATS nodes, JETSTREAM_REPLICAS=3) ÷ single-node stack";
const CPU_FIGURE = "g. server CPU µs per accepted purchase, clustered ÷ single-node (median of the runs)";
const TARGET = "reference: what clustering costs on one machine";

/** The processes whose CPU figure g reports, in order; `redis` and `nats` are summed over a stack's nodes. */
export const CLUSTER_CPU_GROUPS = ["order", "inventory", "order-writer", "redis", "nats", "postgres"] as const;

const loadAverage = () =>
  os
    .loadavg()
    .map((l) => l.toFixed(2))
    .join(" / ");

const portOf = (url: string) => Number(new URL(url).port);

/** CPU µs per accepted purchase of each group, and their sum, in one run. */
export function cpuPerPurchase(run: Measured): Record<string, number> {
  const ok = countOf(run.result, "OK");
  const us: Record<string, number> = {};
  let total = 0;
  for (const group of CLUSTER_CPU_GROUPS) {
    us[group] = ok > 0 ? ((run.cpu[group] ?? 0) * 1e6) / ok : Number.NaN;
    total += us[group];
  }
  us.total = total;
  return us;
}

/** "order 150, inventory 30, …; total 300" from the medians of the runs. */
export function describeCpu(runs: Measured[]): { text: string; total: number } {
  const perRun = runs.map(cpuPerPurchase);
  const med = (group: string) => median(perRun.map((r) => r[group]));
  const parts = CLUSTER_CPU_GROUPS.map((g) => `${g} ${Math.round(med(g))}`);
  return { text: `${parts.join(", ")}; total ${Math.round(med("total"))}`, total: med("total") };
}

export async function figureG(bench: Bench, stateDir: string): Promise<Outcome> {
  const { settings } = bench;
  const skipped = (why: string): Outcome => ({ rows: [skippedRow(CLUSTER_FIGURE, TARGET, why), skippedRow(CPU_FIGURE, TARGET, why)], notes: [] });
  if (!settings.figures.has("g")) return skipped("not in BENCH_FIGURES");

  const loadBefore = loadAverage();
  mkdirSync(stateDir, { recursive: true });
  const dir = mkdtempSync(join(stateDir, "cluster-"));
  let redis: RedisCluster | undefined;
  let nats: NatsCluster | undefined;
  let stack: BenchStack | undefined;
  const singleServers = bench.servers;
  try {
    [redis, nats] = await Promise.all([startRedisCluster({ stateDir: join(dir, "redis"), log }), startNatsCluster({ stateDir: join(dir, "nats"), log })]);
    stack = await startBenchStack(log, { REDIS_CLUSTER_NODES: redis.nodes.join(","), NATS_URL: nats.url, JETSTREAM_REPLICAS: "3" });
    const clusterRedis = redis;
    const clusterNats = nats;
    const clustered = new Bench(settings, bench.noop, stack);
    clustered.servers = {
      redis: () => clusterRedis.nodes.flatMap((n) => clusterRedis.pid(n) ?? []),
      nats: () => clusterNats.nodes.flatMap((n) => clusterNats.pid(n) ?? []),
    };
    // The single-node stack's own servers; on a machine running other stacks, every server of a kind would count theirs too.
    const single = bench.stack.config;
    const singleRedis = pidListeningOn(portOf(single.redisUrl));
    const singleNats = pidListeningOn(portOf(urlList(single.natsUrl)[0]));
    const notes: string[] = [];
    if (singleRedis === undefined || singleNats === undefined)
      notes.push("g: the single-node Redis or NATS process was not found by its port: every redis-server / nats-server counted");
    bench.servers = {
      redis: () => (singleRedis ? [singleRedis] : pidsNamed("redis-server")),
      nats: () => (singleNats ? [singleNats] : pidsNamed("nats-server")),
    };
    log(`g: clustered stack at ${stack.orderAddress} on Redis ${redis.nodes.join(",")} and NATS ${nats.url}`);

    // Warm-up of the clustered stack, as run.ts warms the single one: nothing recorded.
    const warm = await stack.createSale({ totalStock: MAX_STOCK });
    const w = await clustered.load("g. warm-up clustered stack", stack.orderAddress, {
      saleId: warm.saleId,
      mode: "closed",
      seconds: 3,
      warmupSeconds: 0,
      poolSize: settings.maxRate * 3,
    });
    await clustered.waitPersisted(warm.saleId, countOf(w, "OK"));
    clustered.runs.length = 0;
    clustered.disturbed.length = 0;

    const rates = { single: [] as number[], clustered: [] as number[] };
    const runs = { single: [] as Measured[], clustered: [] as Measured[] };
    // Enough stock never to sell out within a run at the highest rate the bench sizes for.
    const stock = Math.min(MAX_STOCK, Math.ceil(settings.maxRate * (settings.seconds + settings.warmup)) + 1000);
    for (let rep = 1; rep <= settings.reps; rep++) {
      for (const [side, on] of [
        ["single", bench],
        ["clustered", clustered],
      ] as const) {
        const sale = await on.stack.createSale({ totalStock: stock, perUserLimit: 1 });
        const r = await on.load(`g. purchases, ${side === "single" ? "single-node" : "clustered"} stack #${rep}`, on.stack.orderAddress, {
          saleId: sale.saleId,
          mode: "closed",
          poolSize: stock,
        });
        rates[side].push(rateOf(r, "OK"));
        runs[side].push(on.runs[on.runs.length - 1]);
        if (countOf(r, "OK") < countOf(r)) notes.push(`g #${rep} ${side}: not every answer was OK: ${JSON.stringify(r.statuses)} ${JSON.stringify(r.reasons)}`);
        if (r.poolExhausted) notes.push(`g #${rep} ${side}: the request pool (${stock}) ran out before the window ended; raise BENCH_MAX_RATE`);
        // The writer catches up before the next run, so it does not compete for CPU.
        const persisted = await on.waitPersisted(sale.saleId, countOf(r, "OK"));
        if (!persisted.reached) notes.push(`g #${rep} ${side}: only ${persisted.got} of ${countOf(r, "OK")} orders in Postgres in time`);
      }
    }
    bench.runs.push(...clustered.runs);
    bench.disturbed.push(...clustered.disturbed);
    bench.crashes.push(...clustered.crashes);

    const ratios = rates.clustered.map((r, i) => r / rates.single[i]);
    const cpuSingle = describeCpu(runs.single);
    const cpuClustered = describeCpu(runs.clustered);
    const rows: Row[] = [
      {
        figure: CLUSTER_FIGURE,
        ours: `${fmt.rate(median(rates.clustered))}${spread(rates.clustered, fmt.rate)}`,
        baseline: `single-node ${fmt.rate(median(rates.single))}${spread(rates.single, fmt.rate)}`,
        ratio: fmt.ratio(median(ratios)) + spread(ratios, fmt.ratio),
        target: TARGET,
        met: "—",
      },
      {
        figure: CPU_FIGURE,
        ours: `clustered: ${cpuClustered.text}`,
        baseline: `single-node: ${cpuSingle.text}`,
        ratio: fmt.ratio(cpuClustered.total / cpuSingle.total),
        target: TARGET,
        met: "—",
      },
    ];
    notes.push(
      `g: each repetition runs the single-node stack, then the clustered one, with the same generator and load (figure a's: closed loop ${settings.connections} × ${settings.streams}, PlaceOrder direct, a new buyer per call); ` +
        `redis counts the 6 nodes of the cluster (3 masters, 3 replicas) or the one server, nats the 3 nodes or the one server, postgres the stack's database backends and the server's background processes; ` +
        `CPU per accepted purchase from /proc over each run, warm-up included. Load average (1/5/15 min) before figure g: ${loadBefore}; after: ${loadAverage()}.`,
    );
    return { rows, notes };
  } finally {
    bench.servers = singleServers;
    await stack?.stop().catch((error: Error) => log(`g: stopping the clustered stack: ${error.message}`));
    await Promise.all([redis?.stop(), nats?.stop()]).catch((error: Error) => log(`g: stopping the clusters: ${error.message}`));
    rmSync(dir, { recursive: true, force: true });
  }
}
