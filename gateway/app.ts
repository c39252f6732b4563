// Builds the gateway process from config: the rate limit file, Redis, then the
// gRPC server with envoy.service.ratelimit.v3.RateLimitService and any other
// services handed in (e.g. the AccessService); SERVING while Redis is
// connected. Used by main.ts and by the tests.
import { isAbsolute } from "node:path";
import { assetPath } from "../services/common/assets.js";
import type { Config } from "../services/common/config.js";
import type { ServiceRegistration } from "../services/common/grpc-server.js";
import type { Logger } from "../services/common/log.js";
import { createRedis } from "../services/common/redis.js";
import { serve, type ServingApp } from "../services/common/serve.js";
import { rateLimitServiceRegistration } from "./ratelimit/handlers.js";
import { loadRateLimitFile } from "./ratelimit/limits-file.js";
import { createRateLimiter } from "./ratelimit/rate-limiter.js";

export type GatewayApp = ServingApp;

/** RATE_LIMIT_CONFIG: an absolute path, or one relative to the repository root. */
export const rateLimitFilePath = (config: Config): string =>
  isAbsolute(config.rateLimitConfig) ? config.rateLimitConfig : assetPath(config.rateLimitConfig);

/**
 * extraServices are served beside the RateLimitService on the same server
 * (health, reflection, load shedding and shutdown included).
 */
export async function startGateway(
  config: Config,
  log: Logger,
  extraServices: ServiceRegistration[] = [],
  clock: () => number = Date.now,
): Promise<GatewayApp> {
  // A bad file stops the start before anything is connected.
  const rules = loadRateLimitFile(rateLimitFilePath(config));
  const redis = createRedis(config.redisUrl);
  redis.on("error", (err) => log.warn("redis error", { err: err.message }));
  try {
    await redis.connect();
  } catch (error) {
    redis.disconnect();
    throw error;
  }
  const limiter = createRateLimiter({ redis, namespace: config.namespace, rules, clock });
  return serve({
    config,
    log,
    address: config.gatewayAddr,
    services: [rateLimitServiceRegistration(limiter, log), ...extraServices],
    dependencies: { redis },
    close: () => Promise.allSettled([redis.quit()]),
  });
}
