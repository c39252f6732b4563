// The processes the bench measures, started like `npm start` starts them:
// the services (inventory, order, the order writer and the gateway) as
// bundles from dist/ (tools/build.ts) in their own processes, on free ports,
// with their own namespace (`bench<hex>`: stream, consumer, Redis keys) and
// database (`seckill_bench_<hex>`); and the no-op baseline server (and the
// refusal floor), bundled the same way. The gateway (RateLimitService,
// AccessService, the purchase-token JWKS) serves the edge figures; it signs
// with a key of its own directory, which the load generator signs with too
// (`signer`). stop() removes every trace.
import { freePort } from "../tools/stack/ports.js";
import { randomBytes } from "node:crypto";
import { mkdtempSync, readFileSync, rmSync, writeFileSync } from "node:fs";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { fileURLToPath } from "node:url";
import { credentials } from "@grpc/grpc-js";
import { SaleServiceClient, callUnary, type Sale } from "@seckill/sdk";
import { parse, stringify } from "yaml";
import { JWKS_PATH } from "../gateway/access/jwks-server.js";
import { createKeyFile } from "../gateway/access/keys.js";
import type { TokenSigner } from "./h2-load.js";
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
  inventoryAddress: string;
  gatewayAddress: string;
  gatewayJwksAddress: string;
  /** The gateway's signing key, for the generator's purchase tokens. */
  signer: Omit<TokenSigner, "ttlMs">;
  /** The gateway's RateLimitService rules as the bench runs them, and how they differ from gateway/ratelimit.yaml. */
  rateLimitRules: string;
  createSale(opts: { totalStock: number; perUserLimit?: number }): Promise<Sale>;
  /** Count of orders of a sale in Postgres. */
  ordersOf(saleId: string): Promise<number>;
  stopService(name: ServiceName): Promise<void>;
  startService(name: ServiceName): Promise<void>;
  /** Services stopped on purpose (stopService), not yet started again. */
  stopped: Set<ServiceName>;
  stop(): Promise<void>;
}

const SERVICE_NAMES: ServiceName[] = ["inventory", "order", "order-writer", "gateway"];

/** The bench's client address carries every user: its limit is lifted to this. */
const BENCH_REMOTE_ADDRESS_LIMIT = 1_000_000_000;

/**
 * gateway/ratelimit.yaml with the per-client-address limit lifted: the load
 * generator is one address (127.0.0.1) standing for every buyer, as a BFF
 * would; the per-user and per-user-and-sale limits stay as they are (every
 * call of the bench is a new user).
 */
function benchRateLimitFile(dir: string): { file: string; note: string } {
  const rules = parse(readFileSync(fileURLToPath(new URL("../gateway/ratelimit.yaml", import.meta.url)), "utf8")) as {
    descriptors: { key: string; rate_limit?: { unit: string; requests_per_unit: number } }[];
  };
  const address = rules.descriptors.find((d) => d.key === "remote_address");
  let note = "gateway/ratelimit.yaml as it is";
  if (address?.rate_limit) {
    note = `gateway/ratelimit.yaml with remote_address raised from ${address.rate_limit.requests_per_unit}/${address.rate_limit.unit} to ${BENCH_REMOTE_ADDRESS_LIMIT.toLocaleString("en-US")}/second (one generator address stands for every buyer); user_id and sale_id+user_id as they are`;
    address.rate_limit = { unit: "second", requests_per_unit: BENCH_REMOTE_ADDRESS_LIMIT };
  }
  const file = join(dir, "ratelimit.yaml");
  writeFileSync(file, stringify(rules));
  return { file, note };
}

/**
 * `settings` overrides the environment the services get, e.g. a Redis
 * Cluster's nodes, a NATS cluster's servers and JETSTREAM_REPLICAS (figure g).
 */
export async function startBenchStack(log: (line: string) => void, settings: NodeJS.ProcessEnv = {}): Promise<BenchStack> {
  const id = randomBytes(4).toString("hex");
  const base = readConfig();
  const dbUrl = new URL(base.databaseUrl);
  dbUrl.pathname = `/seckill_bench_${id}`;
  const [inventoryPort, orderPort, writerPort, gatewayPort, jwksPort] = [await freePort(), await freePort(), await freePort(), await freePort(), await freePort()];
  const scratch = mkdtempSync(join(tmpdir(), "seckill-bench-"));
  const keysDir = join(scratch, "keys");
  const kid = await createKeyFile(keysDir);
  const rateLimits = benchRateLimitFile(scratch);
  const env: NodeJS.ProcessEnv = {
    ...process.env,
    SECKILL_NAMESPACE: `bench${id}`,
    DATABASE_URL: dbUrl.toString(),
    INVENTORY_ADDR: `127.0.0.1:${inventoryPort}`,
    ORDER_ADDR: `127.0.0.1:${orderPort}`,
    WRITER_ADDR: `127.0.0.1:${writerPort}`,
    GATEWAY_ADDR: `127.0.0.1:${gatewayPort}`,
    GATEWAY_JWKS_ADDR: `127.0.0.1:${jwksPort}`,
    RATE_LIMIT_CONFIG: rateLimits.file,
    PURCHASE_TOKEN_KEYS_DIR: keysDir,
    PURCHASE_TOKEN_JWKS_URL: `http://127.0.0.1:${jwksPort}${JWKS_PATH}`,
    // The direct figures call the order service without a token, as the edge
    // would after checking it; a token that is present is verified either way
    // (the edge figures send one per call, directly and through Envoy).
    PURCHASE_TOKEN_REQUIRED: "false",
    LOG_LEVEL: process.env.LOG_LEVEL ?? "warn",
    ...settings,
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
    await dropDatabase(config.databaseAdminUrl, dbUrl.pathname.slice(1)).catch((error: Error) => log(`dropping ${dbUrl.pathname.slice(1)} failed: ${error.message}`));
    rmSync(scratch, { recursive: true, force: true });
  };

  const stopped = new Set<ServiceName>();
  const startService = async (name: ServiceName) => {
    services[name] = await spawnServing(name, bundlePath(name), addressOf[name], env);
    stopped.delete(name);
  };

  try {
    await migrate(db);
    const bus = await openEventBus(config.natsUrl, config.namespace, "bench", config.publishTimeoutMs, config.jetStreamReplicas);
    await bus.close();
    await buildServices();
    log(`stack: namespace ${config.namespace}, database ${dbUrl.pathname.slice(1)}, services built into dist/`);
    await startService("inventory");
    await Promise.all([startService("order"), startService("order-writer"), startService("gateway")]);
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
    inventoryAddress: config.inventoryAddr,
    gatewayAddress: config.gatewayAddr,
    gatewayJwksAddress: config.gatewayJwksAddr,
    signer: { kid, privateKeyPem: readFileSync(join(keysDir, `${kid}.pem`), "utf8") },
    rateLimitRules: rateLimits.note,
    async createSale({ totalStock, perUserLimit = 1 }) {
      const request = saleRequest({ requestId: `bench-${id}-${++saleCount}`, name: `bench ${saleCount}`, totalStock, perUserLimit });
      const { sale } = await callUnary(sales!, "createSale", request, { deadlineMs: 10_000 });
      return sale!;
    },
    async ordersOf(saleId) {
      const [row] = await db("orders").where({ sale_id: saleId }).count({ n: "*" });
      return Number(row.n);
    },
    stopService: (name) => {
      stopped.add(name);
      return services[name].stop(STOP_GRACE_MS);
    },
    startService,
    stopped,
    stop,
  };
}

export { SERVICE_NAMES };
