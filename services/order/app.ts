// Builds the order service from config: Postgres, JetStream (status
// notifications, stock releases), the inventory stub, the expiry and release
// relay loop, then the gRPC server; SERVING once they are connected.
import { redisReady, untilReachable } from "../common/startup.js";
import { StockReleased } from "@seckill/sdk";
import { createDb } from "../common/db.js";
import { openEventBus } from "../common/event-bus.js";
import { serve, type ServingApp } from "../common/serve.js";
import { metricsFor } from "../common/metrics.js";
import type { Config } from "../common/config.js";
import type { Logger } from "../common/log.js";
import { orderServiceRegistration } from "./handlers.js";
import { createInventoryClient } from "./inventory-client.js";
import { startExpiryLoop } from "./expiry.js";
import { createConnectionWatchLimit, createOrderWatchHub } from "./order-watch.js";
import { createOrderService } from "./orders.js";
import { createReleaseOutbox } from "./release-outbox.js";
import { createPurchaseTokenCheck } from "./purchase-token.js";
import { createRedis } from "../common/redis.js";
import { createSoldOutShortcut, redisSoldOutSource } from "./sold-out.js";

export type OrderApp = ServingApp;

export async function startOrder(config: Config, log: Logger, clock: () => number = Date.now): Promise<OrderApp> {
  const metrics = metricsFor(config, "order");
  const db = createDb(config.databaseUrl, config.dbPoolMax, log);
  // Redis here: purchase tokens' single-purpose claims, and the winners of the
  // sales this process saw sell out (read from inventory's keys). It is not a
  // health dependency: a token purchase without it answers UNAVAILABLE, and a
  // sold-out sale whose winners cannot be read is answered by inventory.
  const redis = createRedis(config);
  redis.on("error", (err) => log.warn("redis error", { err: err.message }));
  const startup = { timeoutMs: config.startupTimeoutMs, log };
  const [bus] = await Promise.all([
    untilReachable("nats", () => openEventBus(config.natsUrl, config.namespace, "order", config.publishTimeoutMs, config.jetStreamReplicas), startup),
    untilReachable("postgres", () => db.raw("SELECT 1"), startup),
    redisReady(redis, startup),
  ]);
  const inventory = createInventoryClient({
    address: config.inventoryAddr,
    deadlineMs: config.callDeadlineMs,
    maxBatch: config.reserveBatchMax,
    maxMessageBytes: config.grpcMaxMessageBytes,
  });
  const now = () => new Date(clock());
  const outbox = createReleaseOutbox({ db, publisher: bus.publisher, now, log, relayAfterMs: config.releaseRelayAfterMs });
  const purchaseTokens = createPurchaseTokenCheck({
    jwksUrl: config.purchaseTokenJwksUrl,
    redis,
    namespace: config.namespace,
    required: config.purchaseTokenRequired,
    nowMs: clock,
    log,
  });
  const soldOut = createSoldOutShortcut({
    source: redisSoldOutSource(redis, config.namespace, clock),
    log,
    checkIntervalMs: config.redisCheckIntervalMs,
    nowMs: clock,
  });
  const orders = createOrderService({ db, inventory, publisher: bus.publisher, releaseOutbox: outbox, purchaseTokens, soldOut, now, log, metrics: metrics.orders() });
  // Unpaid orders past pay_by expire, and releases left unpublished are relayed, on every replica.
  const expiry = startExpiryLoop({
    db,
    outbox,
    now,
    log,
    intervalMs: config.expiryIntervalMs,
    onExpired: orders.releasedRows,
    metrics: metrics.orders(),
  });
  const hub = createOrderWatchHub(bus.nc, bus.names.orderStatus, config.maxOrderWatchers);
  metrics.observe("order_watchers", "WatchOrder streams open on this process.", () => hub.size);
  const perConnection = createConnectionWatchLimit(config.maxWatchesPerConnection);
  // Stock coming back (cancel, expiry) lifts this process's sold-out shortcut.
  const releaseSubscription = bus.nc.subscribe(bus.names.releaseSubjects, {
    callback: (error, msg) => {
      if (error) return;
      try {
        orders.stockReturned(StockReleased.decode(msg.data).saleId);
      } catch {
        log.warn("undecodable stock release event", { subject: msg.subject });
      }
    },
  });
  const shutdown = new AbortController();
  return serve({
    config,
    log,
    address: config.orderAddr,
    services: [orderServiceRegistration(orders, { hub, perConnection }, log, shutdown.signal)],
    dependencies: { nats: bus.nc, db },
    // PlaceOrder needs no Postgres; order reads, payments and cancels answer UNAVAILABLE without it.
    ungated: ["postgres"],
    metrics,
    drain: async () => {
      shutdown.abort();
      await Promise.all([expiry.stop(), soldOut.stop()]);
    },
    close: async () => {
      hub.close();
      releaseSubscription.unsubscribe();
      inventory.close();
      await Promise.allSettled([bus.close(), redis.quit(), db.destroy()]);
    },
  });
}
