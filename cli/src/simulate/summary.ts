// The verdict of a simulated sale: counts, throughput, latency, what Postgres
// holds, and the checks that decide the exit code. Pure functions over the
// measurements; rendering as a text table is here too.
import { status } from "@grpc/grpc-js";
import { codeName } from "../backend.js";
import { EDGE_REFUSALS, type EdgeRefusal } from "@seckill/sdk";
import { EDGE_REFUSAL_LABELS } from "../edge.js";
import { formatDuration } from "../duration.js";
import { formatNumber, keyValues } from "../format.js";
import type { SimulationOptions } from "./plan.js";
import {
  kindOf,
  latencyStats,
  oversold as oversoldUnits,
  tally,
  unitsPerUser,
  usersOverLimit,
  percentile,
  toldSoldOut,
  type BuyerCall,
  type CallRecord,
  type ClickResult,
  type EdgeRefusalRecord,
  type PersistSample,
  type WatchResult,
} from "./stats.js";

export interface Verification {
  /** Winning users whose orders were listed back with ListOrders. */
  usersChecked: number;
  /** Users who won at least one order. */
  winners: number;
  /** Units per checked user, from ListOrders. */
  unitsPerUser: Map<string, number>;
  /** Order ids ListOrders returned for the checked users. */
  orderIds: Set<string>;
  /** Checked users whose ListOrders failed. */
  failedUsers: number;
}

export interface SimulationData {
  options: SimulationOptions;
  sale: { saleId: string; totalStock: number; perUserLimit: number };
  calls: CallRecord[];
  clicks: ClickResult[];
  statusCalls: number;
  statusFailures: number;
  /** Set when a buyer's calls went through the edge: its address and every call it refused. */
  edge?: { address: string; refusals: EdgeRefusalRecord[] };
  watches: WatchResult[];
  persist: { samples: PersistSample[]; finalSold: number; settled: "equal" | "stable" | "timeout" };
  verification: Verification;
  /** Time spent waiting for the sale to open, and the whole run. */
  waitedForOpenMs: number;
  totalMs: number;
}

export interface Check {
  name: string;
  ok: boolean;
  detail: string;
}

export interface Summary {
  saleId: string;
  seed: number;
  settings: { users: number; stock: number; perUserLimit: number; quantity: number; concurrency: number; rampMs: number; impatient: number; maxAttempts: number };
  users: number;
  clicks: number;
  /** PlaceOrder calls, retries included. */
  attempts: number;
  retries: number;
  /** IssuePurchaseToken: calls (retries included), tokens issued, and the refusals by reason (no PlaceOrder followed them). */
  tokens: { calls: number; issued: number; refusedByReason: Record<string, number> };
  successes: number;
  unitsWon: number;
  usersWon: number;
  /** Clicks told SOLD_OUT, by IssuePurchaseToken or by PlaceOrder. */
  soldOut: number;
  /** Clicks refused RESOURCE_EXHAUSTED, by IssuePurchaseToken or by PlaceOrder (a service, or the edge in its place). */
  rateLimited: number;
  /**
   * Where a buyer's calls went, and the calls (retries included) the edge
   * answered in a service's place, by kind and by call; all zero when direct.
   */
  edge: {
    route: "edge" | "direct";
    address: string | null;
    refused: number;
    byKind: Record<EdgeRefusal, number>;
    byCall: Record<BuyerCall, number>;
    /** Connection refusals by cause, most frequent first. */
    connectionCauses: Record<string, number>;
  };
  /** PlaceOrder refusals by reason. */
  rejectedByReason: Record<string, number>;
  errorsByCode: Record<string, number>;
  /** Clicks that still had no answer after the last attempt. */
  gaveUp: number;
  statusCalls: number;
  statusFailures: number;
  buyingWindowMs: number;
  throughputPerSec: number;
  latencyMs: { p50: number; p95: number; p99: number; max: number; mean: number };
  watch: { watched: number; created: number; viaStream: number; viaPolling: number; timedOut: number; createdAfterMs: { p50: number; p95: number; max: number } };
  postgres: {
    unitsSold: number;
    ordersListed: number;
    usersChecked: number;
    winners: number;
    missingOrders: number;
    unexpectedOrders: number;
    settled: "equal" | "stable" | "timeout";
    /** When GetSale.sold first equalled the units won, in ms after the opening (100 ms resolution); null if never. */
    allPersistedAtMs: number | null;
    /** The same, counted from the last accepted PlaceOrder. */
    afterLastWinMs: number | null;
  };
  oversold: number;
  overLimitUsers: { fromAnswers: number; fromPostgres: number };
  lostUnits: number;
  waitedForOpenMs: number;
  totalMs: number;
  checks: Check[];
  ok: boolean;
}

const round = (n: number, digits = 1) => (Number.isFinite(n) ? Math.round(n * 10 ** digits) / 10 ** digits : 0);

export function summarize(d: SimulationData): Summary {
  const { options: o, sale, calls, clicks } = d;
  const wins = clicks.filter((c) => c.outcome.kind === "won");
  const unitsWon = wins.reduce((s, c) => s + (c.outcome.kind === "won" ? c.outcome.quantity : 0), 0);
  const perUser = unitsPerUser(clicks);
  const refused = clicks.flatMap((c) => (c.outcome.kind === "refused" ? [c.outcome] : []));
  const tokenRefused = clicks.flatMap((c) => (c.outcome.kind === "tokenRefused" ? [c.outcome] : []));
  const soldOut = clicks.filter((c) => toldSoldOut(c.outcome)).length;
  const placing = clicks.filter((c) => c.calls > 0);

  let first = Infinity;
  let last = -Infinity;
  for (const c of calls) {
    first = Math.min(first, c.startMs);
    last = Math.max(last, c.endMs);
  }
  const buyingWindowMs = calls.length ? last - first : 0;
  const latency = latencyStats(calls.map((c) => c.endMs - c.startMs));

  const created = d.watches.filter((w) => w.createdAfterMs !== undefined);
  const createdTimes = created.map((w) => w.createdAfterMs!).sort((a, b) => a - b);

  const unitsSold = d.persist.finalSold;
  const persistedAt = unitsWon === 0 ? null : (d.persist.samples.find((s) => s.sold >= unitsWon)?.atMs ?? null);
  const lastWin = wins.reduce((m, c) => Math.max(m, c.outcome.kind === "won" ? c.outcome.atMs : 0), 0);

  const v = d.verification;
  const acknowledged = new Set(wins.filter((c) => v.unitsPerUser.has(c.userId)).map((c) => (c.outcome.kind === "won" ? c.outcome.orderId : "")));
  const missingOrders = [...acknowledged].filter((id) => !v.orderIds.has(id)).length;
  const unexpectedOrders = [...v.orderIds].filter((id) => !acknowledged.has(id)).length;

  const oversold = oversoldUnits(sale.totalStock, unitsWon, unitsSold);
  const overFromAnswers = usersOverLimit(perUser, sale.perUserLimit).length;
  const overFromPostgres = usersOverLimit(v.unitsPerUser, sale.perUserLimit).length;
  // Buyers were told SOLD_OUT, so every unit must be held by someone.
  const held = Math.max(unitsWon, unitsSold);
  const lostUnits = soldOut > 0 && sale.totalStock - held >= o.quantity ? sale.totalStock - held : 0;

  const checks: Check[] = [
    { name: "no unit oversold", ok: oversold === 0, detail: `${unitsWon} won, ${unitsSold} in Postgres, stock ${sale.totalStock}` },
    {
      name: "no user over the per-user limit",
      ok: overFromAnswers === 0 && overFromPostgres === 0,
      detail: `${overFromAnswers} by the answers, ${overFromPostgres} by ListOrders of ${v.usersChecked} winners (limit ${sale.perUserLimit})`,
    },
    { name: "units in Postgres = units won", ok: unitsSold === unitsWon, detail: `${unitsSold} = ${unitsWon}` },
    {
      name: "orders listed back = orders won",
      ok: missingOrders === 0 && unexpectedOrders === 0 && v.failedUsers === 0,
      detail: `${v.orderIds.size} listed for ${v.usersChecked} users, ${missingOrders} missing, ${unexpectedOrders} unexpected${v.failedUsers ? `, ${v.failedUsers} users unreadable` : ""}`,
    },
    { name: "no unit lost (sold out means all sold)", ok: lostUnits === 0, detail: soldOut > 0 ? `${held} of ${sale.totalStock} units held` : "never sold out" },
  ];

  return {
    saleId: sale.saleId,
    seed: o.seed,
    settings: {
      users: o.users,
      stock: sale.totalStock,
      perUserLimit: sale.perUserLimit,
      quantity: o.quantity,
      concurrency: o.concurrency,
      rampMs: o.rampMs,
      impatient: o.impatient,
      maxAttempts: o.maxAttempts,
    },
    users: o.users,
    clicks: clicks.length,
    attempts: calls.length,
    retries: calls.length - placing.length,
    tokens: { calls: clicks.reduce((n, c) => n + c.tokenCalls, 0), issued: placing.length, refusedByReason: tally(tokenRefused, (r) => r.reason) },
    successes: wins.length,
    unitsWon,
    usersWon: perUser.size,
    soldOut,
    rateLimited: [...refused, ...tokenRefused].filter((r) => r.code === status.RESOURCE_EXHAUSTED).length,
    edge: edgeTally(d.edge),
    rejectedByReason: tally(refused, (r) => r.reason),
    errorsByCode: tally(calls, (c) => (kindOf(c) === "error" ? codeName(c.code) : undefined)),
    gaveUp: clicks.filter((c) => c.outcome.kind === "error").length,
    statusCalls: d.statusCalls,
    statusFailures: d.statusFailures,
    buyingWindowMs: round(buyingWindowMs),
    throughputPerSec: buyingWindowMs > 0 ? round((calls.length * 1000) / buyingWindowMs, 0) : 0,
    latencyMs: { p50: round(latency.p50), p95: round(latency.p95), p99: round(latency.p99), max: round(latency.max), mean: round(latency.mean) },
    watch: {
      watched: d.watches.length,
      created: created.length,
      viaStream: created.filter((w) => w.via === "stream").length,
      viaPolling: created.filter((w) => w.via === "poll").length,
      timedOut: d.watches.length - created.length,
      createdAfterMs: { p50: round(percentile(createdTimes, 50)), p95: round(percentile(createdTimes, 95)), max: round(createdTimes.at(-1) ?? Number.NaN) },
    },
    postgres: {
      unitsSold,
      ordersListed: v.orderIds.size,
      usersChecked: v.usersChecked,
      winners: v.winners,
      missingOrders,
      unexpectedOrders,
      settled: d.persist.settled,
      allPersistedAtMs: persistedAt === null ? null : round(persistedAt, 0),
      afterLastWinMs: persistedAt === null ? null : round(Math.max(0, persistedAt - lastWin), 0),
    },
    oversold,
    overLimitUsers: { fromAnswers: overFromAnswers, fromPostgres: overFromPostgres },
    lostUnits,
    waitedForOpenMs: round(d.waitedForOpenMs, 0),
    totalMs: round(d.totalMs, 0),
    checks,
    ok: checks.every((c) => c.ok),
  };
}

const BUYER_CALLS: BuyerCall[] = ["PlaceOrder", "IssuePurchaseToken", "GetSaleStatus", "WatchOrder", "GetOrder"];

function edgeTally(edge: SimulationData["edge"]): Summary["edge"] {
  const byKind = Object.fromEntries(EDGE_REFUSALS.map((k) => [k, 0])) as Record<EdgeRefusal, number>;
  const byCall = Object.fromEntries(BUYER_CALLS.map((c) => [c, 0])) as Record<BuyerCall, number>;
  for (const r of edge?.refusals ?? []) {
    byKind[r.kind]++;
    byCall[r.call]++;
  }
  const connectionCauses = tally(edge?.refusals ?? [], (r) => (r.kind === "connection" ? (r.cause ?? "(no message)") : undefined));
  return { route: edge ? "edge" : "direct", address: edge?.address ?? null, refused: edge?.refusals.length ?? 0, byKind, byCall, connectionCauses };
}

/** Exit code of `seckill simulate`: 0 when every check passed, 2 when one failed. */
export const exitCodeOf = (s: Summary): number => (s.ok ? 0 : 2);

const list = (counts: Record<string, number>) =>
  Object.keys(counts).length === 0
    ? "none"
    : Object.entries(counts)
        .map(([k, n]) => `${k} ${n}`)
        .join(", ");
const ms = (n: number) => (Number.isFinite(n) ? `${formatNumber(n)} ms` : "–");

/** The summary as label/value rows (the text table and the HTML report show these). */
export function summaryRows(s: Summary): [string, string | number][] {
  const w = s.watch;
  const p = s.postgres;
  return [
    ["sale", `${s.saleId} (stock ${s.settings.stock}, limit ${s.settings.perUserLimit}/user, ${s.settings.quantity}/click)`],
    ["buyers' calls", s.edge.route === "edge" ? `through the edge at ${s.edge.address}` : "direct to the services (--direct)"],
    ["seed", s.seed],
    ["users", `${s.users} (${s.clicks} clicks, ${s.clicks - s.users} impatient second clicks)`],
    ["purchase tokens", `${s.tokens.issued} issued (${s.tokens.calls} IssuePurchaseToken calls)`],
    ["token refusals by reason", list(s.tokens.refusedByReason)],
    ["attempts (PlaceOrder calls)", `${s.attempts} (${s.retries} retries)`],
    ["successes", `${s.successes} orders, ${s.unitsWon} units, ${s.usersWon} users`],
    ["sold out", s.soldOut],
    ["rate limited", s.rateLimited],
    ...edgeRows(s.edge),
    ["PlaceOrder refusals by reason", list(s.rejectedByReason)],
    ["errors by code", list(s.errorsByCode)],
    ["gave up after retries", s.gaveUp],
    ["sale status reads", `${s.statusCalls} (${s.statusFailures} failed)`],
    ["throughput", `${formatNumber(s.throughputPerSec)} calls/s over ${formatDuration(s.buyingWindowMs)}`],
    ["PlaceOrder latency", `p50 ${ms(s.latencyMs.p50)} · p95 ${ms(s.latencyMs.p95)} · p99 ${ms(s.latencyMs.p99)} · max ${ms(s.latencyMs.max)}`],
    [
      "winners watching",
      w.watched === 0
        ? "no winners to watch"
        : `${w.created}/${w.watched} saw CREATED (${w.viaStream} stream, ${w.viaPolling} polling), p50 ${ms(w.createdAfterMs.p50)} · p95 ${ms(w.createdAfterMs.p95)} after the answer${w.timedOut ? `, ${w.timedOut} timed out` : ""}`,
    ],
    ["units in Postgres (GetSale.sold)", p.unitsSold],
    ["orders in Postgres (ListOrders)", `${p.ordersListed} for ${p.usersChecked} of ${p.winners} winning users`],
    [
      "time to all orders persisted",
      p.allPersistedAtMs === null
        ? s.unitsWon === 0
          ? "nothing to persist"
          : `not reached (${p.settled})`
        : `${formatDuration(p.allPersistedAtMs)} after the opening, ${formatDuration(p.afterLastWinMs ?? 0)} after the last win`,
    ],
    ["oversold", s.oversold],
    ["users over the limit", `${s.overLimitUsers.fromAnswers} (answers), ${s.overLimitUsers.fromPostgres} (Postgres)`],
    ["waited for the opening", formatDuration(s.waitedForOpenMs)],
    ["total time", formatDuration(s.totalMs)],
  ];
}

function edgeRows(e: Summary["edge"]): [string, string][] {
  if (e.route === "direct") return [["edge refusals", "none: not through the edge"]];
  const kinds = EDGE_REFUSALS.map((k) => `${EDGE_REFUSAL_LABELS[k]} ${e.byKind[k]}`).join(" · ");
  const rows: [string, string][] = [
    ["edge refusals (calls)", `${e.refused}: ${kinds}`],
    ["edge refusals by call", BUYER_CALLS.map((c) => `${c} ${e.byCall[c]}`).join(", ")],
  ];
  if (e.byKind.connection > 0) rows.push(["connection refusals by cause", list(e.connectionCauses)]);
  return rows;
}

/** The summary as an aligned two-column table, checks last. */
export function renderSummary(s: Summary): string {
  const checks = s.checks.map((c) => `${c.ok ? "ok  " : "FAIL"}  ${c.name}: ${c.detail}`).join("\n");
  return `${keyValues(summaryRows(s))}\n\n${checks}\n\n${s.ok ? "PASS: sold exactly what was won, every unit in Postgres" : "FAIL: see the checks above"}`;
}
