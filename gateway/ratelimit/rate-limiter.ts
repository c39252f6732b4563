// The rate limit decision, Envoy's way: every descriptor of a request is
// matched against the rules of the rate limit file (limits-file.ts); the
// limited ones are counted in fixed windows in Redis, all in one script call;
// a descriptor with no matching rule is allowed and not counted. The request
// is over the limit when any descriptor is.
import { readFileSync } from "node:fs";
import type { Redis } from "ioredis";
import { assetPath } from "../../services/common/assets.js";
import { invalid, overloaded } from "../../services/common/refusal.js";
import { findLimit, RATE_LIMIT_UNITS, type RateLimit, type RateLimitRules } from "./limits-file.js";

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
      if (keys.length === 0) return limits.map(() => ({ limited: false }));
      let counts: number[];
      try {
        counts = await counters.seckillRateLimitCount(keys.length, ...keys, hits, ...ttls);
      } catch (error) {
        throw overloaded(`rate limit counters unavailable: ${error instanceof Error ? error.message : String(error)}`, 100);
      }
      let next = 0;
      return windows.map((w): DescriptorResult => {
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
