// The rate limit decision, Envoy's way: every descriptor of a request is
// matched against the rules of the rate limit file (limits-file.ts); the
// limited ones are counted in fixed windows in Redis, all in one script call;
// a descriptor with no matching rule is allowed and not counted. The request
// is over the limit when any descriptor is.
//
// The kill switch at the edge: a descriptor with a sale_id entry naming a sale
// that an operator closed (`seckill sale close`) or that has ended is over the
// limit at once (limit name `sale_closed`), read from the sale's rules in Redis
// in the same round trip, so closing a sale stops its purchases at Envoy
// without touching Envoy.
import { readFileSync } from "node:fs";
import type { Redis } from "ioredis";
import { assetPath } from "../../services/common/assets.js";
import { isSaleId } from "../../services/common/ids.js";
import { saleKeys } from "../../services/inventory/stock-store.js";
import { invalid, overloaded } from "../../services/common/refusal.js";
import { findLimit, RATE_LIMIT_UNITS, type RateLimit, type RateLimitRules } from "./limits-file.js";
import { errorMessage } from "../../services/common/error-message.js";

export interface DescriptorInput {
  entries: { key: string; value: string }[];
}

export interface RateLimitCheck {
  domain: string;
  descriptors: DescriptorInput[];
  /** Hits this request adds to each matched limit; 0 counts as 1. */
  hitsAddend: number;
}

export type DescriptorResult =
  | { limited: false }
  | { limited: true; overLimit: boolean; limit: RateLimit; remaining: number; resetMs: number };

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

type CountCommand = { seckillRateLimitCount(...args: (string | number)[]): Promise<number[]> };

export function createRateLimiter(options: { redis: Redis; namespace: string; rules: RateLimitRules; clock: () => number }): RateLimiter {
  const { redis, namespace, rules, clock } = options;
  redis.defineCommand("seckillRateLimitCount", { lua: readFileSync(assetPath("gateway", "ratelimit", "count.lua"), "utf8") });
  const counters = redis as unknown as CountCommand;

  return {
    domain: rules.domain,
    async check(request) {
      validate(request);
      const hits = Math.max(1, request.hitsAddend);
      const now = clock();
      // A domain other than the file's has no rules: every descriptor is unlimited.
      const limits = request.descriptors.map((d) => (request.domain === rules.domain ? findLimit(rules, d.entries) : undefined));
      const keys: string[] = [];
      const ttls: number[] = [];
      const windows = limits.map((limit, i) => {
        if (!limit) return undefined;
        const unitMs = RATE_LIMIT_UNITS[limit.unit];
        const start = Math.floor(now / unitMs) * unitMs;
        const resetMs = start + unitMs - now;
        keys.push(counterKey(namespace, request.domain, request.descriptors[i]!.entries, start));
        ttls.push(resetMs + EXPIRY_SLACK_MS);
        return { limit, resetMs };
      });
      const sales = request.descriptors.map(saleOf);
      const salesToCheck = [...new Set(sales.filter((id): id is string => id !== undefined))];
      if (keys.length === 0 && salesToCheck.length === 0) return limits.map(() => ({ limited: false }));
      let counts: number[];
      try {
        const rulesKeys = salesToCheck.map((id) => saleKeys(namespace, id).rules);
        counts = await counters.seckillRateLimitCount(keys.length + rulesKeys.length, ...keys, ...rulesKeys, hits, keys.length, now, ...ttls);
      } catch (error) {
        throw overloaded(`rate limit counters unavailable: ${errorMessage(error)}`, 100);
      }
      const closed = new Set(salesToCheck.filter((_, i) => Number(counts[keys.length + i]) === 1));
      let next = 0;
      return windows.map((w, i): DescriptorResult => {
        const sale = sales[i];
        if (sale !== undefined && closed.has(sale)) {
          if (w) next++;
          return { limited: true, overLimit: true, limit: SALE_CLOSED, remaining: 0, resetMs: SALE_CLOSED_RETRY_MS };
        }
        if (!w) return { limited: false };
        const count = Number(counts[next++]);
        const allowed = w.limit.requestsPerUnit;
        return { limited: true, overLimit: count > allowed, limit: w.limit, remaining: Math.max(0, allowed - count), resetMs: w.resetMs };
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
