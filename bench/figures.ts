// The figures: each runs its measurements through a Bench and returns its
// table rows (ours, baseline, ratio, target, met?) and notes.
import { credentials } from "@grpc/grpc-js";
import { OrderServiceClient, callUnary, userMetadata } from "@seckill/sdk";
import { MAX_STOCK, PERSIST_TIMEOUT_MS, log, type Bench, type Measured } from "./bench.js";
import { isMissing, type H2loadResult, type Missing, type PgbenchResult } from "./external.js";
import { countOf, latencyOf, rateOf } from "./h2-load.js";
import { summarizeRss } from "./proc.js";
import { fmt, median, spread, type Row } from "./report.js";

export interface Outcome {
  rows: Row[];
  notes: string[];
  /** figure a's accepted purchases/s (median), the sustainable load of figure e. */
  sustainable?: number;
  noopRates?: number[];
}

export const skippedRow = (figure: string, target: string, why: string): Row => ({ figure, ours: "—", baseline: "—", ratio: "—", target, met: `skipped: ${why}` });

export async function figuresAB(bench: Bench): Promise<Outcome> {
  const { settings, stack, noop } = bench;
  const rows: Row[] = [];
  const notes: string[] = [];
  const noopRates: number[] = [];
  const okRates: number[] = [];
  const soldOutRates: number[] = [];

  // Figure b's sale: stock 1, bought once, so the order service knows it is sold out.
  const soldOutSale = await stack.createSale({ totalStock: 1 });
  const orders = new OrderServiceClient(stack.orderAddress, credentials.createInsecure());
  try {
    await callUnary(orders, "placeOrder", { saleId: soldOutSale.saleId, quantity: 1, requestId: "first-buyer", purchaseToken: "", retry: false }, { metadata: userMetadata("first-buyer"), deadlineMs: 5000 });
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
  rows.push(
    settings.figures.has("b")
      ? ratioRow("b. sold-out answers/s", soldOutRates, 0.95)
      : skippedRow("b. sold-out answers/s", "≥ 0.95", "not in BENCH_FIGURES"),
  );
  return { rows, notes, sustainable: okRates.length > 0 ? median(okRates) : undefined, noopRates };
}

export async function figureE(bench: Bench, sustainable: number | undefined): Promise<Outcome> {
  const { settings, stack, noop } = bench;
  const target = "≤ 50 ms, excess refused fast";
  const figure = `e. p99 of admitted calls at ${settings.overload}× the sustainable load`;
  if (!settings.figures.has("e")) return { rows: [skippedRow(figure, target, "not in BENCH_FIGURES")], notes: [] };
  if (!sustainable) return { rows: [skippedRow(figure, target, "needs figure a (the sustainable load)")], notes: [] };

  const offered = Math.round(sustainable * settings.overload);
  // Open loop catches up after a stall, so a little more than rate × time may be sent.
  const pool = Math.ceil(offered * (settings.seconds + settings.warmup) * 1.1) + 1000;
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
  if (achieved < offered * 0.95) {
    notes.push(`e: the generator offered only ${fmt.rate(achieved)} of the ${fmt.rate(offered)} asked (it shares the machine's CPU; max lag ${e.maxLagMs} ms, ${e.notSent} not sent)`);
  }
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
          `offered ${fmt.rate(achieved)}, OK ${fmt.rate(rateOf(e, "OK"))}`,
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
  const names = ["generator", "noop", "order", "inventory", "order-writer", "redis", "nats", "postgres"];
  const servers = names.filter((n) => n !== "generator");
  const lines = [
    "Where the time goes: CPU µs per call sent, by process, in each run (from /proc; the run includes its warm-up;",
    "the writer and Postgres work on orders accepted during the run, so their share shows what persisting costs).",
    "`postgres` counts the backends of the bench's database and the server's background processes; `redis` and `nats`",
    "count the whole servers. `other` is CPU the machine spent on anything else (other work on a shared machine):",
    "when it is large, the run was disturbed.",
    "",
    `| run | wall s | calls | ${names.join(" | ")} | servers total | other | outcomes | p50 / p99 OK | RSS max MB |`,
    `|---|---|---|${names.map(() => "---").join("|")}|---|---|---|---|---|`,
  ];
  for (const { name, result, cpu, rssMax } of runs) {
    const ok = latencyOf(result, "OK");
    const perCall = (seconds: number) => (result.sent > 0 ? Math.round((seconds * 1e6) / result.sent) : 0);
    const total = servers.reduce((sum, n) => sum + (cpu[n] ?? 0), 0);
    const other = Math.max(0, cpu.machine - total - cpu.generator);
    const rss = rssMax ? Object.entries(rssMax).filter(([n]) => n !== "noop" || name.includes("no-op")).map(([n, mb]) => `${n} ${Math.round(mb)}`).join(", ") : "";
    lines.push(
      `| ${name} | ${cpu.wall.toFixed(1)} | ${result.sent} | ${names.map((n) => perCall(cpu[n] ?? 0)).join(" | ")} | ${perCall(total)} | ${perCall(other)} | ` +
        `${Object.entries(result.statuses).map(([k, v]) => `${k} ${v}`).join(", ")} | ${fmt.ms(ok.percentile(50))} / ${fmt.ms(ok.percentile(99))} | ${rss} |`,
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
