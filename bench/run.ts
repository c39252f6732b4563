// `npm run bench`: the performance figures of Seckill Mesh, each a ratio
// against a baseline measured in the same run with the same load generator.
//
//   a  accepted purchases/s ÷ no-op calls/s                         ≥ 0.7
//   b  sold-out answers/s ÷ no-op calls/s                           ≥ 0.95
//   c  orders persisted/s during a burst ÷ pgbench hot-row TPS      ≥ 20
//   d  last accepted purchase of a burst → its order in Postgres    ≤ 2 s
//   e  p99 of admitted calls at 3× the sustainable load             ≤ 50 ms, excess refused fast
//   f  RSS of each service under sustained load                     flat, ≤ 200 MB
//   a-edge  accepted purchases/s through the real Envoy ÷ direct    ≥ 0.85
//   e-edge  through Envoy at 3× and 10× the sustainable load, the PlaceOrder
//           token bucket just below it: admitted p99 ≤ 50 ms, Envoy's
//           refusals p99 ≤ 10 ms, only documented answers, RSS flat
//   g  accepted purchases/s on a clustered stack (Redis Cluster, three
//      NATS nodes, JETSTREAM_REPLICAS=3) ÷ on the single-node stack  reference
//
// It starts its own stack (services as processes, own namespace and
// database), a no-op grpc-js server and, for the edge figures, Envoy on the
// bootstrap envoy/src generates (bench/edge.ts); drives them with
// bench/h2-load.ts in a child process, prints one table and writes
// bench/RESULTS.md. Its set-up installs h2load (nghttp2-client) when it is
// missing and it can. A run of some figures only (BENCH_FIGURES) records
// them in a section of their own and keeps the last full run's table. It
// exits 0 whatever the figures say; only a broken harness exits non-zero.
import { fileURLToPath } from "node:url";
import { readConfig } from "../services/common/config.js";
import { ensureDependencies } from "../tools/stack/dependencies.js";
import { ensureEnvoy } from "../tools/envoy/binary.js";
import { ALL_FIGURES, Bench, MAX_STOCK, describeSettings, log, readSettings, type EdgeStarter } from "./bench.js";
import { figureG } from "./cluster.js";
import { startBenchEdge } from "./edge.js";
import { ensureH2load, isMissing, runH2load, runPgbench, type Missing, type PgbenchResult } from "./external.js";
import { cpuDetails, figureE, figureEdgeE, figureF, figuresAB, figuresCD, h2loadRow } from "./figures.js";
import { PLACE_ORDER_PATH, countOf } from "./h2-load.js";
import { fmt, median, textTable, writeResults } from "./report.js";
import { startBenchStack, startNoopProcess } from "./stack.js";

const RESULTS_FILE = fileURLToPath(new URL("./RESULTS.md", import.meta.url));
const STATE_DIR = fileURLToPath(new URL("../.local/bench", import.meta.url));

async function main(): Promise<void> {
  const settings = readSettings(process.env);
  const config = readConfig();
  const cleanups: (() => Promise<unknown>)[] = [];
  let cleaning: Promise<void> | undefined;
  const cleanup = () =>
    (cleaning ??= (async () => {
      for (const fn of cleanups.reverse()) await fn().catch((error: Error) => log(`teardown: ${error.message}`));
    })());
  for (const signal of ["SIGINT", "SIGTERM"] as const) {
    process.on(signal, () => {
      log(`${signal}: tearing down`);
      void cleanup().then(() => process.exit(130));
    });
  }

  try {
    const h2loadSetup = ensureH2load(log);
    if (h2loadSetup) log(h2loadSetup);
    const deps = await ensureDependencies(config, { stateDir: STATE_DIR, log });
    cleanups.push(() => deps.stop());
    const noop = await startNoopProcess();
    cleanups.push(() => noop.stop());
    const stack = await startBenchStack(log);
    cleanups.push(() => stack.stop());
    log(`no-op at ${noop.address}; order service at ${stack.orderAddress}; ${settings.connections} connections × ${settings.streams} streams`);
    let startEdge: EdgeStarter | undefined;
    let edgeMissing: string | undefined;
    let envoyVersion = "";
    if (settings.figures.has("a-edge") || settings.figures.has("e-edge")) {
      try {
        const envoy = ensureEnvoy(log);
        envoyVersion = `${envoy.bin} (${envoy.version})`;
        startEdge = (limits) => startBenchEdge(envoy.bin, stack, limits);
      } catch (error) {
        edgeMissing = `no Envoy: ${(error as Error).message.split("\n")[0]}`;
        log(edgeMissing);
      }
    }
    const bench = new Bench(settings, noop, stack, startEdge, edgeMissing);
    cleanups.push(() => bench.stopEdge());

    // Warm-up: JIT, connection pools, Redis scripts; nothing recorded.
    const warm = await stack.createSale({ totalStock: MAX_STOCK });
    await bench.load("warm-up no-op", noop.address, { saleId: warm.saleId, mode: "closed", seconds: 3, warmupSeconds: 0, poolSize: settings.maxRate * 3 });
    const w = await bench.load("warm-up stack", stack.orderAddress, { saleId: warm.saleId, mode: "closed", seconds: 3, warmupSeconds: 0, poolSize: settings.maxRate * 3 });
    await bench.waitPersisted(warm.saleId, countOf(w, "OK"));
    bench.runs.length = 0;
    bench.disturbed.length = 0;

    const ab = await figuresAB(bench);
    const e = await figureE(bench, ab.sustainable);
    const eEdge = await figureEdgeE(bench, ab.edgeSustainable);
    await bench.stopEdge();
    const f = figureF(bench);

    const noopRates = ab.noopRates ?? [];
    const h2 =
      noopRates.length === 0
        ? { missing: "no no-op runs (figures a, b, a-edge not in BENCH_FIGURES)" }
        : await runH2load(noop.address, {
            connections: settings.connections,
            streams: settings.streams,
            seconds: settings.seconds,
            warmupSeconds: settings.warmup,
            path: PLACE_ORDER_PATH,
          }).catch((error: Error): Missing => ({ missing: `h2load failed: ${error.message.split("\n")[0]}` }));
    const h2Row = h2loadRow(h2, noopRates.length > 0 ? median(noopRates) : NaN);
    if (!isMissing(h2)) log(`h2load no-op: ${fmt.rate(h2.rate)}`);

    let pgbench: PgbenchResult | Missing | undefined;
    if (settings.figures.has("c")) {
      pgbench = await runPgbench(config.databaseAdminUrl, settings.seconds).catch((error: Error): Missing => ({ missing: `pgbench failed: ${error.message.split("\n")[0]}` }));
      log(isMissing(pgbench) ? pgbench.missing : `pgbench hot-row purchase: ${fmt.rate(pgbench.tps)} TPS, ${pgbench.latencyMs} ms mean`);
    }
    const cd = await figuresCD(bench, pgbench);
    const g = await figureG(bench, STATE_DIR);

    const rows = [...ab.rows, ...cd.rows, ...e.rows, ...eEdge.rows, ...f.rows, ...g.rows, h2Row];
    const notes = [...ab.notes, ...cd.notes, ...e.notes, ...eEdge.notes, ...g.notes];
    if (h2loadSetup) notes.push(h2loadSetup);
    if (envoyVersion) notes.push(`envoy: ${envoyVersion}`);
    for (const crash of bench.crashes) notes.push(`Crash: ${crash}`);
    if (bench.disturbed.length > 0) {
      notes.push(
        `Disturbed: other processes (not started by the bench) were busy during ${bench.disturbed.join(", ")}; those figures are unreliable, run again on a quiet machine.`,
      );
    }
    if (settings.figures.has("f")) notes.push("f: warm = the largest sample of the first quarter of the load, end = last sample of the last loaded run; flat = end ≤ 1.25 × warm.");
    notes.push("The generator (raw HTTP/2 frames on a TCP socket, bench/h2-wire.ts) and every server share the same cores: the generator's CPU is in the details below.");
    if (!isMissing(h2)) notes.push(`h2load: ${h2.version}`);
    if (pgbench && !isMissing(pgbench)) notes.push(`pgbench: ${pgbench.version}, ${pgbench.clients} clients, ${pgbench.seconds} s, ${pgbench.latencyMs} ms mean latency`);

    process.stdout.write(`\n${textTable(rows)}\n\n`);
    for (const note of notes) process.stdout.write(`  ${note}\n`);
    writeResults(RESULTS_FILE, {
      rows,
      notes,
      details: cpuDetails(bench.runs),
      settings: describeSettings(settings, config),
      partOf: ALL_FIGURES.split(",").every((f) => settings.figures.has(f)) ? undefined : [...settings.figures].join(","),
    });
    log(`wrote ${RESULTS_FILE}`);
  } finally {
    await cleanup();
  }
}

main().then(
  () => process.exit(0),
  (error: unknown) => {
    process.stderr.write(`bench failed: ${error instanceof Error ? (error.stack ?? error.message) : String(error)}\n`);
    process.exit(1);
  },
);
