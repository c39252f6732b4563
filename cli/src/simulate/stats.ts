// What the simulation measures, and the arithmetic over it: percentiles,
// 100 ms buckets, per-user tallies. No I/O here.
import { status } from "@grpc/grpc-js";
import type { EdgeRefusal } from "@seckill/sdk";

/** One PlaceOrder call (an attempt; retries are calls of their own). Times in ms after the opening. */
export interface CallRecord {
  startMs: number;
  endMs: number;
  /** gRPC status code, 0 (OK) for an accepted order. */
  code: number;
  /** ErrorInfo reason of a refusal ("SOLD_OUT"), when the server sent one. */
  reason?: string;
  /** Through the edge: which refusal of Envoy's it was, when Envoy answered in the service's place. */
  edge?: EdgeRefusal;
}

/** The calls of a buyer that go through the edge (when simulate does) and that the summary counts edge refusals of. */
export type BuyerCall = "GetSaleStatus" | "IssuePurchaseToken" | "PlaceOrder" | "WatchOrder" | "GetOrder";

/** One call of a buyer that the edge refused (retries are calls of their own). */
export interface EdgeRefusalRecord {
  call: BuyerCall;
  kind: EdgeRefusal;
  /** For a connection refusal: its cause (edge.ts connectionCause). */
  cause?: string;
}

export type ClickOutcome =
  | { kind: "won"; orderId: string; quantity: number; atMs: number }
  /** PlaceOrder refused the click (`edge`: Envoy did, in the service's place). */
  | { kind: "refused"; code: number; reason?: string; edge?: EdgeRefusal }
  /** IssuePurchaseToken refused the click: no PlaceOrder was sent. */
  | { kind: "tokenRefused"; code: number; reason?: string; edge?: EdgeRefusal }
  /** No answer after the last attempt (of IssuePurchaseToken when calls is 0, else of PlaceOrder). */
  | { kind: "error"; code: number; message: string };

export interface ClickResult {
  userId: string;
  requestId: string;
  outcome: ClickOutcome;
  /** IssuePurchaseToken calls this click made (1 + retries). */
  tokenCalls: number;
  /** PlaceOrder calls this click made (1 + retries; 0 without a token). */
  calls: number;
}

/** The buyer was told SOLD_OUT, by the gateway or by the order service. */
export const toldSoldOut = (o: ClickOutcome): boolean => (o.kind === "refused" || o.kind === "tokenRefused") && o.reason === "SOLD_OUT";

export interface WatchResult {
  orderId: string;
  /** Time from the PlaceOrder answer until the order showed CREATED (or later); undefined when it did not in time. */
  createdAfterMs?: number;
  /** How CREATED was seen: the WatchOrder stream, or GetOrder polling after the stream failed. */
  via?: "stream" | "poll";
  /** The stream failed and polling took over. */
  fellBack: boolean;
}

/** GetSale.sold as seen over time. */
export interface PersistSample {
  atMs: number;
  sold: number;
}

/** Nearest-rank percentile of ascending `sorted` (p in 0..100); NaN when empty. */
export function percentile(sorted: readonly number[], p: number): number {
  if (sorted.length === 0) return Number.NaN;
  const rank = Math.ceil((p / 100) * sorted.length);
  return sorted[Math.min(sorted.length - 1, Math.max(0, rank - 1))];
}

export interface LatencyStats {
  count: number;
  p50: number;
  p95: number;
  p99: number;
  max: number;
  mean: number;
}

export function latencyStats(values: readonly number[]): LatencyStats {
  const sorted = [...values].sort((a, b) => a - b);
  const sum = sorted.reduce((s, v) => s + v, 0);
  return {
    count: sorted.length,
    p50: percentile(sorted, 50),
    p95: percentile(sorted, 95),
    p99: percentile(sorted, 99),
    max: sorted.length ? sorted[sorted.length - 1] : Number.NaN,
    mean: sorted.length ? sum / sorted.length : Number.NaN,
  };
}

export type CallKind = "won" | "soldOut" | "refused" | "error";

/** A call's answer: won, SOLD_OUT, another refusal (the service's, with a reason, or the edge's limits and token check), or no answer. */
export function kindOf(call: Pick<CallRecord, "code" | "reason" | "edge">): CallKind {
  if (call.code === status.OK) return "won";
  if (call.reason === "SOLD_OUT") return "soldOut";
  if (call.code === status.UNAVAILABLE || call.code === status.DEADLINE_EXCEEDED || (call.reason === undefined && call.edge === undefined)) return "error";
  return "refused";
}

export interface Bucket {
  /** Start of the bucket, ms after the opening. */
  atMs: number;
  /** Calls answered in this bucket, by kind. */
  won: number;
  soldOut: number;
  refused: number;
  error: number;
  /** Latency percentiles of calls started in this bucket (NaN when none started). */
  p50: number;
  p95: number;
  p99: number;
}

/** Calls per `bucketMs` window: answers by kind (for throughput) and latency of the calls started in it. */
export function bucketize(calls: readonly CallRecord[], bucketMs = 100): Bucket[] {
  if (calls.length === 0) return [];
  let first = Infinity;
  let last = -Infinity;
  for (const c of calls) {
    first = Math.min(first, c.startMs);
    last = Math.max(last, c.endMs);
  }
  const origin = Math.floor(first / bucketMs) * bucketMs;
  const count = Math.floor((last - origin) / bucketMs) + 1;
  const buckets = Array.from({ length: count }, (_, i) => ({ atMs: origin + i * bucketMs, won: 0, soldOut: 0, refused: 0, error: 0, latencies: [] as number[] }));
  for (const c of calls) {
    buckets[Math.floor((c.endMs - origin) / bucketMs)][kindOf(c)]++;
    buckets[Math.floor((c.startMs - origin) / bucketMs)].latencies.push(c.endMs - c.startMs);
  }
  return buckets.map(({ latencies, ...b }) => {
    const sorted = latencies.sort((x, y) => x - y);
    return { ...b, p50: percentile(sorted, 50), p95: percentile(sorted, 95), p99: percentile(sorted, 99) };
  });
}

/** Units won per user, from the accepted clicks. */
export function unitsPerUser(clicks: readonly ClickResult[]): Map<string, number> {
  const out = new Map<string, number>();
  for (const c of clicks) if (c.outcome.kind === "won") out.set(c.userId, (out.get(c.userId) ?? 0) + c.outcome.quantity);
  return out;
}

/** Users holding more than `limit` units. */
export function usersOverLimit(units: ReadonlyMap<string, number>, limit: number): string[] {
  return [...units].filter(([, n]) => n > limit).map(([user]) => user);
}

/** Units sold beyond the stock, by the acknowledged wins and by Postgres's count; 0 when none. */
export function oversold(stock: number, unitsWon: number, unitsInPostgres: number): number {
  return Math.max(0, unitsWon - stock, unitsInPostgres - stock);
}

/** Counts by key, sorted by count (descending), for "SOLD_OUT 1900, ALREADY_PURCHASED 12". */
export function tally<T>(items: readonly T[], key: (item: T) => string | undefined): Record<string, number> {
  const counts = new Map<string, number>();
  for (const item of items) {
    const k = key(item);
    if (k !== undefined) counts.set(k, (counts.get(k) ?? 0) + 1);
  }
  return Object.fromEntries([...counts].sort((a, b) => b[1] - a[1] || a[0].localeCompare(b[0])));
}
