// The processes the bench measures, started like `npm start` starts them:
// the three services as bundles from dist/ (tools/build.ts) in their own
// processes, on free ports, with their own namespace (`bench<hex>`: stream,
// consumer, Redis keys) and database (`seckill_bench_<hex>`); and the no-op
// baseline server (and the refusal floor), bundled the same way. stop()
// removes every trace.
import { freePort } from "../tools/stack/ports.js";
import { randomBytes } from "node:crypto";
import { writeFileSync } from "node:fs";
import { fileURLToPath } from "node:url";
import { credentials } from "@grpc/grpc-js";
import { SaleServiceClient, callUnary, type Sale } from "@seckill/sdk";
import { readConfig, type Config } from "../services/common/config.js";
import { createDb, dropDatabase, ensureDatabase, migrate, type Db } from "../services/common/db.js";
import { openEventBus } from "../services/common/event-bus.js";
import { cleanNamespace, saleRequest } from "../tools/stack/fixtures.js";
import { bundle, bundlePath, buildServices, type ServiceName } from "../tools/build.js";
import { spawnService, type ServiceProcess } from "../tools/stack/children.js";
import { waitServing } from "../tools/stack/health.js";

const REPO_ROOT = fileURLToPath(new URL("..", import.meta.url));
const NOOP_BUNDLE = fileURLToPath(new URL("./.dist/noop.mjs", import.meta.url));
const READY_TIMEOUT_MS = 30_000;
const STOP_GRACE_MS = 15_000;

async function spawnServing(name: string, file: string, address: string, env: NodeJS.ProcessEnv): Promise<ServiceProcess> {
  const child = spawnService(name, file, { cwd: REPO_ROOT, env });
  try {
    await waitServing(address, READY_TIMEOUT_MS, () => child.running());
  } catch (error) {
    await child.stop(2000);
    throw error;
  }
  if (!child.running()) throw new Error(`${name} exited during start-up (${await child.exited})`);
  return child;
}

// ------------------------------------------------------------ no-op server

export interface NoopServer {
  address: string;
  /** The bare HTTP/2 refusal floor (refusal-floor.ts), in the same process. */
  floorAddress: string;
  process: ServiceProcess;
  stop(): Promise<void>;
}

/** Bundles bench/noop-main.ts like the services (plain node, no TypeScript loader) and runs it. */
export async function startNoopProcess(): Promise<NoopServer> {
  await bundle([{ in: "bench/noop-main.ts", out: "noop" }], "bench/.dist");
  writeFileSync(new URL("./.dist/.gitignore", import.meta.url), "*\n");
  const address = `127.0.0.1:${await freePort()}`;
  const floorAddress = `127.0.0.1:${await freePort()}`;
  const child = await spawnServing("noop", NOOP_BUNDLE, address, { ...process.env, BENCH_NOOP_ADDR: address, BENCH_FLOOR_ADDR: floorAddress, LOG_LEVEL: "warn" });
  return { address, floorAddress, process: child, stop: () => child.stop(STOP_GRACE_MS) };
}

// ------------------------------------------------------------- the stack

export interface BenchStack {
  config: Config;
  /** The bench's own connection to the stack's database, for polling orders. */
  db: Db;
  services: Record<ServiceName, ServiceProcess>;
  orderAddress: string;
  createSale(opts: { totalStock: number; perUserLimit?: number }): Promise<Sale>;
  /** Count of orders of a sale in Postgres. */
  ordersOf(saleId: string): Promise<number>;
  stopService(name: ServiceName): Promise<void>;
  startService(name: ServiceName): Promise<void>;
  stop(): Promise<void>;
}

const SERVICE_NAMES: ServiceName[] = ["inventory", "order", "order-writer"];

export async function startBenchStack(log: (line: string) => void): Promise<BenchStack> {
  const id = randomBytes(4).toString("hex");
  const base = readConfig();
  const dbUrl = new URL(base.databaseUrl);
  dbUrl.pathname = `/seckill_bench_${id}`;
  const [inventoryPort, orderPort, writerPort] = [await freePort(), await freePort(), await freePort()];
  const env: NodeJS.ProcessEnv = {
    ...process.env,
    SECKILL_NAMESPACE: `bench${id}`,
    DATABASE_URL: dbUrl.toString(),
    INVENTORY_ADDR: `127.0.0.1:${inventoryPort}`,
    ORDER_ADDR: `127.0.0.1:${orderPort}`,
    WRITER_ADDR: `127.0.0.1:${writerPort}`,
    // The load generator calls the order service directly, as the edge would
    // after checking the purchase token: the edge is not in the measured path.
    PURCHASE_TOKEN_REQUIRED: "false",
    LOG_LEVEL: process.env.LOG_LEVEL ?? "warn",
  };
  const config = readConfig(env);
  const addressOf: Record<ServiceName, string> = {
    inventory: config.inventoryAddr,
    order: config.orderAddr,
    "order-writer": config.writerAddr,
    gateway: config.gatewayAddr,
  };

  await ensureDatabase(config.databaseAdminUrl, config.databaseUrl);
  const db = createDb(config.databaseUrl, 2);
  const services = {} as Record<ServiceName, ServiceProcess>;
  let sales: SaleServiceClient | undefined;

  const stop = async () => {
    sales?.close();
    await Promise.allSettled(Object.values(services).map((s) => s.stop(STOP_GRACE_MS)));
    await db.destroy().catch(() => undefined);
    await cleanNamespace(config).catch((error: Error) => log(`cleanup of namespace ${config.namespace} failed: ${error.message}`));
    await dropDatabase(config.databaseAdminUrl, dbUrl.pathname.slice(1)).catch((error: Error) =>
      log(`dropping ${dbUrl.pathname.slice(1)} failed: ${error.message}`),
    );
  };

  const startService = async (name: ServiceName) => {
    services[name] = await spawnServing(name, bundlePath(name), addressOf[name], env);
  };

  try {
    await migrate(db);
    const bus = await openEventBus(config.natsUrl, config.namespace, "bench", config.publishTimeoutMs);
    await bus.close();
    await buildServices();
    log(`stack: namespace ${config.namespace}, database ${dbUrl.pathname.slice(1)}, services built into dist/`);
    await startService("inventory");
    await Promise.all([startService("order"), startService("order-writer")]);
    sales = new SaleServiceClient(config.inventoryAddr, credentials.createInsecure());
  } catch (error) {
    await stop();
    throw error;
  }

  let saleCount = 0;
  return {
    config,
    db,
    services,
    orderAddress: config.orderAddr,
    async createSale({ totalStock, perUserLimit = 1 }) {
      const request = saleRequest({ requestId: `bench-${id}-${++saleCount}`, name: `bench ${saleCount}`, totalStock, perUserLimit });
      const { sale } = await callUnary(sales!, "createSale", request, { deadlineMs: 10_000 });
      return sale!;
    },
    async ordersOf(saleId) {
      const [row] = await db("orders").where({ sale_id: saleId }).count({ n: "*" });
      return Number(row.n);
    },
    stopService: (name) => services[name].stop(STOP_GRACE_MS),
    startService,
    stop,
  };
}

export { SERVICE_NAMES };
