// Builds the inventory service (SaleService + InventoryService) from config:
// Postgres, Redis, JetStream, then the gRPC server; SERVING once all three are
// connected. Used by main.ts and by the tests.
import { openEventBus } from "../common/event-bus.js";
import { createDb } from "../common/db.js";
import { serve, type ServingApp } from "../common/serve.js";
import { ulid } from "../common/ids.js";
import type { Config } from "../common/config.js";
import type { Logger } from "../common/log.js";
import { inventoryServiceRegistration, saleServiceRegistration } from "./handlers.js";
import { createReservationService } from "./reservations.js";
import { createSaleService } from "./sales.js";
import { createRedis, createStockStore } from "./stock-store.js";

export type InventoryApp = ServingApp;

export async function startInventory(config: Config, log: Logger, clock: () => number = Date.now): Promise<InventoryApp> {
  const db = createDb(config.databaseUrl, config.dbPoolMax);
  const redis = createRedis(config.redisUrl);
  redis.on("error", (err) => log.warn("redis error", { err: err.message }));
  const [bus] = await Promise.all([
    openEventBus(config.natsUrl, config.namespace, "inventory", config.publishTimeoutMs),
    redis.connect(),
    db.raw("SELECT 1"),
  ]);
  const store = createStockStore(redis, config.namespace);
  const sales = createSaleService({ db, store, now: () => new Date(clock()), newSaleId: () => ulid(clock()) });
  const reservations = createReservationService({
    store,
    publisher: bus.publisher,
    warmIfExists: sales.warmIfExists,
    nowMs: clock,
    log,
  });
  return serve({
    config,
    log,
    address: config.inventoryAddr,
    services: [saleServiceRegistration(sales, log), inventoryServiceRegistration(reservations, log)],
    dependencies: { redis, nats: bus.nc, db },
    close: () => Promise.allSettled([bus.close(), redis.quit(), db.destroy()]),
  });
}
