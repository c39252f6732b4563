// `npm start`: the whole backend on this machine. Finds or starts Redis, NATS
// and Postgres, prepares the database and the JetStream stream, runs the
// services as child processes — inventory and order twice, as the default and
// the flash-sale RPC group, the order writer and the gateway — waits until each reports
// SERVING, and prints where everything is. The order services require purchase
// tokens from that gateway. A process that dies is restarted with backoff
// (supervisor.ts); one that keeps dying at start stops the stack. Ctrl-C stops it all.
import path from "node:path";
import { fileURLToPath } from "node:url";
import { JWKS_PATH } from "../../gateway/access/jwks-server.js";
import { ConfigError, readConfig, urlList, type Config } from "../../services/common/config.js";
import { createDb, ensureDatabase, migrate } from "../../services/common/db.js";
import { openEventBus } from "../../services/common/event-bus.js";
import { bundlePath, buildServices, type ServiceName } from "../build.js";
import { spawnService } from "./children.js";
import { ensureDependencies, MissingDependencyError, type RunningDependencies } from "./dependencies.js";
import { startNatsCluster, type NatsCluster } from "./nats-cluster.js";
import { startRedisCluster, type RedisCluster } from "./redis-cluster.js";
import { ensureEnvoy, EnvoyUnavailableError } from "../envoy/binary.js";
import { ENVOY_LOCAL_CONFIG, envoyListener, envoyMismatches, envoyProgram } from "./envoy.js";
import { flashOverrides } from "./groups.js";
import { dialAddress, isListening, waitListening, waitServing } from "./health.js";
import { allReady, Supervisor, type Run } from "./supervisor.js";
import { errorMessage } from "../../services/common/error-message.js";

const REPO_ROOT = fileURLToPath(new URL("../..", import.meta.url));
/** Until every process has been ready once; a single run gets 30 s (supervisor.ts). */
const READY_TIMEOUT_MS = 60_000;
const STOP_GRACE_MS = 15_000;

interface StackService {
  name: string;
  bundle: ServiceName;
  addr: (c: Config) => string;
  /** Settings of this process on top of the stack's (the flash-sale group's addresses and group). */
  env: (c: Config) => Record<string, string>;
  serves: string;
}

const FLASH_GROUP = (c: Config) => ({ ...flashOverrides(process.env), SERVICE_GROUP: "flash", INVENTORY_ADDR: c.flashInventoryAddr });

/**
 * The order services require purchase tokens and verify them against the
 * JWKS of the gateway this stack runs; PURCHASE_TOKEN_REQUIRED or
 * PURCHASE_TOKEN_JWKS_URL set in the environment win.
 */
const PURCHASE_TOKENS = (c: Config): Record<string, string> => ({
  ...(process.env.PURCHASE_TOKEN_REQUIRED === undefined ? { PURCHASE_TOKEN_REQUIRED: "true" } : {}),
  ...(process.env.PURCHASE_TOKEN_JWKS_URL === undefined ? { PURCHASE_TOKEN_JWKS_URL: `http://${dialAddress(c.gatewayJwksAddr)}${JWKS_PATH}` } : {}),
});
const tokensRequired = () => (process.env.PURCHASE_TOKEN_REQUIRED ?? "true") === "true";

const SERVICES: StackService[] = [
  { name: "inventory", bundle: "inventory", addr: (c) => c.inventoryAddr, env: () => ({}), serves: "seckill.v1.SaleService, seckill.v1.InventoryService" },
  { name: "order", bundle: "order", addr: (c) => c.orderAddr, env: PURCHASE_TOKENS, serves: "seckill.v1.OrderService" },
  { name: "inventory-flash", bundle: "inventory", addr: (c) => c.flashInventoryAddr, env: FLASH_GROUP, serves: "the flash-sale group's inventory" },
  {
    name: "order-flash",
    bundle: "order",
    addr: (c) => c.flashOrderAddr,
    env: (c) => ({ ...PURCHASE_TOKENS(c), ...FLASH_GROUP(c), ORDER_ADDR: c.flashOrderAddr }),
    serves: "the flash-sale group's order service",
  },
  { name: "order-writer", bundle: "order-writer", addr: (c) => c.writerAddr, env: () => ({}), serves: "seckill.v1.DeadLetterService (ops)" },
  { name: "gateway", bundle: "gateway", addr: (c) => c.gatewayAddr, env: () => ({}), serves: "envoy.service.ratelimit.v3.RateLimitService, seckill.v1.AccessService" },
];

/**
 * Where each process serves GET /metrics: METRICS_ADDR (default
 * 127.0.0.1:9464) is inventory's, the others take the next ports in this
 * order; METRICS_ADDR set empty serves none.
 */
const METRICS_OFFSETS: Record<string, number> = { inventory: 0, order: 1, "order-writer": 2, gateway: 3, "inventory-flash": 4, "order-flash": 5 };
const DEFAULT_METRICS_ADDR = "127.0.0.1:9464";

function metricsAddr(name: string): string | undefined {
  const first = process.env.METRICS_ADDR ?? DEFAULT_METRICS_ADDR;
  if (first === "") return undefined;
  const split = first.lastIndexOf(":");
  return `${first.slice(0, split)}:${Number(first.slice(split + 1)) + METRICS_OFFSETS[name]}`;
}

const log = (text: string) =>
  process.stderr.write(
    text
      .split("\n")
      .map((line) => `[stack] ${line}\n`)
      .join(""),
  );

/**
 * `npm start -- --cluster`: the distributed engines on this machine. NATS runs
 * as a three-node JetStream cluster on loopback ports, the streams on all
 * three (JETSTREAM_REPLICAS=3 unless set); Redis as a Redis Cluster of three
 * masters with a replica each on free loopback ports, given to every process
 * as REDIS_CLUSTER_NODES.
 */
const CLUSTER = process.argv.slice(2).includes("--cluster");
let config = loadConfig();
const supervisors: Supervisor[] = [];
let deps: RunningDependencies | undefined;
let natsCluster: NatsCluster | undefined;
let redisCluster: RedisCluster | undefined;
let stopping: Promise<void> | undefined;

/** Runs a process under a Supervisor: restarted when it dies, the stack stopped when it keeps dying at start. */
function supervise(name: string, spawn: () => Run, readyAs: string, ready: (wanted: () => boolean) => Promise<boolean>): Supervisor {
  const s = new Supervisor({ name, spawn, ready, readyAs, log, giveUp: (message) => void stopAll(1, `${message}\nstopping the stack`) });
  supervisors.push(s);
  return s.start();
}

/** Stops the services, then the private dependencies, then exits with `code`. Runs once. */
function stopAll(code: number, why?: string): Promise<void> {
  stopping ??= (async () => {
    if (why) log(why);
    await Promise.all(supervisors.map((s) => s.stop(STOP_GRACE_MS)));
    await Promise.all([deps?.stop(), natsCluster?.stop(), redisCluster?.stop()]);
    process.exit(code);
  })();
  return stopping;
}

// Under `npm start` a Ctrl-C often arrives twice within a few ms: from the
// terminal, and relayed by the tsx CLI. Only a later signal means "hurry up".
let firstSignalAt = 0;
for (const signal of ["SIGINT", "SIGTERM", "SIGHUP"] as const) {
  process.on(signal, () => {
    if (!stopping) {
      firstSignalAt = Date.now();
      return void stopAll(0, `${signal}: stopping`);
    }
    if (Date.now() - firstSignalAt < 1000) return;
    log(`${signal} again: killing the services now`);
    for (const s of supervisors) s.kill();
  });
}

async function main(): Promise<void> {
  if (CLUSTER) {
    natsCluster = await startNatsCluster({ stateDir: path.join(REPO_ROOT, ".local", "nats-cluster"), log });
    config = { ...config, natsUrl: natsCluster.url, jetStreamReplicas: process.env.JETSTREAM_REPLICAS ? config.jetStreamReplicas : 3 };
    if (stopping) return;
    redisCluster = await startRedisCluster({ stateDir: path.join(REPO_ROOT, ".local", "redis-cluster"), log });
    config = { ...config, redisClusterNodes: redisCluster.nodes };
  }
  // A cluster already answers at its first node: ensureDependencies then only uses it.
  const redisUrl = config.redisClusterNodes.length > 0 ? `redis://${config.redisClusterNodes[0]}` : config.redisUrl;
  deps = await ensureDependencies({ ...config, redisUrl, natsUrl: urlList(config.natsUrl)[0] }, { stateDir: path.join(REPO_ROOT, ".local"), log });

  await ensureDatabase(config.databaseAdminUrl, config.databaseUrl);
  const db = createDb(config.databaseUrl, 2);
  try {
    const applied = await migrate(db);
    log(applied.length > 0 ? `migrations applied: ${applied.join(", ")}` : "migrations: up to date");
  } finally {
    await db.destroy();
  }

  const bus = await openEventBus(config.natsUrl, config.namespace, "stack-start", config.publishTimeoutMs, config.jetStreamReplicas);
  await bus.close();
  log(`jetstream: stream ${bus.names.stream} ready`);

  // A server already on one of our ports would answer the health checks in our services' place.
  const ports = [
    ...SERVICES,
    { name: "gateway JWKS", addr: (c: Config) => c.gatewayJwksAddr },
    ...SERVICES.flatMap(({ name }) => (metricsAddr(name) ? [{ name: `${name} metrics`, addr: () => metricsAddr(name)! }] : [])),
  ];
  for (const { name, addr } of ports) {
    if (await isListening(dialAddress(addr(config)))) {
      throw new Error(`${addr(config)} (${name}) is already in use: is another stack running?`);
    }
  }

  if (stopping) return;
  const env: NodeJS.ProcessEnv = {
    ...process.env,
    SECKILL_NAMESPACE: config.namespace,
    REDIS_URL: config.redisUrl,
    REDIS_CLUSTER_NODES: config.redisClusterNodes.join(","),
    NATS_URL: config.natsUrl,
    JETSTREAM_REPLICAS: String(config.jetStreamReplicas),
    DATABASE_URL: config.databaseUrl,
    DATABASE_ADMIN_URL: config.databaseAdminUrl,
    INVENTORY_ADDR: config.inventoryAddr,
    ORDER_ADDR: config.orderAddr,
    WRITER_ADDR: config.writerAddr,
  };
  await buildServices();
  log("services built into dist/");
  if (stopping) return;
  const services = SERVICES.map(({ name, bundle, addr, env: own }) => {
    const at = dialAddress(addr(config));
    const spawn = () => spawnService(name, bundlePath(bundle), { cwd: REPO_ROOT, env: { ...env, ...own(config), METRICS_ADDR: metricsAddr(name) ?? "" } });
    return supervise(name, spawn, `SERVING on ${at}`, (wanted) => waitServing(at, Number.POSITIVE_INFINITY, wanted));
  });
  if (!(await allReady(services, READY_TIMEOUT_MS, () => !stopping))) return;
  const edge = await startEdge();
  if (stopping) return;
  process.stdout.write(summary(services, edge));
}

function loadConfig(): Config {
  try {
    const c = readConfig();
    const zero = SERVICES.filter(({ addr }) => addr(c).endsWith(":0")).map(({ name }) => name);
    if (c.metricsAddr.endsWith(":0")) zero.push("METRICS_ADDR");
    if (zero.length > 0) throw new ConfigError([`npm start needs fixed ports; port 0 given for ${zero.join(", ")}`]);
    return c;
  } catch (error) {
    if (!(error instanceof ConfigError)) throw error;
    process.stderr.write(`${error.message}\n`);
    process.exit(2);
  }
}

/**
 * Envoy in front, from PATH or installed into .local/envoy (when python3 is
 * there), when the stack uses the ports envoy.local.yaml routes to; its
 * address, or why not.
 */
async function startEdge(): Promise<string> {
  const mismatches = envoyMismatches(config);
  if (mismatches.length > 0) return `not started: ${mismatches.join(", ")}`;
  let bin: string;
  try {
    bin = ensureEnvoy(log).bin;
  } catch (error) {
    if (!(error instanceof EnvoyUnavailableError)) throw error;
    log(`edge not started: ${error.message}`);
    return "not started: no Envoy (clients call the services directly; see above for how to get it)";
  }
  if (stopping) return "stopping";
  const spawn = () => spawnService("envoy", envoyProgram(bin), { cwd: REPO_ROOT, env: process.env });
  const envoy = supervise("envoy", spawn, `listening on ${envoyListener()}`, (wanted) => waitListening(envoyListener(), wanted));
  if (!(await allReady([envoy], READY_TIMEOUT_MS, () => !stopping))) return "stopping";
  return `${envoyListener()} (envoy -c ${ENVOY_LOCAL_CONFIG}, pid ${envoy.pid})`;
}

function summary(services: Supervisor[], edge: string): string {
  const rows = SERVICES.map(({ name, addr, serves }, i) => `  ${name.padEnd(15)} ${addr(config).padEnd(21)} ${serves}  (pid ${services[i].pid})`);
  return [
    "",
    `Seckill Mesh is up (namespace "${config.namespace}")`,
    `  ${"edge".padEnd(15)} ${edge}`,
    ...rows,
    ...(metricsAddr("inventory") ? ["Metrics (GET /metrics, Prometheus text format):"] : []),
    ...SERVICES.flatMap(({ name }) => (metricsAddr(name) ? [`  ${name.padEnd(15)} http://${dialAddress(metricsAddr(name)!)}/metrics`] : [])),
    `  ${"jwks".padEnd(15)} http://${dialAddress(config.gatewayJwksAddr)}${JWKS_PATH}  purchase-token keys`,
    tokensRequired()
      ? "PlaceOrder requires a purchase token from AccessService.IssuePurchaseToken (PURCHASE_TOKEN_REQUIRED=true)."
      : "PlaceOrder accepts calls without a purchase token (PURCHASE_TOKEN_REQUIRED=false).",
    config.redisClusterNodes.length > 0 ? `  ${"redis".padEnd(15)} cluster ${config.redisClusterNodes.join(",")}` : `  ${"redis".padEnd(15)} ${hidePassword(config.redisUrl)}`,
    `  ${"nats".padEnd(15)} ${urlList(config.natsUrl).map(hidePassword).join(",")}${config.jetStreamReplicas > 1 ? `  (streams on ${config.jetStreamReplicas} nodes)` : ""}`,
    `  ${"postgres".padEnd(15)} ${hidePassword(config.databaseUrl)}`,
    `Try: grpcurl -plaintext ${dialAddress(config.orderAddr)} list`,
    "A process that dies is restarted (after 0.5 s, doubling up to 10 s).",
    "Press Ctrl-C to stop.",
    "",
  ].join("\n");
}

function hidePassword(url: string): string {
  const u = new URL(url);
  if (u.password) u.password = "***";
  return u.toString();
}

main().catch((error: unknown) => {
  const message = errorMessage(error);
  process.stderr.write(error instanceof MissingDependencyError ? `${message}\n` : `start-up failed: ${message}\n`);
  void stopAll(1);
});
