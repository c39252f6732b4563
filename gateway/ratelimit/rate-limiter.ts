// The rate limit decision, Envoy's way: every descriptor of a request is
// matched against the rules of the rate limit file (limits-file.ts); the
// limited ones are counted in fixed windows in Redis; a descriptor with no
// matching rule is allowed and not counted. The request is over the limit when
// any descriptor is.
//
// As envoyproxy/ratelimit's Redis cache does it: one INCRBY and one PEXPIRE per
// counter, every command on its own key, all sent at once (ioredis pipelines
// them, per node on a Redis Cluster, where keys of one call live on different
// slots), so a check is one round trip. A counter already over its limit is
// answered from the over-limit cache until its window ends, without Redis.
//
// The kill switch at the edge: a descriptor with a sale_id entry naming a sale
// that an operator closed (`seckill sale close`) or that has ended is over the
// limit at once (limit name `sale_closed`), read from the sale's rules in Redis
// (services/common/sale-rules.ts) in the same round trip, so closing a sale
// stops its purchases at Envoy without touching Envoy.
import type { Cluster, Redis } from "ioredis";
import { errorMessage } from "../../services/common/error-message.js";
import { isSaleId } from "../../services/common/ids.js";
import { invalid, overloaded } from "../../services/common/refusal.js";
import { readSaleOver } from "../../services/common/sale-rules.js";
import { findLimit, RATE_LIMIT_UNITS, type RateLimit, type RateLimitRules } from "./limits-file.js";
import type { OverLimitCache } from "./over-limit-cache.js";

export interface DescriptorInput {
  entries: { key: string; value: string }[];
}

export interface RateLimitCheck {
  domain: string;
  descriptors: DescriptorInput[];
  /** Hits this request adds to each matched limit; 0 counts as 1. */
  hitsAddend: number;
}

/** cached: answered from the over-limit cache, without Redis (and not counted). */
export type DescriptorResult = { limited: false } | { limited: true; overLimit: boolean; limit: RateLimit; remaining: number; resetMs: number; cached?: true };

export interface RateLimiter {
  readonly domain: string;
  check(request: RateLimitCheck): Promise<DescriptorResult[]>;
}

/** Bounds on one request: Envoy sends a handful of descriptors of a few entries each. */
const MAX_DESCRIPTORS = 64;
const MAX_ENTRIES = 16;
const MAX_TEXT = 1024;

/** What a closed sale's descriptor answers: no requests, looked at again in a minute. */
const SALE_CLOSED: RateLimit = { unit: "day", requestsPerUnit: 0, name: "sale_closed" };
const SALE_CLOSED_RETRY_MS = 60_000;

/** The sale a descriptor names (its sale_id entry), if any. */
const saleOf = (d: DescriptorInput): string | undefined => d.entries.find((e) => e.key === "sale_id" && isSaleId(e.value))?.value;

/** Slack after the end of a window before its counter expires. */
const EXPIRY_SLACK_MS = 1000;

/** A limited descriptor in its current window. */
interface Window {
  limit: RateLimit;
  key: string;
  endMs: number;
  resetMs: number;
  /** Known over its limit for the rest of the window: not sent to Redis. */
  cached: boolean;
}

export function createRateLimiter(options: { redis: Redis | Cluster; namespace: string; rules: RateLimitRules; clock: () => number; overLimit: OverLimitCache }): RateLimiter {
  const { redis, namespace, rules, clock, overLimit } = options;

  /** Adds the hits to the counter and returns its count; the expiry is set on every call, to the same instant. */
  async function count(w: Window, hits: number): Promise<number> {
    const [counted] = await Promise.all([redis.incrby(w.key, hits), redis.pexpire(w.key, w.resetMs + EXPIRY_SLACK_MS)]);
    return counted;
  }

  return {
    domain: rules.domain,
    async check(request) {
      validate(request);
      const hits = Math.max(1, request.hitsAddend);
      const now = clock();
      const windows = request.descriptors.map((d): Window | undefined => {
        // A domain other than the file's has no rules: every descriptor is unlimited.
        const limit = request.domain === rules.domain ? findLimit(rules, d.entries) : undefined;
        if (!limit) return undefined;
        const unitMs = RATE_LIMIT_UNITS[limit.unit];
        const start = Math.floor(now / unitMs) * unitMs;
        const key = counterKey(namespace, request.domain, d.entries, start);
        return { limit, key, endMs: start + unitMs, resetMs: start + unitMs - now, cached: overLimit.has(key, now) };
      });
      // A descriptor answered from the cache is refused whatever its sale's state: nothing to read for it.
      const sales = request.descriptors.map((d, i) => (windows[i]?.cached ? undefined : saleOf(d)));
      const salesToCheck = [...new Set(sales.filter((id): id is string => id !== undefined))];
      const toCount = windows.map((w) => (w && !w.cached ? w : undefined));
      let counts: (number | undefined)[] = [];
      let closed = new Set<string>();
      if (toCount.some(Boolean) || salesToCheck.length > 0) {
        try {
          // Every command is issued before any is awaited: one pipeline, one round trip.
          const [counted, over] = await Promise.all([
            Promise.all(toCount.map((w) => (w ? count(w, hits) : undefined))),
            Promise.all(salesToCheck.map((id) => readSaleOver(redis, namespace, id, now))),
          ]);
          counts = counted;
          closed = new Set(salesToCheck.filter((_, i) => over[i]));
        } catch (error) {
          throw overloaded(`rate limit counters unavailable: ${errorMessage(error)}`, 100);
        }
      }
      return windows.map((w, i): DescriptorResult => {
        const sale = sales[i];
        if (sale !== undefined && closed.has(sale)) return { limited: true, overLimit: true, limit: SALE_CLOSED, remaining: 0, resetMs: SALE_CLOSED_RETRY_MS };
        if (!w) return { limited: false };
        if (w.cached) return { limited: true, overLimit: true, limit: w.limit, remaining: 0, resetMs: w.resetMs, cached: true };
        const counted = counts[i] ?? 0;
        const allowed = w.limit.requestsPerUnit;
        if (counted > allowed) overLimit.add(w.key, w.endMs);
        return { limited: true, overLimit: counted > allowed, limit: w.limit, remaining: Math.max(0, allowed - counted), resetMs: w.resetMs };
      });
    },
  };
}

/** `<ns>:rl:<domain>:<key>=<value>/<key>=<value>…:<window start, unix seconds>`; keys and values URI-encoded, so no value can forge a separator. */
export function counterKey(namespace: string, domain: string, entries: { key: string; value: string }[], windowStartMs: number): string {
  const path = entries.map((e) => `${encodeURIComponent(e.key)}=${encodeURIComponent(e.value)}`).join("/");
  return `${namespace}:rl:${encodeURIComponent(domain)}:${path}:${Math.floor(windowStartMs / 1000)}`;
}

function validate(request: RateLimitCheck): void {
  if (!request.domain) throw invalid("domain", "is required");
  if (request.domain.length > MAX_TEXT) throw invalid("domain", `longer than ${MAX_TEXT} characters`);
  if (request.descriptors.length === 0) throw invalid("descriptors", "at least one descriptor is required");
  if (request.descriptors.length > MAX_DESCRIPTORS) throw invalid("descriptors", `more than ${MAX_DESCRIPTORS} descriptors`);
  request.descriptors.forEach((d, i) => {
    if (d.entries.length === 0) throw invalid(`descriptors[${i}].entries`, "at least one entry is required");
    if (d.entries.length > MAX_ENTRIES) throw invalid(`descriptors[${i}].entries`, `more than ${MAX_ENTRIES} entries`);
    d.entries.forEach((e, j) => {
      for (const field of ["key", "value"] as const) {
        if (!e[field]) throw invalid(`descriptors[${i}].entries[${j}].${field}`, "is required");
        if (e[field].length > MAX_TEXT) throw invalid(`descriptors[${i}].entries[${j}].${field}`, `longer than ${MAX_TEXT} characters`);
      }
    });
  });
}
