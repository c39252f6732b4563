// Builds the gateway process from config: the rate limit file, Redis (and
// Postgres for the sales the AccessService reads), then the gRPC server with
// envoy.service.ratelimit.v3.RateLimitService and seckill.v1.AccessService, and
// the purchase-token JWKS over HTTP; SERVING while its dependencies are
// connected. Used by main.ts and by the tests.
import { redisReady } from "../services/common/startup.js";
import { isAbsolute } from "node:path";
import { assetPath } from "../services/common/assets.js";
import type { Config } from "../services/common/config.js";
import type { ServiceRegistration } from "../services/common/grpc-server.js";
import type { Logger } from "../services/common/log.js";
import { createRedis } from "../services/common/redis.js";
import { createDb } from "../services/common/db.js";
import { serve, type ServingApp } from "../services/common/serve.js";
import { metricsFor } from "../services/common/metrics.js";
import { createAccess, type Access } from "./access/index.js";
import { rateLimitServiceRegistration } from "./ratelimit/handlers.js";
import { loadRateLimitFile } from "./ratelimit/limits-file.js";
import { createOverLimitCache } from "./ratelimit/over-limit-cache.js";
import { createRateLimiter } from "./ratelimit/rate-limiter.js";

export type GatewayApp = ServingApp & { access?: Access };

export interface GatewayOptions {
  /** Serve the AccessService and the JWKS (default true); the rate limit tests run without. */
  access?: boolean;
  clock?: () => number;
}

/** RATE_LIMIT_CONFIG: an absolute path, or one relative to the repository root. */
export const rateLimitFilePath = (config: Config): string => (isAbsolute(config.rateLimitConfig) ? config.rateLimitConfig : assetPath(config.rateLimitConfig));

export async function startGateway(config: Config, log: Logger, opts: GatewayOptions = {}): Promise<GatewayApp> {
  const clock = opts.clock ?? Date.now;
  const metrics = metricsFor(config, "gateway");
  // A bad file stops the start before anything is connected.
  const rules = loadRateLimitFile(rateLimitFilePath(config));
  const redis = createRedis(config);
  redis.on("error", (err) => log.warn("redis error", { err: err.message }));
  try {
    await redisReady(redis, { timeoutMs: config.startupTimeoutMs, log });
  } catch (error) {
    redis.disconnect();
    throw error;
  }
  const limiter = createRateLimiter({ redis, namespace: config.namespace, rules, clock, overLimit: createOverLimitCache(config.rateLimitLocalCacheKeys) });
  const services: ServiceRegistration[] = [rateLimitServiceRegistration(limiter, log, metrics.gateway())];
  let access: Access | undefined;
  const db = opts.access === false ? undefined : createDb(config.databaseUrl, config.dbPoolMax, log);
  if (db) {
    try {
      access = await createAccess({ db, redis, config, log, now: () => new Date(clock()), metrics: metrics.gateway() });
    } catch (error) {
      redis.disconnect();
      await db.destroy();
      throw error;
    }
    services.push(access.registration);
  }
  const app = await serve({
    config,
    log,
    address: config.gatewayAddr,
    services,
    dependencies: db ? { redis, db } : { redis },
    // Rate limits need Redis alone; tokens are issued from the sale cache's last read through a Postgres outage.
    ungated: ["postgres"],
    metrics,
    close: async () => {
      await access?.jwks.stop();
      return Promise.allSettled([redis.quit(), db?.destroy()]);
    },
  });
  await access?.jwks.start();
  return { ...app, access };
}
