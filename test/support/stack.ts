// A whole Seckill Mesh stack for one test file, on real servers: its own
// database, JetStream stream and Redis key namespace (so runs cannot disturb
// each other or a running `npm start`), and the inventory, order and writer
// services on loopback ports chosen by the OS; on request the gateway too, whose
// purchase tokens the order service then verifies.
import { randomBytes } from "node:crypto";
import { mkdtemp, rm } from "node:fs/promises";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { credentials } from "@grpc/grpc-js";
import { Redis } from "ioredis";
import type { ServiceError } from "@grpc/grpc-js";
import { InventoryServiceClient, OrderServiceClient, SaleServiceClient, callUnary, rejectionOf, type Rejection, type ReleasePolicy, type Sale } from "@seckill/sdk";
import { JWKS_PATH } from "../../gateway/access/jwks-server.js";
import { startGateway, type GatewayApp } from "../../gateway/app.js";
import { readConfig, type Config } from "../../services/common/config.js";
import { createRedis, type RedisClient } from "../../services/common/redis.js";
import { createDb, dropDatabase, ensureDatabase, migrate, type Db } from "../../services/common/db.js";
import { quietLogger } from "../../services/common/log.js";
import { startInventory, type InventoryApp } from "../../services/inventory/app.js";
import { startOrder, type OrderApp } from "../../services/order/app.js";
import { startWriter, type WriterApp } from "../../services/order/writer/app.js";
import { cleanNamespace, eventually, saleRequest, writerDrained } from "../../tools/stack/fixtures.js";

export { cleanNamespace, eventually, saleRequest, writerDrained };

export interface TestStack {
  config: Config;
  db: Db;
  /** The stack's Redis: the one server, or on REDIS_CLUSTER_NODES a cluster client (keyed commands routed by slot). */
  redis: RedisClient;
  inventory: InventoryApp;
  order: OrderApp;
  writer: WriterApp;
  /** The gateway (AccessService, JWKS) when started with { gateway: true }. */
  gateway?: GatewayApp;
  sales: SaleServiceClient;
  orders: OrderServiceClient;
  inventoryClient: InventoryServiceClient;
  /** Creates an open sale (started a second ago, ends in an hour). */
  createSale(overrides?: Partial<{ totalStock: number; perUserLimit: number; startsAt: Date; endsAt: Date; priceMinor: number; releasePolicy: ReleasePolicy }>): Promise<Sale>;
  stop(): Promise<void>;
}

export async function isolatedConfig(overrides: Record<string, string> = {}): Promise<Config> {
  const base = readConfig();
  const id = randomBytes(4).toString("hex");
  const url = new URL(base.databaseUrl);
  url.pathname = `/seckill_test_${id}`;
  return readConfig({
    ...process.env,
    SECKILL_NAMESPACE: `t${id}`,
    DATABASE_URL: url.toString(),
    INVENTORY_ADDR: "127.0.0.1:0",
    ORDER_ADDR: "127.0.0.1:0",
    WRITER_ADDR: "127.0.0.1:0",
    SHUTDOWN_GRACE_MS: "2000",
    LOG_LEVEL: "error",
    ...overrides,
  });
}

export interface TestStackOptions {
  /**
   * Also run the gateway (startGateway: AccessService and the JWKS, with a key
   * directory of its own), and have the order service verify purchase tokens
   * against its JWKS. Whether they are required is PURCHASE_TOKEN_REQUIRED.
   */
  gateway?: boolean;
}

export async function startTestStack(overrides: Record<string, string> = {}, options: TestStackOptions = {}): Promise<TestStack> {
  let config = await isolatedConfig(overrides);
  await ensureDatabase(config.databaseAdminUrl, config.databaseUrl);
  const db = createDb(config.databaseUrl, 5);
  await migrate(db);
  const log = quietLogger();
  const inventory = await startInventory(config, log);
  config = { ...config, inventoryAddr: `127.0.0.1:${inventory.port}` };
  let gateway: GatewayApp | undefined;
  const keysDir = options.gateway ? await mkdtemp(join(tmpdir(), "seckill-keys-")) : undefined;
  if (keysDir) {
    gateway = await startGateway({ ...config, gatewayAddr: "127.0.0.1:0", gatewayJwksAddr: "127.0.0.1:0", purchaseTokenKeysDir: keysDir }, log);
    config = { ...config, gatewayAddr: gateway.address, purchaseTokenJwksUrl: `http://${gateway.access!.jwks.address}${JWKS_PATH}` };
  }
  const [order, writer] = await Promise.all([startOrder(config, log), startWriter(config, log)]);
  const redis = await connectRedis(config);
  const sales = new SaleServiceClient(inventory.address, credentials.createInsecure());
  const inventoryClient = new InventoryServiceClient(inventory.address, credentials.createInsecure());
  const orders = new OrderServiceClient(order.address, credentials.createInsecure());
  let saleCount = 0;

  return {
    config,
    db,
    redis,
    inventory,
    order,
    writer,
    gateway,
    sales,
    orders,
    inventoryClient,
    async createSale(o = {}) {
      const { sale } = await callUnary(sales, "createSale", saleRequest({ requestId: `create-${++saleCount}-${randomBytes(4).toString("hex")}`, ...o }));
      return sale!;
    },
    async stop() {
      sales.close();
      orders.close();
      inventoryClient.close();
      await Promise.allSettled([order.stop(), writer.stop(), gateway?.stop()]);
      await inventory.stop();
      if (keysDir) await rm(keysDir, { recursive: true, force: true });
      redis.disconnect();
      await cleanNamespace(config);
      await db.destroy();
      await dropDatabase(config.databaseAdminUrl, new URL(config.databaseUrl).pathname.slice(1));
    },
  };
}

/** A plain client for the one server (queueing while Redis restarts, as tests expect); a cluster client on REDIS_CLUSTER_NODES. */
async function connectRedis(config: Config): Promise<RedisClient> {
  if (config.redisClusterNodes.length === 0) return new Redis(config.redisUrl);
  const cluster = createRedis(config);
  await cluster.connect();
  return cluster;
}

/** The refusal a call ended with; fails the test when it succeeded. */
export async function refusal(call: Promise<unknown>): Promise<Rejection> {
  try {
    await call;
  } catch (error) {
    return rejectionOf(error as ServiceError);
  }
  throw new Error("expected the call to be refused, but it succeeded");
}
