// The figures: each runs its measurements through a Bench and returns its
// table rows (ours, baseline, ratio, target, met?) and notes.
import { credentials } from "@grpc/grpc-js";
import { OrderServiceClient, callUnary, userMetadata } from "@seckill/sdk";
import { MAX_STOCK, PERSIST_TIMEOUT_MS, log, type Bench, type Measured } from "./bench.js";
import { buyThroughEdge } from "./edge.js";
import { isMissing, type H2loadResult, type Missing, type PgbenchResult } from "./external.js";
import { EDGE_LIMITED, countOf, latencyOf, rateOf, type LoadResult, type TokenSigner } from "./h2-load.js";
import { Histogram } from "./histogram.js";
import { summarizeRss } from "./proc.js";
import { fmt, median, spread, type Row } from "./report.js";

export interface Outcome {
  rows: Row[];
  notes: string[];
  /** figure a's accepted purchases/s (median), the sustainable load of figure e. */
  sustainable?: number;
  /** figure a-edge's accepted purchases/s through Envoy (median), the sustainable load of figure e-edge. */
  edgeSustainable?: number;
  noopRates?: number[];
}

/** How long a generator's purchase tokens live: the run, its warm-up and a minute to spare. */
const tokenSigner = (bench: Bench): TokenSigner => ({ ...bench.stack.signer, ttlMs: (bench.settings.seconds + bench.settings.warmup + 60) * 1000 });

/** CPU µs per call sent, of one process group, in the last run. */
const cpuPerCall = (bench: Bench, group: string): number => {
  const { result, cpu } = bench.runs[bench.runs.length - 1];
  return result.sent > 0 ? ((cpu[group] ?? 0) * 1e6) / result.sent : NaN;
};

/** How the edge runs in the bench, for the table. */
export function edgeDescription(bench: Bench, bucket: string): string {
  const edge = bench.edge;
  return (
    `envoy/src buildBootstrap(LOCAL_TOPOLOGY with the bench's ports, LOCAL_LIMITS; PlaceOrder bucket ${bucket}): ` +
    `local_ratelimit, jwt_authn on PlaceOrder (a gateway-signed ES256 token per call), global ratelimit to the gateway's RateLimitService ` +
    `(${bench.stack.rateLimitRules}), h2c, access log to /dev/null; Envoy ${edge ? `${edge.workers} worker threads` : ""}`
  );
}

const A_EDGE_FIGURE = "a-edge. accepted purchases/s through Envoy ÷ direct (a purchase token per call on both sides)";

export const skippedRow = (figure: string, target: string, why: string): Row => ({ figure, ours: "—", baseline: "—", ratio: "—", target, met: `skipped: ${why}` });

export async function figuresAB(bench: Bench): Promise<Outcome> {
  const { settings, stack, noop } = bench;
  const rows: Row[] = [];
  const notes: string[] = [];
  const noopRates: number[] = [];
  const okRates: number[] = [];
  const soldOutRates: number[] = [];
  const edgeRates: number[] = [];
  const directTokenRates: number[] = [];
  const envoyCpu: number[] = [];
  const gatewayCpu: number[] = [];
  if (!["a", "b", "a-edge"].some((f) => settings.figures.has(f))) {
    const why = "not in BENCH_FIGURES";
    return {
      rows: [skippedRow("a. accepted purchases/s", "≥ 0.7", why), skippedRow("b. sold-out answers/s", "≥ 0.95", why), skippedRow(A_EDGE_FIGURE, "≥ 0.85", why)],
      notes,
      noopRates,
    };
  }
  const edgeOn = settings.figures.has("a-edge") && bench.startEdge !== undefined;
  if (edgeOn) {
    const edge = await bench.useEdge({ placeOrderBurst: EDGE_UNLIMITED, placeOrderPerSecond: EDGE_UNLIMITED });
    const check = await stack.createSale({ totalStock: 100 });
    const attempts = await buyThroughEdge(edge, stack, check.saleId);
    log(`edge at ${edge.address} (pid ${edge.pid}, ${edge.workers} workers): a gateway token bought through it after ${attempts} attempt(s)`);
  }

  // Figure b's sale: stock 1, bought once, so the order service knows it is sold out.
  const soldOutSale = await stack.createSale({ totalStock: 1 });
  const orders = new OrderServiceClient(stack.orderAddress, credentials.createInsecure());
  try {
    await callUnary(
      orders,
      "placeOrder",
      { saleId: soldOutSale.saleId, quantity: 1, requestId: "first-buyer", purchaseToken: "", retry: false },
      { metadata: userMetadata("first-buyer"), deadlineMs: 5000 },
    );
  } finally {
    orders.close();
  }

  for (let rep = 1; rep <= settings.reps; rep++) {
    const base = await bench.load(`no-op #${rep}`, noop.address, { saleId: soldOutSale.saleId, mode: "closed", poolSize: bench.noopPool() });
    const noopRate = rateOf(base, "OK");
    noopRates.push(noopRate);

    if (settings.figures.has("a")) {
      // Stock for 1.5× the no-op rate: never sells out within the window.
      const stock = Math.min(MAX_STOCK, Math.ceil(noopRate * 1.5 * (settings.seconds + settings.warmup)) + 1000);
      const sale = await stack.createSale({ totalStock: stock, perUserLimit: 1 });
      const a = await bench.load(`a. purchases #${rep}`, stack.orderAddress, { saleId: sale.saleId, mode: "closed", poolSize: stock }, true);
      okRates.push(rateOf(a, "OK"));
      if (countOf(a, "FAILED_PRECONDITION") > 0) notes.push(`a #${rep}: the sale sold out during the window (stock ${stock}); raise BENCH_MAX_RATE`);
      // Let the writer catch up before the next measurement, so it does not compete for CPU.
      const started = Date.now();
      const persisted = await bench.waitPersisted(sale.saleId, countOf(a, "OK"));
      log(`a #${rep}: writer caught up ${fmt.s(persisted.doneAt - started)} after the run${persisted.reached ? "" : " (timed out)"}`);
    }
    if (settings.figures.has("b")) {
      const b = await bench.load(`b. sold out #${rep}`, stack.orderAddress, { saleId: soldOutSale.saleId, mode: "closed", poolSize: bench.noopPool() });
      soldOutRates.push(rateOf(b, "FAILED_PRECONDITION"));
    }
    if (edgeOn) {
      // The same calls (a purchase token each) to the order service directly, then through Envoy.
      // A pool that cannot run out: purchases never outpace a no-op call (each request is a token signed beforehand).
      const basis = Math.max(noopRate, okRates[rep - 1] ?? 0);
      const stock = Math.min(MAX_STOCK, Math.ceil(basis * 1.5 * (settings.seconds + settings.warmup)) + 1000);
      const tokens = tokenSigner(bench);
      for (const via of ["direct", "envoy"] as const) {
        const sale = await stack.createSale({ totalStock: stock, perUserLimit: 1 });
        const address = via === "envoy" ? bench.edge!.address : stack.orderAddress;
        const run = await bench.load(
          `a-edge. purchases with tokens, ${via === "envoy" ? "through Envoy" : "direct"} #${rep}`,
          address,
          { saleId: sale.saleId, mode: "closed", poolSize: stock, tokens },
          true,
        );
        (via === "envoy" ? edgeRates : directTokenRates).push(rateOf(run, "OK"));
        if (via === "envoy") {
          envoyCpu.push(cpuPerCall(bench, "envoy"));
          gatewayCpu.push(cpuPerCall(bench, "gateway"));
        }
        if (countOf(run, "OK") < countOf(run)) notes.push(`a-edge #${rep} ${via}: not every answer was OK: ${JSON.stringify(run.statuses)} ${JSON.stringify(run.reasons)}`);
        if (run.poolExhausted) notes.push(`a-edge #${rep} ${via}: the request pool (${stock}) ran out before the window ended; the rate is understated`);
        await bench.waitPersisted(sale.saleId, countOf(run, "OK"));
      }
    }
  }

  const ratioRow = (figure: string, oursRates: number[], target: number): Row => {
    const ratios = oursRates.map((r, i) => r / noopRates[i]);
    const ratio = median(ratios);
    return {
      figure,
      ours: fmt.rate(median(oursRates)) + spread(oursRates, fmt.rate),
      baseline: `no-op ${fmt.rate(median(noopRates))}${spread(noopRates, fmt.rate)}`,
      ratio: fmt.ratio(ratio) + spread(ratios, fmt.ratio),
      target: `≥ ${target}`,
      met: fmt.yes(ratio >= target),
    };
  };
  rows.push(
    settings.figures.has("a")
      ? ratioRow("a. accepted purchases/s (PlaceOrder, unique users)", okRates, 0.7)
      : skippedRow("a. accepted purchases/s", "≥ 0.7", "not in BENCH_FIGURES"),
  );
  rows.push(settings.figures.has("b") ? ratioRow("b. sold-out answers/s", soldOutRates, 0.95) : skippedRow("b. sold-out answers/s", "≥ 0.95", "not in BENCH_FIGURES"));
  if (edgeOn && edgeRates.length > 0) {
    const ratios = edgeRates.map((r, i) => r / directTokenRates[i]);
    const ratio = median(ratios);
    rows.push({
      figure: A_EDGE_FIGURE,
      ours:
        `${fmt.rate(median(edgeRates))}${spread(edgeRates, fmt.rate)}; Envoy ${Math.round(median(envoyCpu))} µs CPU per call${spread(envoyCpu, (n) => `${Math.round(n)}`)}, ` +
        `gateway (RateLimitService) ${Math.round(median(gatewayCpu))} µs`,
      baseline: `direct ${fmt.rate(median(directTokenRates))}${spread(directTokenRates, fmt.rate)} (without tokens, figure a: ${okRates.length ? fmt.rate(median(okRates)) : "—"})`,
      ratio: fmt.ratio(ratio) + spread(ratios, fmt.ratio),
      target: "≥ 0.85",
      met: fmt.yes(ratio >= 0.85),
    });
    notes.push(
      `a-edge: the edge is ${edgeDescription(bench, "lifted to 1,000,000/s so it does not limit")}. Envoy's CPU per call is from /proc/<pid>/stat of the envoy process before and after each run through it.`,
    );
  } else {
    rows.push(skippedRow(A_EDGE_FIGURE, "≥ 0.85", settings.figures.has("a-edge") ? (bench.edgeMissing ?? "no Envoy") : "not in BENCH_FIGURES"));
  }
  return {
    rows,
    notes,
    sustainable: okRates.length > 0 ? median(okRates) : undefined,
    edgeSustainable: edgeRates.length > 0 ? median(edgeRates) : undefined,
    noopRates,
  };
}

/** proc.ts's sampleRss interval. */
const RSS_SAMPLE_MS = 500;

/** The token bucket of the a-edge runs: far above any rate the machine reaches. */
const EDGE_UNLIMITED = 1_000_000;

/** Answers through the edge that are neither admitted nor a documented refusal, by outcome. */
export function undocumentedAnswers(result: LoadResult): Record<string, number> {
  const other: Record<string, number> = {};
  const reasons = result.reasons;
  for (const [name, n] of Object.entries(result.statuses)) {
    let rest = n;
    // The edge's token bucket, or the gateway's global limit: RESOURCE_EXHAUSTED.
    if (name === "OK" || name === EDGE_LIMITED || name === "RESOURCE_EXHAUSTED") rest = 0;
    // A service shedding load (OVERLOADED), or the sale sold out (SOLD_OUT).
    else if (name === "UNAVAILABLE") rest = Math.max(0, n - (reasons.OVERLOADED ?? 0));
    else if (name === "FAILED_PRECONDITION") rest = Math.max(0, n - (reasons.SOLD_OUT ?? 0));
    if (rest > 0) other[name] = rest;
  }
  return other;
}

/**
 * e-edge: the edge's PlaceOrder token bucket just below the sustainable rate
 * through the edge (a-edge), and open-loop offers of several times that rate
 * through Envoy. Admitted calls must keep a p99 ≤ 50 ms, Envoy's refusals a
 * p99 ≤ 10 ms, every answer must be OK or a documented refusal, and the RSS
 * of Envoy and of every service must stay flat.
 */
export async function figureEdgeE(bench: Bench, sustainable: number | undefined): Promise<Outcome> {
  const { settings, stack } = bench;
  const target = "admitted p99 ≤ 50 ms; Envoy's refusals p99 ≤ 10 ms; only OK and documented refusals";
  const figure = (k: number) => `e-edge. through Envoy at ${k}× the sustainable load, token bucket just below it`;
  const rssFigure = "e-edge. RSS of Envoy and every service during the e-edge runs (first after warm-up → max → last)";
  const rssTarget = "flat (last ≤ 1.25 × first), ≤ 200 MB per service";
  const skip = (why: string): Outcome => ({
    rows: [...settings.edgeOverloads.map((k) => skippedRow(figure(k), target, why)), skippedRow(rssFigure, rssTarget, why)],
    notes: [],
  });
  if (!settings.figures.has("e-edge")) return skip("not in BENCH_FIGURES");
  if (!bench.startEdge) return skip(bench.edgeMissing ?? "no Envoy");
  if (!sustainable) return skip("needs figure a-edge (the sustainable rate through the edge)");

  const perSecond = Math.max(1, Math.floor(sustainable * settings.edgeBucket));
  const burst = Math.max(1, Math.ceil(perSecond / 10));
  const edge = await bench.useEdge({ placeOrderPerSecond: perSecond, placeOrderBurst: burst });
  const check = await stack.createSale({ totalStock: 100 });
  await buyThroughEdge(edge, stack, check.saleId);
  const bucket = `${fmt.rate(perSecond)} (${settings.edgeBucket} × the a-edge rate ${fmt.rate(sustainable)}), burst ${fmt.int(burst)}`;
  log(`e-edge: edge restarted with the PlaceOrder bucket at ${bucket}`);

  const rows: Row[] = [];
  const notes: string[] = [`e-edge: the edge is ${edgeDescription(bench, bucket)}.`];
  const runsBefore = bench.runs.length;
  const tokens = tokenSigner(bench);
  for (const k of settings.edgeOverloads) {
    const offered = Math.round(sustainable * k);
    const pool = Math.ceil(offered * (settings.seconds + settings.warmup)) + 1000;
    const sale = await stack.createSale({ totalStock: Math.min(MAX_STOCK, pool) });
    const protocolErrors = () => edge.stat("http.edge.downstream_cx_protocol_error");
    const errorsBefore = await protocolErrors();
    const r = await bench.load(
      `e-edge. ${k}× through Envoy at ${fmt.rate(offered)}`,
      edge.address,
      { saleId: sale.saleId, mode: "open", rate: offered, poolSize: pool, tokens },
      true,
    );
    const envoyUs = cpuPerCall(bench, "envoy");
    const closedByEnvoy = (await protocolErrors()) - errorsBefore;
    if (closedByEnvoy > 0) {
      notes.push(
        `e-edge ${k}×: Envoy closed ${closedByEnvoy} client connections as protocol errors (http.edge.downstream_cx_protocol_error; the generator saw ${[...new Set(r.errors)].join(", ")}) ` +
          `and the generator opened each again (it keeps ${settings.connections}): the calls in flight on them count as NO_STATUS`,
      );
    }
    await bench.waitPersisted(sale.saleId, countOf(r, "OK"));
    const ok = latencyOf(r, "OK");
    const refused = latencyOf(r, EDGE_LIMITED);
    const other = undocumentedAnswers(r);
    const otherCount = Object.values(other).reduce((a, b) => a + b, 0);
    const achieved = r.sentInWindow / r.window.seconds;
    const counts = Object.entries(r.statuses)
      .sort((x, y) => y[1] - x[1])
      .map(([name, n]) => `${name} ${fmt.int(n)}`)
      .join(", ");
    const reasons = Object.keys(r.reasons).length
      ? ` (reasons: ${Object.entries(r.reasons)
          .map(([name, n]) => `${name} ${fmt.int(n)}`)
          .join(", ")})`
      : "";
    const admitted = rateOf(r, "OK");
    rows.push({
      figure: figure(k),
      ours:
        `admitted p99 ${fmt.ms(ok.percentile(99))} (p50 ${fmt.ms(ok.percentile(50))}, ${fmt.rate(admitted)}); ` +
        `Envoy's refusals p99 ${fmt.ms(refused.percentile(99))} (p50 ${fmt.ms(refused.percentile(50))}); ` +
        `answers: ${counts}${reasons}; late sends ${fmt.int(r.lateInWindow)} of ${fmt.int(r.sentInWindow)} (send lag p99 ${fmt.ms(histogramP99(r))})` +
        `${r.reconnects ? `; ${r.reconnects} connections closed by Envoy and opened again` : ""}; Envoy ${Math.round(envoyUs)} µs CPU per call`,
      baseline: `offered ${fmt.rate(achieved)} (${k} × ${fmt.rate(sustainable)}); bucket ${fmt.rate(perSecond)}`,
      ratio: fmt.ratio(admitted / perSecond),
      target,
      met: fmt.yes(ok.count > 0 && ok.percentile(99) <= 50_000 && refused.percentile(99) <= 10_000 && otherCount === 0),
    });
    if (otherCount > 0)
      notes.push(
        `e-edge ${k}×: answers that are neither admitted nor a documented refusal: ${JSON.stringify(other)}${r.errors.length ? `; errors: ${r.errors.slice(0, 3).join("; ")}` : ""}`,
      );
    if (r.poolExhausted || r.notSent > 0) notes.push(`e-edge ${k}×: ${fmt.int(r.notSent)} calls of the schedule not sent`);
  }
  notes.push(
    "e-edge: ratio = admitted calls/s ÷ the bucket's rate; latencies count from each call's scheduled send (open loop), so a generator that falls behind shows in them: late sends are calls that left ≥ 10 ms after their time.",
  );

  // RSS: every process sampled every 500 ms through the e-edge runs, from the end of the first
  // run's warm-up (a restarted Envoy grows its buffers then): the first sample against the last.
  const series: Record<string, number[]> = {};
  const skipWarmup = Math.ceil((settings.warmup * 1000) / RSS_SAMPLE_MS);
  bench.runs.slice(runsBefore).forEach((run, i) => {
    for (const [n, samples] of Object.entries(run.rssSeries ?? {})) {
      if (n === "noop") continue;
      series[n] ??= [];
      series[n].push(...(i === 0 ? samples.slice(skipWarmup) : samples));
    }
  });
  const names = Object.keys(series).filter((n) => series[n].length > 0);
  const flat = names.every((n) => series[n][series[n].length - 1] <= 1.25 * series[n][0]);
  const bounded = names.every((n) => n === "envoy" || Math.max(...series[n]) <= 200);
  rows.push({
    figure: rssFigure,
    ours: names.map((n) => `${n} ${fmt.mb(series[n][0])} → ${fmt.mb(Math.max(...series[n]))} → ${fmt.mb(series[n][series[n].length - 1])}`).join("; "),
    baseline: "—",
    ratio: fmt.ratio(Math.max(...names.map((n) => series[n][series[n].length - 1] / series[n][0]))),
    target: rssTarget,
    met: fmt.yes(names.length > 0 && flat && bounded),
  });
  await bench.stopEdge();
  return { rows, notes };
}

/** p99 of how late the window's calls left (open loop), µs. */
const histogramP99 = (r: LoadResult): number => Histogram.fromData(r.sendLag).percentile(99);

export async function figureE(bench: Bench, sustainable: number | undefined): Promise<Outcome> {
  const { settings, stack, noop } = bench;
  const target = "≤ 50 ms, excess refused fast";
  const figure = `e. p99 of admitted calls at ${settings.overload}× the sustainable load`;
  if (!settings.figures.has("e")) return { rows: [skippedRow(figure, target, "not in BENCH_FIGURES")], notes: [] };
  if (!sustainable) return { rows: [skippedRow(figure, target, "needs figure a (the sustainable load)")], notes: [] };

  const offered = Math.round(sustainable * settings.overload);
  // The open loop's schedule is rate × time calls, all sent (late if need be).
  const pool = Math.ceil(offered * (settings.seconds + settings.warmup)) + 1000;
  const sale = await stack.createSale({ totalStock: Math.min(MAX_STOCK, pool) });
  const open = { mode: "open" as const, rate: offered, poolSize: pool };
  const base = await bench.load(`e. no-op at ${fmt.rate(offered)}`, noop.address, { saleId: sale.saleId, ...open });
  const floor = await bench.load(`e. bare HTTP/2 refusals at ${fmt.rate(offered)}`, noop.floorAddress, { saleId: sale.saleId, ...open });
  const floorCpu = bench.runs[bench.runs.length - 1].cpu;
  const floorCpuUs = floor.sent > 0 ? (floorCpu.noop * 1e6) / floor.sent : NaN;
  const e = await bench.load(`e. overload at ${fmt.rate(offered)}`, stack.orderAddress, { saleId: sale.saleId, ...open }, true);
  await bench.waitPersisted(sale.saleId, countOf(e, "OK"));

  const refusedNames = Object.keys(e.statuses).filter((n) => n !== "OK");
  const completed = countOf(e);
  const refusedShare = completed > 0 ? countOf(e, ...refusedNames) / completed : 0;
  const p99ok = latencyOf(e, "OK").percentile(99);
  const p99refused = refusedNames.length > 0 ? latencyOf(e, ...refusedNames).percentile(99) : 0;
  const p99base = latencyOf(base, "OK").percentile(99);
  const p99floor = latencyOf(floor).percentile(99);
  const achieved = e.sentInWindow / e.window.seconds;
  const notes: string[] = [];
  if (e.lateInWindow > 0) {
    notes.push(
      `e: ${fmt.int(e.lateInWindow)} of the ${fmt.int(e.sentInWindow)} calls scheduled in the window left ≥ 10 ms after their time (the generator shares the machine's CPU; longest lag ${e.maxLagMs} ms); ` +
        `they were sent anyway and their latency counts from their scheduled time`,
    );
  }
  if (e.notSent > 0) notes.push(`e: ${fmt.int(e.notSent)} calls of the schedule not sent (request pool too small)`);
  notes.push(
    `e: the refusal floor is a bare node:http2 server (bench/refusal-floor.ts, no grpc-js) that answers every call with the gate's refusal: ` +
      `at ${fmt.rate(offered)} offered it used ${Math.round(floorCpuUs)} µs of CPU per call (${fmt.pct((floorCpuUs * offered) / 1e6)} of a core at the offered rate, ${fmt.pct(floorCpu.noop / floorCpu.wall)} over the run with its warm-up) and kept a p99 of ${fmt.ms(p99floor)}; ` +
      `a reference for what refusing that rate costs a Node.js process here before any admitted call is served.`,
  );
  const fast = 50_000;
  return {
    rows: [
      {
        figure,
        ours:
          `p99 OK ${fmt.ms(p99ok)}; refused ${fmt.pct(refusedShare)}, p99 refusals ${fmt.ms(p99refused)}; ` +
          `offered ${fmt.rate(achieved)}, OK ${fmt.rate(rateOf(e, "OK"))}; late sends ${fmt.int(e.lateInWindow)}`,
        baseline: `no-op at same offer: p99 ${fmt.ms(p99base)}; bare HTTP/2 refusing every call: p99 ${fmt.ms(p99floor)}, ${Math.round(floorCpuUs)} µs CPU per call`,
        ratio: fmt.ratio(p99ok / p99base),
        target,
        met: fmt.yes(p99ok <= fast && (refusedShare === 0 || p99refused <= fast)),
      },
    ],
    notes,
  };
}

export async function figuresCD(bench: Bench, pgbench: PgbenchResult | Missing | undefined): Promise<Outcome> {
  const { settings, stack } = bench;
  const rows: Row[] = [];
  const notes: string[] = [];
  const n = settings.burst;
  const cFigure = `c. orders persisted/s during a ${fmt.int(n)} burst`;
  const cTarget = "≥ 20";
  if (!settings.figures.has("c") && !settings.figures.has("d")) {
    return { rows: [skippedRow(cFigure, cTarget, "not in BENCH_FIGURES"), skippedRow("d. last order in Postgres after the burst", "≤ 2 s", "not in BENCH_FIGURES")], notes };
  }
  const pgRow = (figure: string, rate: number): Row => {
    if (!pgbench) return skippedRow(figure, cTarget, "pgbench not run");
    if (isMissing(pgbench)) return { ...skippedRow(figure, cTarget, pgbench.missing), ours: fmt.rate(rate) };
    const ratio = rate / pgbench.tps;
    return { figure, ours: fmt.rate(rate), baseline: `pgbench hot row ${fmt.rate(pgbench.tps)}`, ratio: fmt.ratio(ratio), target: cTarget, met: fmt.yes(ratio >= 20) };
  };

  // The burst: stock n, n unique buyers, as fast as the generator goes; the writer running.
  const sale = await stack.createSale({ totalStock: n });
  const watch = bench.watchSold(sale.saleId);
  const burst = await bench.load(`c/d. burst of ${n}`, stack.orderAddress, { saleId: sale.saleId, mode: "closed", calls: n });
  const ok = countOf(burst, "OK");
  const persisted = await watch.until(ok);
  const acceptSeconds = (burst.lastOkAt - burst.firstSentAt) / 1000;
  const [{ count: rowsWritten }] = await stack.db("orders").where({ sale_id: sale.saleId }).count({ count: "*" });
  if (ok !== n) notes.push(`c/d: ${fmt.int(ok)} of ${fmt.int(n)} purchases accepted (${JSON.stringify(burst.statuses)})`);
  if (!persisted.reached) notes.push(`c/d: only ${persisted.got} of ${ok} orders in Postgres after ${PERSIST_TIMEOUT_MS / 1000} s`);
  if (Number(rowsWritten) !== ok) notes.push(`c/d: ${rowsWritten} order rows for ${ok} accepted purchases`);
  notes.push(
    `c: during the burst the writer can persist no faster than purchases are accepted ` +
      `(${fmt.rate(ok / acceptSeconds)} here); c′ measures the writer alone on a queued backlog`,
  );
  rows.push(pgRow(cFigure, persisted.rate));

  const lagMs = persisted.doneAt - burst.lastOkAt;
  rows.push({
    figure: `d. last order in Postgres after the last accepted purchase (${fmt.int(n)} burst)`,
    ours: persisted.reached ? fmt.s(lagMs) : `> ${fmt.s(lagMs)} (not all persisted)`,
    baseline: `burst accepted in ${fmt.s(acceptSeconds * 1000)} (${fmt.rate(ok / acceptSeconds)})`,
    ratio: fmt.ratio(lagMs / (acceptSeconds * 1000)),
    target: "≤ 2 s",
    met: fmt.yes(persisted.reached && lagMs <= 2000),
  });

  // c′: the writer alone. Stopped while a second burst is accepted, then started on the backlog.
  if (settings.drain) {
    const drainSale = await stack.createSale({ totalStock: n });
    await stack.stopService("order-writer");
    const queued = await bench.load(`c′. burst of ${n}, writer stopped`, stack.orderAddress, { saleId: drainSale.saleId, mode: "closed", calls: n });
    const started = Date.now();
    const drainWatch = bench.watchSold(drainSale.saleId);
    await stack.startService("order-writer");
    const drained = await drainWatch.until(countOf(queued, "OK"));
    log(`c′: writer started and drained ${countOf(queued, "OK")} orders in ${fmt.s(drained.doneAt - started)} (including its start-up)`);
    rows.push(pgRow(`c′. writer alone: ${fmt.int(n)} queued orders persisted/s`, drained.rate));
  }
  return { rows, notes };
}

export function figureF(bench: Bench): Outcome {
  const rows: Row[] = [];
  const noop = summarizeRss(bench.rss.noop);
  for (const name of ["inventory", "order", "order-writer"]) {
    const figure = `f. RSS of ${name} under load (warm → max → end)`;
    const target = "flat, ≤ 200 MB";
    const series = summarizeRss(bench.rss[name]);
    if (!bench.settings.figures.has("f") || !series) {
      rows.push(skippedRow(figure, target, series ? "not in BENCH_FIGURES" : "no samples (needs figures a or e)"));
      continue;
    }
    // Flat: what it holds at the end of the load is within 25 % of what it held once warm.
    const flat = series.end <= series.start * 1.25;
    rows.push({
      figure,
      ours: `${fmt.mb(series.start)} → ${fmt.mb(series.max)} → ${fmt.mb(series.end)}`,
      baseline: noop ? `no-op max ${fmt.mb(noop.max)}` : "—",
      ratio: noop ? fmt.ratio(series.max / noop.max) : "—",
      target,
      met: fmt.yes(flat && series.max <= 200),
    });
  }
  return { rows, notes: [] };
}

export function cpuDetails(runs: Measured[]): string[] {
  const names = ["generator", "noop", "envoy", "gateway", "order", "inventory", "order-writer", "redis", "nats", "postgres"];
  const servers = names.filter((n) => n !== "generator");
  const lines = [
    "Where the time goes: CPU µs per call sent, by process, in each run (from /proc; the run includes its warm-up;",
    "the writer and Postgres work on orders accepted during the run, so their share shows what persisting costs).",
    "`postgres` counts the backends of the bench's database and the server's background processes; `redis` and `nats`",
    "count every server of their kind on the machine (figure g: each stack's own, the cluster's nodes summed). `other` is CPU the machine spent on anything else (other work on a shared machine):",
    "when it is large, the run was disturbed. `envoy` is the edge's process (runs through it, and idle otherwise); `gateway`",
    "answers Envoy's global rate-limit checks. Open-loop runs: `late` is the calls that left ≥ 10 ms after their",
    "scheduled time (all sent anyway; latency counts from the schedule), with the longest lag.",
    "",
    `| run | wall s | calls | ${names.join(" | ")} | servers total | other | outcomes | p50 / p99 OK | late (max lag) | RSS max MB |`,
    `|---|---|---|${names.map(() => "---").join("|")}|---|---|---|---|---|---|`,
  ];
  for (const { name, result, cpu, rssMax } of runs) {
    const ok = latencyOf(result, "OK");
    const perCall = (seconds: number) => (result.sent > 0 ? Math.round((seconds * 1e6) / result.sent) : 0);
    const total = servers.reduce((sum, n) => sum + (cpu[n] ?? 0), 0);
    const other = Math.max(0, cpu.machine - total - cpu.generator);
    const rss = rssMax
      ? Object.entries(rssMax)
          .filter(([n]) => n !== "noop" || name.includes("no-op"))
          .map(([n, mb]) => `${n} ${Math.round(mb)}`)
          .join(", ")
      : "";
    lines.push(
      `| ${name} | ${cpu.wall.toFixed(1)} | ${result.sent} | ${names.map((n) => perCall(cpu[n] ?? 0)).join(" | ")} | ${perCall(total)} | ${perCall(other)} | ` +
        `${Object.entries(result.statuses)
          .map(([k, v]) => `${k} ${v}`)
          .join(", ")} | ${fmt.ms(ok.percentile(50))} / ${fmt.ms(ok.percentile(99))} | ` +
        `${result.mode === "open" ? `${result.late} (${result.maxLagMs} ms)` : "—"} | ${rss} |`,
    );
  }
  return lines;
}

/** The reference row: this generator's no-op rate against h2load's on the same server. */
export function h2loadRow(h2: H2loadResult | Missing, generatorNoop: number): Row {
  const figure = "ref. no-op ceiling: this generator vs h2load";
  if (isMissing(h2)) return { ...skippedRow(figure, "reference", h2.missing), ours: fmt.rate(generatorNoop) };
  return { figure, ours: fmt.rate(generatorNoop), baseline: `h2load ${fmt.rate(h2.rate)}`, ratio: fmt.ratio(generatorNoop / h2.rate), target: "reference", met: "—" };
}
