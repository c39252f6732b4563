// Builds the inventory service (SaleService + InventoryService) from config:
// Postgres, Redis, JetStream, then the gRPC server; SERVING once all three are
// connected. Used by main.ts and by the tests.
import { openEventBus } from "../common/event-bus.js";
import { createDb } from "../common/db.js";
import { createDependencyHealth, watchNats, watchPostgres, watchRedis } from "../common/dependency-health.js";
import { startGrpcServer } from "../common/grpc-server.js";
import { ulid } from "../common/ids.js";
import type { Config } from "../common/config.js";
import type { Logger } from "../common/log.js";
import type { RunningService } from "../common/runner.js";
import { inventoryServiceRegistration, saleServiceRegistration } from "./handlers.js";
import { createReservationService } from "./reservations.js";
import { createSaleService } from "./sales.js";
import { createRedis, createStockStore } from "./stock-store.js";

export interface InventoryApp extends RunningService {
  port: number;
}

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
  const grpc = await startGrpcServer({
    address: config.inventoryAddr,
    services: [saleServiceRegistration(sales, log), inventoryServiceRegistration(reservations, log)],
    maxMessageBytes: config.grpcMaxMessageBytes,
    log,
  });
  grpc.setServing(true);
  const health = createDependencyHealth(grpc.setServing, log);
  watchRedis(redis, health);
  watchNats(bus.nc, health);
  watchPostgres(db, health);
  const host = config.inventoryAddr.slice(0, config.inventoryAddr.lastIndexOf(":"));
  return {
    port: grpc.port,
    address: `${host}:${grpc.port}`,
    async stop() {
      health.stop();
      await grpc.shutdown({ drainDelayMs: config.drainDelayMs, graceMs: config.shutdownGraceMs });
      await Promise.allSettled([bus.close(), redis.quit(), db.destroy()]);
    },
  };
}
