// The gateway's AccessService (challenges, purchase tokens) and its JWKS
// endpoint, built from config, for the gateway process to serve:
//
//   const access = await createAccess({ db, redis, config, log, now });
//   // serve access.registration with the gateway's other services, then:
//   await access.jwks.start();
//
// (gateway/app.ts does this in startGateway.)
//
// redis must be connected by the caller; db is the sales database. The JWKS
// server also re-reads the key directory every KEY_RELOAD_MS while it runs, so
// a key added (rotation) is published and used without a restart.
import type { Knex } from "knex";
import type { ServiceRegistration } from "../../services/common/grpc-server.js";
import type { Config } from "../../services/common/config.js";
import type { Logger } from "../../services/common/log.js";
import type { RedisClient } from "../../services/common/redis.js";
import type { GatewayMetrics } from "../../services/common/metrics.js";
import { createAccessService, type AccessService } from "./access-service.js";
import { createChallengeStore } from "./challenge.js";
import { accessServiceRegistration } from "./handlers.js";
import { createJwksServer } from "./jwks-server.js";
import { keysDirOf, loadKeyRing, type KeyRing } from "./keys.js";
import { createSaleCache } from "./sale-cache.js";

export const KEY_RELOAD_MS = 5000;
const SALE_CACHE_TTL_MS = 1000;
/** How old a sale read may be and still be served while Postgres does not answer (sale-cache.ts). */
const SALE_CACHE_STALE_MS = 60_000;
const SALE_CACHE_MAX = 10_000;

export interface AccessDepsFromConfig {
  db: Knex;
  redis: RedisClient;
  config: Config;
  log: Logger;
  now?: () => Date;
  metrics?: GatewayMetrics;
}

export interface Access {
  registration: ServiceRegistration;
  jwks: { start(): Promise<void>; stop(): Promise<void>; readonly address: string };
  keys: KeyRing;
  service: AccessService;
}

export async function createAccess(deps: AccessDepsFromConfig): Promise<Access> {
  const { db, redis, config } = deps;
  const log = deps.log.child({ component: "access" });
  const now = deps.now ?? (() => new Date());
  const keys = await loadKeyRing({ dir: keysDirOf(config.purchaseTokenKeysDir), log, nowMs: () => now().getTime() });
  const service = createAccessService({
    sales: createSaleCache(db, { ttlMs: SALE_CACHE_TTL_MS, staleMs: SALE_CACHE_STALE_MS, maxEntries: SALE_CACHE_MAX, nowMs: () => now().getTime() }),
    challenges: createChallengeStore(redis, config.namespace),
    keys,
    now,
    challengeTtlMs: config.challengeTtlMs,
    tokenTtlMs: config.purchaseTokenTtlMs,
  });
  const server = createJwksServer(config.gatewayJwksAddr, keys.jwks, log);
  let reloads: NodeJS.Timeout | undefined;
  return {
    registration: accessServiceRegistration(service, log, deps.metrics),
    keys,
    service,
    jwks: {
      get address() {
        return server.address;
      },
      async start() {
        await server.start();
        reloads = setInterval(() => void keys.reload(), KEY_RELOAD_MS);
        reloads.unref();
        log.info("serving the purchase-token JWKS", { address: server.address });
      },
      async stop() {
        clearInterval(reloads);
        await server.stop();
      },
    },
  };
}
