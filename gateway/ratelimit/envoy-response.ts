// The answer Envoy reads: overall_code, one status per descriptor in request
// order, and the draft rate limit headers (RateLimit-Limit, -Remaining,
// -Reset, draft-polli-ratelimit-headers-03) in response_headers_to_add, which
// Envoy's ratelimit filter adds to the response it forwards (OK) or to its own
// reply (OVER_LIMIT).
import type { DescriptorResult } from "./rate-limiter.js";
import { RATE_LIMIT_UNITS } from "./limits-file.js";
import type { DescriptorStatus, RateLimitResponse, RateLimitUnitName } from "./envoy-protos.js";

export function toEnvoyResponse(results: DescriptorResult[]): RateLimitResponse {
  const statuses = results.map(descriptorStatus);
  return {
    overall_code: results.some((r) => r.limited && r.overLimit) ? "OVER_LIMIT" : "OK",
    statuses,
    response_headers_to_add: rateLimitHeaders(results),
  };
}

function descriptorStatus(result: DescriptorResult): DescriptorStatus {
  if (!result.limited) return { code: "OK", current_limit: null, limit_remaining: 0, duration_until_reset: null };
  return {
    code: result.overLimit ? "OVER_LIMIT" : "OK",
    current_limit: {
      name: result.limit.name,
      requests_per_unit: result.limit.requestsPerUnit,
      unit: result.limit.unit.toUpperCase() as RateLimitUnitName,
    },
    limit_remaining: result.remaining,
    duration_until_reset: { seconds: Math.floor(result.resetMs / 1000), nanos: (result.resetMs % 1000) * 1_000_000 },
  };
}

/**
 * The headers of the most restrictive limit (fewest requests remaining; on a
 * tie, the later reset), with every limit that applied as a quota policy:
 * `ratelimit-limit: 10, 10;w=1, 30;w=60`. None when no descriptor was limited.
 */
export function rateLimitHeaders(results: DescriptorResult[]): { key: string; value: string }[] {
  const limited = results.filter((r): r is Extract<DescriptorResult, { limited: true }> => r.limited);
  if (limited.length === 0) return [];
  const tightest = limited.reduce((a, b) => (b.remaining < a.remaining || (b.remaining === a.remaining && b.resetMs > a.resetMs) ? b : a));
  const policy = (r: (typeof limited)[number]) =>
    `${r.limit.requestsPerUnit};w=${RATE_LIMIT_UNITS[r.limit.unit] / 1000}${r.limit.name ? `;name="${r.limit.name.replace(/["\\]/g, "")}"` : ""}`;
  const policies = [...new Set([tightest, ...limited].map(policy))];
  return [
    { key: "ratelimit-limit", value: `${tightest.limit.requestsPerUnit}, ${policies.join(", ")}` },
    { key: "ratelimit-remaining", value: String(tightest.remaining) },
    { key: "ratelimit-reset", value: String(Math.ceil(tightest.resetMs / 1000)) },
  ];
}
