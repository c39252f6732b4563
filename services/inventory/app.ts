// Builds the inventory service (SaleService + InventoryService) from config:
// Postgres, Redis, JetStream, then the gRPC server; SERVING once all three are
// connected. Used by main.ts and by the tests.
import { redisReady, untilReachable } from "../common/startup.js";
import { ensureInventoryReleaseConsumer, openEventBus, readJetStreamProgress } from "../common/event-bus.js";
import { createDb } from "../common/db.js";
import { serve, type ServingApp } from "../common/serve.js";
import { ulid } from "../common/ids.js";
import { metricsFor } from "../common/metrics.js";
import type { Config } from "../common/config.js";
import type { Logger } from "../common/log.js";
import { inventoryServiceRegistration, saleServiceRegistration } from "./handlers.js";
import { startReleaseConsumer } from "./release-consumer.js";
import { createReconciler } from "./reconcile.js";
import { createReservationService } from "./reservations.js";
import { createSaleService } from "./sales.js";
import { createSaleWarmer } from "./sale-warmer.js";
import { createRedis } from "../common/redis.js";
import { createRedisStockStore } from "./stock-store.js";
import { createRedisSweepIndex, sweepIndexing } from "./sweep-index.js";
import { createRedisLocks } from "./locks.js";
import { trackRedisEpoch } from "./redis-epoch.js";
import { startRedisLossWatch, type RedisLossWatch } from "./redis-loss-watch.js";
import { startSweeper, type Sweeper } from "./sweeper.js";

export type InventoryApp = ServingApp & { sweeper: Sweeper; redisLossWatch: RedisLossWatch };

export async function startInventory(config: Config, log: Logger, clock: () => number = Date.now): Promise<InventoryApp> {
  const metrics = metricsFor(config, "inventory");
  const db = createDb(config.databaseUrl, config.dbPoolMax, log);
  const redis = createRedis(config);
  redis.on("error", (err) => log.warn("redis error", { err: err.message }));
  const startup = { timeoutMs: config.startupTimeoutMs, log };
  const [bus] = await Promise.all([
    untilReachable("nats", () => openEventBus(config.natsUrl, config.namespace, "inventory", config.publishTimeoutMs, config.jetStreamReplicas), startup),
    redisReady(redis, startup),
    untilReachable("postgres", () => db.raw("SELECT 1"), startup),
  ]);
  const epoch = await trackRedisEpoch(redis, log);
  const stock = createRedisStockStore(redis, config.namespace);
  const sweepIndex = createRedisSweepIndex(redis, config.namespace);
  const indexing = sweepIndexing(sweepIndex, log);
  const jetstreamProgress = () => readJetStreamProgress(bus.jsm, bus.names);
  const warmer = createSaleWarmer({ db, stock, sweepIndexing: indexing, jetstreamProgress, now: () => new Date(clock()) });
  const sales = createSaleService({
    db,
    stock,
    warmer,
    now: () => new Date(clock()),
    newSaleId: () => ulid(clock()),
  });
  const reservations = createReservationService({
    stock,
    sweepIndexing: indexing,
    publisher: bus.publisher,
    warmOnDemand: warmer.warmOnDemand,
    nowMs: clock,
    log,
    metrics: metrics.inventory(),
  });
  // Stock releases (cancel, expiry) published by the order service, applied to Redis once.
  await ensureInventoryReleaseConsumer(bus.jsm, bus.names, { ackWaitMs: 30_000 });
  const releaseConsumer = await startReleaseConsumer({
    consumer: await bus.js.consumers.get(bus.names.stream, bus.names.inventoryReleaseConsumer),
    stock,
    log,
  });
  // Republishes reservations whose event never reached JetStream; reports those that never become orders.
  const sweeper = startSweeper({
    stock,
    index: sweepIndex,
    locks: createRedisLocks(redis, config.namespace),
    db,
    publisher: bus.publisher,
    log,
    nowMs: clock,
    intervalMs: config.sweepIntervalMs,
    afterMs: config.sweepAfterMs,
    reportAfterMs: config.sweepReportAfterMs,
    batchSize: config.sweepBatchSize,
    jetstreamProgress,
    publishSlackMs: config.publishTimeoutMs,
  });
  const reconcile = createReconciler({ db, stock, jetstreamProgress, warm: sales.warm, now: () => new Date(clock()) });
  // Notices a sale's lost Redis state without waiting for a purchase, and rebuilds it.
  const redisLossWatch = startRedisLossWatch({
    db,
    stock,
    sales,
    epoch,
    log,
    now: () => new Date(clock()),
    intervalMs: config.redisCheckIntervalMs,
    metrics: metrics.inventory(),
  });
  const app = await serve({
    config,
    log,
    address: config.inventoryAddr,
    services: [saleServiceRegistration(sales, reconcile, log), inventoryServiceRegistration(reservations, log)],
    dependencies: { redis, nats: bus.nc, db },
    // A live sale sells from Redis and JetStream alone.
    ungated: ["postgres"],
    metrics,
    // Order's channels balance over every inventory replica; aged connections make them look for new ones.
    ageConnections: true,
    drain: () => releaseConsumer.stop(),
    close: async () => {
      await Promise.all([sweeper.stop(), redisLossWatch.stop()]);
      return Promise.allSettled([bus.close(), redis.quit(), db.destroy()]);
    },
  });
  return { ...app, sweeper, redisLossWatch };
}
