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
import { jetstreamManager, type JetStreamManager } from "@nats-io/jetstream";
import { Redis } from "ioredis";
import type { ServiceError } from "@grpc/grpc-js";
import {
  InventoryServiceClient,
  OrderServiceClient,
  SaleServiceClient,
  callUnary,
  rejectionOf,
  type CreateSaleRequest,
  type Rejection,
  ReleasePolicy,
  type Sale,
} from "@seckill/sdk";
import { JWKS_PATH } from "../../gateway/access/jwks-server.js";
import { startGateway, type GatewayApp } from "../../gateway/app.js";
import { readConfig, type Config } from "../../services/common/config.js";
import { createDb, dropDatabase, ensureDatabase, migrate, type Db } from "../../services/common/db.js";
import { connectNats, deadLetterNames, eventNames } from "../../services/common/event-bus.js";
import { quietLogger } from "../../services/common/log.js";
import { startInventory, type InventoryApp } from "../../services/inventory/app.js";
import { startOrder, type OrderApp } from "../../services/order/app.js";
import { startWriter, type WriterApp } from "../../services/order/writer/app.js";

export interface TestStack {
  config: Config;
  db: Db;
  redis: Redis;
  inventory: InventoryApp;
  order: OrderApp;
  writer: WriterApp;
  /** The gateway (AccessService, JWKS) when started with { gateway: true }. */
  gateway?: GatewayApp;
  sales: SaleServiceClient;
  orders: OrderServiceClient;
  inventoryClient: InventoryServiceClient;
  /** Creates an open sale (started a second ago, ends in an hour). */
  createSale(
    overrides?: Partial<{ totalStock: number; perUserLimit: number; startsAt: Date; endsAt: Date; priceMinor: number; releasePolicy: ReleasePolicy }>,
  ): Promise<Sale>;
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
  const redis = new Redis(config.redisUrl);
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

/** Removes a run's stream and Redis keys. */
export async function cleanNamespace(config: Config): Promise<void> {
  const nc = await connectNats(config.natsUrl, "test-cleanup");
  try {
    const jsm = await jetstreamManager(nc);
    for (const stream of [eventNames(config.namespace).stream, deadLetterNames(config.namespace).stream]) {
      await jsm.streams.delete(stream).catch(() => undefined);
    }
  } finally {
    await nc.close();
  }
  const redis = new Redis(config.redisUrl);
  try {
    let cursor = "0";
    do {
      const [next, keys] = await redis.scan(cursor, "MATCH", `${config.namespace}:*`, "COUNT", 1000);
      if (keys.length > 0) await redis.del(...keys);
      cursor = next;
    } while (cursor !== "0");
  } finally {
    redis.disconnect();
  }
}

/** A valid CreateSale request for an open sale (started a second ago, ends in an hour). */
export function saleRequest(overrides: Partial<CreateSaleRequest> = {}): CreateSaleRequest {
  const now = Date.now();
  return {
    requestId: `create-${randomBytes(6).toString("hex")}`,
    name: "Test sale",
    totalStock: 10,
    priceMinor: 1999,
    currency: "EUR",
    startsAt: new Date(now - 1000),
    endsAt: new Date(now + 3600_000),
    perUserLimit: 1,
    paymentWindowSeconds: 900,
    releasePolicy: ReleasePolicy.RELEASE_POLICY_UNSPECIFIED,
    accessRules: undefined,
    ...overrides,
  };
}

/** Waits until the order writer has acked or terminated every reservation event up to seq. */
export async function writerDrained(jsm: JetStreamManager, namespace: string, seq: number): Promise<void> {
  const names = eventNames(namespace);
  await eventually(
    async () => {
      const info = await jsm.consumers.info(names.stream, names.writerConsumer);
      return info.ack_floor.stream_seq >= seq && info.num_ack_pending === 0 && info.num_pending === 0;
    },
    15_000,
    `the writer to finish the events up to seq ${seq}`,
  );
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

/** Polls until check() returns true, or fails after timeoutMs. */
export async function eventually(check: () => Promise<boolean>, timeoutMs = 15_000, what = "condition"): Promise<void> {
  const deadline = Date.now() + timeoutMs;
  while (Date.now() < deadline) {
    if (await check()) return;
    await new Promise((r) => setTimeout(r, 50));
  }
  throw new Error(`timed out after ${timeoutMs} ms waiting for ${what}`);
}
