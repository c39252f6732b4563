// The self-contained HTML report of a simulated sale: the summary table, the
// checks, and inline SVG charts of throughput, latency and persistence.
import { escapeXml, lineChart, stackedBarChart } from "./charts.js";
import { bucketize, type CallRecord, type ClickResult, type PersistSample } from "./stats.js";
import { summaryRows, type Summary } from "./summary.js";

export interface ReportInput {
  summary: Summary;
  calls: CallRecord[];
  clicks: ClickResult[];
  persistSamples: PersistSample[];
  bucketMs?: number;
  generatedAt?: Date;
}

const COLORS = { won: "#2e9d4f", soldOut: "#9aa5b1", refused: "#e0a526", error: "#d64545", p50: "#2b6cb0", p95: "#dd8a0e", p99: "#c53030", persisted: "#6b46c1" };

export function renderReport(input: ReportInput): string {
  const { summary: s } = input;
  const bucketMs = input.bucketMs ?? 100;
  const buckets = bucketize(input.calls, bucketMs);
  const x = buckets.map((b) => b.atMs);
  const perSecond = 1000 / bucketMs;

  const throughput = stackedBarChart(
    {
      title: `PlaceOrder answers per second (${bucketMs} ms buckets)`,
      yLabel: "calls/s",
      x,
      series: [
        { name: "won", color: COLORS.won, values: buckets.map((b) => b.won * perSecond) },
        { name: "sold out", color: COLORS.soldOut, values: buckets.map((b) => b.soldOut * perSecond) },
        { name: "other refusal", color: COLORS.refused, values: buckets.map((b) => b.refused * perSecond) },
        { name: "error", color: COLORS.error, values: buckets.map((b) => b.error * perSecond) },
      ],
    },
    bucketMs,
  );
  const latency = lineChart({
    title: `PlaceOrder latency by start time (${bucketMs} ms buckets)`,
    yLabel: "ms",
    x: x.map((v) => v + bucketMs / 2),
    series: [
      { name: "p50", color: COLORS.p50, values: buckets.map((b) => b.p50) },
      { name: "p95", color: COLORS.p95, values: buckets.map((b) => b.p95) },
      { name: "p99", color: COLORS.p99, values: buckets.map((b) => b.p99) },
    ],
  });

  // Units won (by answer time) against units in Postgres (GetSale.sold samples), cumulative.
  const winTimes = input.clicks.flatMap((c) => (c.outcome.kind === "won" ? [{ at: c.outcome.atMs, units: c.outcome.quantity }] : [])).sort((a, b) => a.at - b.at);
  const samples = input.persistSamples;
  const times = [...new Set([0, ...winTimes.map((w) => w.at), ...samples.map((p) => p.atMs)])].sort((a, b) => a - b);
  let wi = 0;
  let won = 0;
  let si = 0;
  let sold = 0;
  const wonSeries: number[] = [];
  const soldSeries: number[] = [];
  for (const t of times) {
    while (wi < winTimes.length && winTimes[wi].at <= t) won += winTimes[wi++].units;
    while (si < samples.length && samples[si].atMs <= t) sold = samples[si++].sold;
    wonSeries.push(won);
    soldSeries.push(sold);
  }
  const persistence = lineChart({
    title: "Units won (answers) and units in Postgres (GetSale.sold, sampled every 100 ms)",
    yLabel: "units",
    x: times,
    series: [
      { name: "won", color: COLORS.won, values: wonSeries, step: true },
      { name: "in Postgres", color: COLORS.persisted, values: soldSeries, step: true },
    ],
  });

  const checks = s.checks
    .map((c) => `<tr class="${c.ok ? "ok" : "fail"}"><td>${c.ok ? "ok" : "FAIL"}</td><td>${escapeXml(c.name)}</td><td>${escapeXml(c.detail)}</td></tr>`)
    .join("");
  const rows = summaryRows(s)
    .map(([label, value]) => `<tr><th>${escapeXml(label)}</th><td>${escapeXml(String(value))}</td></tr>`)
    .join("");

  return `<!doctype html>
<html lang="en">
<head>
<meta charset="utf-8">
<meta name="viewport" content="width=device-width, initial-scale=1">
<title>Seckill simulation ${escapeXml(s.saleId)}</title>
<style>
body { font-family: system-ui, sans-serif; margin: 2rem auto; max-width: 860px; color: #1a202c; padding: 0 1rem; }
h1 { font-size: 1.4rem; margin-bottom: .2rem; }
.verdict { font-weight: bold; padding: .5rem .8rem; border-radius: 4px; display: inline-block; }
.verdict.pass { background: #e6f4ea; color: #1e6b34; }
.verdict.fail { background: #fde8e8; color: #9b1c1c; }
table { border-collapse: collapse; margin: 1rem 0; width: 100%; font-size: .9rem; }
th, td { text-align: left; padding: .25rem .6rem; border-bottom: 1px solid #edf0f3; vertical-align: top; }
th { font-weight: 600; white-space: nowrap; width: 16rem; }
tr.ok td:first-child { color: #1e6b34; font-weight: bold; }
tr.fail td:first-child { color: #9b1c1c; font-weight: bold; }
figure { margin: 1.5rem 0; }
svg { max-width: 100%; height: auto; }
footer { color: #718096; font-size: .8rem; margin-top: 2rem; }
</style>
</head>
<body>
<h1>Flash-sale simulation</h1>
<p>Sale <code>${escapeXml(s.saleId)}</code> · ${s.users} users · stock ${s.settings.stock} · seed ${s.seed}</p>
<p class="verdict ${s.ok ? "pass" : "fail"}">${s.ok ? "PASS" : "FAIL"}: ${s.successes} orders won, ${s.postgres.unitsSold} units in Postgres, oversold ${s.oversold}, users over the limit ${Math.max(s.overLimitUsers.fromAnswers, s.overLimitUsers.fromPostgres)}</p>
<h2>Checks</h2>
<table>${checks}</table>
<h2>Charts</h2>
<figure>${throughput}</figure>
<figure>${latency}</figure>
<figure>${persistence}</figure>
<h2>Summary</h2>
<table>${rows}</table>
<footer>Generated by <code>seckill simulate</code> at ${escapeXml((input.generatedAt ?? new Date()).toISOString())}.</footer>
</body>
</html>
`;
}
