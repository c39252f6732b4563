// envoy.service.ratelimit.v3.RateLimitService over the rate limiter: a thin
// gRPC handler. Bad input is INVALID_ARGUMENT; Redis unreachable is
// UNAVAILABLE at once, which Envoy (failure_mode_deny: false) lets through.
import type { UntypedServiceImplementation } from "@grpc/grpc-js";
import { unary, type ServiceRegistration } from "../../services/common/grpc-server.js";
import type { Logger } from "../../services/common/log.js";
import type { GatewayMetrics } from "../../services/common/metrics.js";
import { RATE_LIMIT_SERVICE, rateLimitPackage, rateLimitServiceDefinition, type RateLimitRequest, type RateLimitResponse } from "./envoy-protos.js";
import { toEnvoyResponse } from "./envoy-response.js";
import type { DescriptorResult, RateLimiter } from "./rate-limiter.js";

export function rateLimitServiceRegistration(limiter: RateLimiter, log: Logger, metrics?: GatewayMetrics): ServiceRegistration {
  const implementation: UntypedServiceImplementation = {
    ShouldRateLimit: unary<RateLimitRequest, RateLimitResponse>(log, "ShouldRateLimit", async (request) => {
      let results: DescriptorResult[];
      try {
        results = await limiter.check({
          domain: request.domain,
          descriptors: request.descriptors.map((d) => ({ entries: d.entries.map((e) => ({ key: e.key, value: e.value })) })),
          hitsAddend: request.hits_addend,
        });
      } catch (error) {
        metrics?.rateLimitCheck("ERROR");
        throw error;
      }
      const response = toEnvoyResponse(results);
      const cached = results.filter((r) => r.limited && r.cached).length;
      if (cached > 0) metrics?.overLimitCached(cached);
      metrics?.rateLimitCheck(response.overall_code === "OVER_LIMIT" ? "OVER_LIMIT" : "OK");
      return response;
    }),
  };
  return { name: RATE_LIMIT_SERVICE, definition: rateLimitServiceDefinition(), implementation, reflection: rateLimitPackage() };
}
