// A Seckill Mesh stack for a fault test file or the fault campaign, with real
// processes that can be killed: inventory, order, the order writer (and on
// request the gateway) run as child processes on fixed free loopback ports (a
// restarted service comes back on the same port), and Redis, NATS or Postgres
// can be private instances on free ports, with their state under
// .local/faults/<id>/ — never the machine's shared servers, which other tests
// use. A link from a service to a dependency can go through a TCP fault proxy
// (tcp-proxy.ts): that service alone is given the proxy's address. Its own
// database, stream and Redis namespace, as with startTestStack; stop() removes
// everything it created.
import { freePort } from "../stack/ports.js";
import { randomBytes } from "node:crypto";
import fs from "node:fs";
import path from "node:path";
import { fileURLToPath } from "node:url";
import { credentials, type ChannelOptions } from "@grpc/grpc-js";
import { jetstreamManager } from "@nats-io/jetstream";
import { Redis } from "ioredis";
import { AccessServiceClient, OrderServiceClient, SaleServiceClient, callUnary, type CreateSaleRequest, type Sale } from "@seckill/sdk";
import { JWKS_PATH } from "../../gateway/access/jwks-server.js";
import { readConfig, type Config } from "../../services/common/config.js";
import { createDb, dropDatabase, ensureDatabase, migrate, type Db } from "../../services/common/db.js";
import { connectNats, eventNames } from "../../services/common/event-bus.js";
import { createRedis, type RedisClient } from "../../services/common/redis.js";
import { saleKeys } from "../../services/inventory/stock-store.js";
import { spawnService, type ServiceProcess } from "../../tools/stack/children.js";
import { ensureDependencies, type DependencyName, type RunningDependencies } from "../../tools/stack/dependencies.js";
import { startNatsCluster, type NatsCluster } from "../../tools/stack/nats-cluster.js";
import { startRedisCluster, type RedisCluster } from "../../tools/stack/redis-cluster.js";
import { waitServing as waitHealthServing } from "../../tools/stack/health.js";
import { cleanNamespace, eventually, saleRequest, writerDrained } from "../stack/fixtures.js";
import type { Random } from "./prng.js";
import { startTcpProxy, type TcpProxy } from "./tcp-proxy.js";

const REPO_ROOT = fileURLToPath(new URL("../..", import.meta.url));
const SERVING_TIMEOUT_MS = 30_000;
const STOP_GRACE_MS = 5_000;

export type FaultService = "inventory" | "order" | "writer" | "gateway";
export type FaultTarget = FaultService | DependencyName;
/** What a process is doing now: running (or sleeping), stopped by SIGSTOP, or gone. */
export type ProcessState = "running" | "stopped" | "dead";

const SERVICE_FILES: Record<FaultService, string> = {
  inventory: "services/inventory/main.ts",
  order: "services/order/main.ts",
  writer: "services/order/writer/main.ts",
  gateway: "gateway/main.ts",
};
const isService = (target: FaultTarget): target is FaultService => target in SERVICE_FILES;

/** Test clients come back quickly after a restart instead of backing off for up to two minutes. */
const CLIENT_OPTIONS: ChannelOptions = { "grpc.initial_reconnect_backoff_ms": 100, "grpc.max_reconnect_backoff_ms": 500 };

export interface FaultStackOptions {
  /** Dependencies run as private instances on free ports, so that a test can kill and restart them. */
  privateDependencies?: DependencyName[];
  /** Extra environment for the services, e.g. { WRITER_ACK_WAIT_MS: "2000" }. */
  env?: Record<string, string>;
  /**
   * Also run the gateway (AccessService and the purchase-token JWKS, keys under
   * the state directory); the order service then verifies tokens against it.
   * Whether they are required is PURCHASE_TOKEN_REQUIRED in `env`.
   */
  gateway?: boolean;
  /** Links that go through a TCP fault proxy: the service is given the proxy's address for that dependency. */
  links?: Link[];
  /** Jitter draws of the proxies. */
  random?: Random;
  /** Every line a service writes (its logs), as it comes. */
  onOutput?: (service: FaultService, line: string) => void;
  /**
   * NATS as a private three-node JetStream cluster (JETSTREAM_REPLICAS=3)
   * instead of one server: the services reach each node through a fault proxy
   * of its own (natsNodeProxy), the nodes reach each other through a proxy per
   * route (natsRouteProxies), and a node can be killed and restarted
   * (killNatsNode, restartNatsNode). The "nats" target and the links to "nats"
   * are not available then.
   */
  natsCluster?: boolean;
  /**
   * Redis as a private Redis Cluster (three masters, a replica each;
   * REDIS_CLUSTER_NODES) instead of one server: the master owning a sale's
   * slot can be killed and restarted as a replica (killRedisMasterOf,
   * restartRedisNode). A cluster's clients follow its nodes' own addresses, so
   * the "redis" target and the links to "redis" are not available then.
   */
  redisCluster?: boolean;
}

/** A service's connection to one dependency. */
export interface Link {
  service: FaultService;
  dependency: DependencyName;
}

export const linkName = (link: Link): string => `${link.service}->${link.dependency}`;

export interface FaultStack {
  /** The configuration the services run with. */
  config: Config;
  /** The stack's database (a pool of the test's own). */
  db: Db;
  /** The stack's Redis, one server or the cluster (it reconnects after a restart or a failover). */
  redis: RedisClient;
  sales: SaleServiceClient;
  orders: OrderServiceClient;
  /** The gateway's AccessService (purchase tokens), when the stack runs the gateway. */
  access?: AccessServiceClient;
  /** The services this stack runs. */
  services: FaultService[];
  /** The fault proxy of a link given in the options. */
  proxy(link: Link): TcpProxy;
  /** The NATS cluster's node names (nats-1, ...), when the stack runs one. */
  natsNodes: string[];
  /** The proxy every service reaches a NATS cluster node through. */
  natsNodeProxy(node: string): TcpProxy;
  /** The proxies of every route between a NATS cluster node and the others. */
  natsRouteProxies(node: string): TcpProxy[];
  /** The node that leads the reservation events stream now (waits out an election). */
  natsStreamLeader(): Promise<string>;
  killNatsNode(node: string): Promise<void>;
  /** Starts a killed node again with its store (a no-op while it runs). */
  restartNatsNode(node: string): Promise<void>;
  /** The Redis Cluster's nodes (host:port), when the stack runs one. */
  redisNodes: string[];
  /** kill -9 of the Redis Cluster master owning the sale's slot, resolved once its replica serves the slot: the node killed. */
  killRedisMasterOf(saleId: string): Promise<string>;
  /** Starts a killed Redis Cluster node again, empty: it rejoins as a replica and has synced when this resolves (a no-op while it runs). */
  restartRedisNode(node: string): Promise<void>;
  /** Creates an open sale (started a second ago, ends in an hour). */
  createSale(overrides?: Partial<CreateSaleRequest>): Promise<Sale>;
  /** sales.sold in Postgres. */
  sold(saleId: string): Promise<number>;
  /** Sends a signal to a service or a private dependency; SIGKILL (and a dependency's stop signal) resolve once it is gone. */
  kill(target: FaultTarget, signal?: NodeJS.Signals): Promise<void>;
  /** Starts a service or a private dependency again on the same port (killing it first if it still runs); a service is waited for until SERVING. */
  restart(target: FaultTarget): Promise<void>;
  /** Waits until each service (default: all) reports SERVING. */
  waitServing(...services: FaultService[]): Promise<void>;
  state(target: FaultTarget): ProcessState;
  /** Waits until the order writer has handled every reservation event in the stream. */
  drained(timeoutMs?: number): Promise<void>;
  /** Stops the services and private dependencies; removes the database, stream, Redis keys and state directory. */
  stop(): Promise<void>;
}

export async function startFaultStack(options: FaultStackOptions = {}): Promise<FaultStack> {
  const own = new Set(options.privateDependencies ?? []);
  const id = randomBytes(4).toString("hex");
  const stateDir = path.join(REPO_ROOT, ".local", "faults", id);
  fs.mkdirSync(stateDir, { recursive: true, mode: 0o755 });
  fs.chmodSync(stateDir, 0o755); // as root, postgres runs as an unprivileged user who must reach its data dir

  const base = readConfig();
  const port = async (name: DependencyName) => (own.has(name) ? await freePort() : undefined);
  const [redisPort, natsPort, pgPort] = [options.redisCluster ? undefined : await port("redis"), options.natsCluster ? undefined : await port("nats"), await port("postgres")];
  let redisUrl = redisPort ? `redis://127.0.0.1:${redisPort}` : base.redisUrl;
  let redisCluster: RedisCluster | undefined;
  let cluster: NatsCluster | undefined;
  const nodeProxies = new Map<string, TcpProxy>();
  let natsUrl = natsPort ? `nats://127.0.0.1:${natsPort}` : base.natsUrl;
  const databaseAdminUrl = pgPort ? `postgres://postgres@127.0.0.1:${pgPort}/postgres` : base.databaseAdminUrl;
  const databaseUrl = new URL(pgPort ? `postgres://seckill:seckill@127.0.0.1:${pgPort}/` : base.databaseUrl);
  databaseUrl.pathname = `/seckill_fault_${id}`;

  let deps: RunningDependencies | undefined;
  const services = new Map<FaultService, ServiceProcess>();
  let db: Db | undefined;
  let clients: { sales: SaleServiceClient; orders: OrderServiceClient; access?: AccessServiceClient; redis: RedisClient } | undefined;
  const proxies = new Map<string, TcpProxy>();
  const SERVICES: FaultService[] = ["inventory", "order", "writer", ...(options.gateway ? (["gateway"] as const) : [])];
  let config: Config | undefined;

  const removeAll = async () => {
    clients?.sales.close();
    clients?.orders.close();
    clients?.access?.close();
    clients?.redis.disconnect();
    await Promise.all(
      [...services.values()].map(async (s) => {
        if (s.running()) process.kill(-s.pid, "SIGCONT");
        await s.stop(STOP_GRACE_MS);
      }),
    );
    for (const name of deps?.started ?? []) {
      if (deps!.pid(name as DependencyName)) process.kill(-deps!.pid(name as DependencyName)!, "SIGCONT");
    }
    await db?.destroy().catch(() => undefined);
    if (config) {
      // What lives on the shared servers goes; private instances go with their directory (and
      // may be down when a test failed half-way, so they are not asked).
      await cleanNamespace({ ...config, redisUrl: base.redisUrl, redisClusterNodes: base.redisClusterNodes, natsUrl: base.natsUrl }).catch(() => undefined);
      if (!own.has("postgres")) {
        await dropDatabase(config.databaseAdminUrl, databaseUrl.pathname.slice(1)).catch(() => undefined);
      }
    }
    await deps?.stop();
    await cluster?.stop();
    await redisCluster?.stop();
    await Promise.all([...proxies.values(), ...nodeProxies.values()].map((p) => p.close()));
    fs.rmSync(stateDir, { recursive: true, force: true });
  };

  try {
    if (options.natsCluster) {
      cluster = await startNatsCluster({ stateDir: path.join(stateDir, "nats-cluster"), proxyRoutes: true });
      for (const node of cluster.nodes) nodeProxies.set(node, await startTcpProxy({ target: new URL(cluster.urlOf(node)).host, random: options.random }));
      natsUrl = cluster.url;
    }
    if (options.redisCluster) {
      redisCluster = await startRedisCluster({ stateDir: path.join(stateDir, "redis-cluster") });
      redisUrl = `redis://${redisCluster.nodes[0]}`;
    }
    // A cluster's first node stands for NATS (or Redis) here: it is running, so it is used as it is.
    deps = await ensureDependencies({ redisUrl, natsUrl: cluster ? cluster.urlOf(cluster.nodes[0]) : natsUrl, databaseAdminUrl }, { stateDir });
    const [inventoryPort, orderPort, writerPort] = [await freePort(), await freePort(), await freePort()];
    const [gatewayPort, jwksPort] = options.gateway ? [await freePort(), await freePort()] : [0, 0];
    const env: Record<string, string> = {
      SECKILL_NAMESPACE: `f${id}`,
      REDIS_URL: redisUrl,
      NATS_URL: natsUrl,
      DATABASE_URL: databaseUrl.toString(),
      DATABASE_ADMIN_URL: databaseAdminUrl,
      INVENTORY_ADDR: `127.0.0.1:${inventoryPort}`,
      ORDER_ADDR: `127.0.0.1:${orderPort}`,
      WRITER_ADDR: `127.0.0.1:${writerPort}`,
      SHUTDOWN_GRACE_MS: "2000",
      LOG_LEVEL: "error",
      ...(options.gateway
        ? {
            GATEWAY_ADDR: `127.0.0.1:${gatewayPort}`,
            GATEWAY_JWKS_ADDR: `127.0.0.1:${jwksPort}`,
            PURCHASE_TOKEN_KEYS_DIR: path.join(stateDir, "keys"),
            PURCHASE_TOKEN_JWKS_URL: `http://127.0.0.1:${jwksPort}${JWKS_PATH}`,
          }
        : {}),
      ...(cluster ? { JETSTREAM_REPLICAS: "3" } : {}),
      ...(redisCluster ? { REDIS_CLUSTER_NODES: redisCluster.nodes.join(",") } : {}),
      ...options.env,
    };
    for (const link of options.links ?? []) {
      if (cluster && link.dependency === "nats") throw new Error(`${linkName(link)}: with a NATS cluster, the services reach each node through its own proxy`);
      if (redisCluster && link.dependency === "redis") throw new Error(`${linkName(link)}: a Redis Cluster's clients follow its nodes' own addresses, past any proxy`);
      const url = { redis: redisUrl, nats: natsUrl, postgres: databaseAdminUrl }[link.dependency];
      proxies.set(linkName(link), await startTcpProxy({ target: new URL(url).host, random: options.random }));
    }
    /** A service's environment: its links through their proxies. */
    const envOf = (name: FaultService): Record<string, string> => {
      const own = { ...env };
      const via = (url: string, dependency: DependencyName) => {
        const proxy = proxies.get(linkName({ service: name, dependency }));
        if (!proxy) return url;
        const u = new URL(url);
        u.host = proxy.address;
        return u.toString();
      };
      own.REDIS_URL = via(env.REDIS_URL, "redis");
      own.NATS_URL = cluster ? [...nodeProxies.values()].map((p) => `nats://${p.address}`).join(",") : via(env.NATS_URL, "nats");
      own.DATABASE_URL = via(env.DATABASE_URL, "postgres");
      own.DATABASE_ADMIN_URL = via(env.DATABASE_ADMIN_URL, "postgres");
      return own;
    };
    config = readConfig({ ...process.env, ...env });
    const cfg = config;
    await ensureDatabase(cfg.databaseAdminUrl, cfg.databaseUrl);
    db = createDb(cfg.databaseUrl, 3);
    await migrate(db);

    const addressOf: Record<FaultService, string> = {
      inventory: cfg.inventoryAddr,
      order: cfg.orderAddr,
      writer: cfg.writerAddr,
      gateway: cfg.gatewayAddr,
    };
    const spawn = (name: FaultService) => {
      const onLine = options.onOutput && ((line: string) => options.onOutput!(name, line));
      services.set(name, spawnService(name, SERVICE_FILES[name], { cwd: REPO_ROOT, env: { ...process.env, ...envOf(name) }, onLine }));
    };
    const waitServing = async (...names: FaultService[]) => {
      await Promise.all(
        (names.length > 0 ? names : SERVICES).map((name) =>
          waitHealthServing(addressOf[name], SERVING_TIMEOUT_MS, () => services.get(name)!.running()).then((serving) => {
            if (!serving) throw new Error(`${name} exited before it was SERVING`);
          }),
        ),
      );
    };
    for (const name of SERVICES) spawn(name);
    await waitServing();
    const access = options.gateway ? new AccessServiceClient(cfg.gatewayAddr, credentials.createInsecure(), CLIENT_OPTIONS) : undefined;

    const sales = new SaleServiceClient(cfg.inventoryAddr, credentials.createInsecure(), CLIENT_OPTIONS);
    const orders = new OrderServiceClient(cfg.orderAddr, credentials.createInsecure(), CLIENT_OPTIONS);
    // One server: commands wait for the reconnection after a restart. A cluster: the services' own client, which follows failovers.
    const redis: RedisClient = redisCluster ? createRedis(cfg) : new Redis(cfg.redisUrl, { maxRetriesPerRequest: 1, retryStrategy: () => 200 });
    redis.on("error", () => undefined); // down during Redis faults; commands fail, the client reconnects
    clients = { sales, orders, access, redis };
    if (redisCluster) await redis.connect();

    const state = (target: FaultTarget): ProcessState => {
      const pid = isService(target) ? (services.get(target)!.running() ? services.get(target)!.pid : undefined) : deps!.pid(target);
      return pid === undefined ? "dead" : processState(pid);
    };

    return {
      config: cfg,
      db,
      redis,
      sales,
      orders,
      access,
      services: SERVICES,
      natsNodes: cluster?.nodes ?? [],
      natsNodeProxy(node) {
        const proxy = nodeProxies.get(node);
        if (!proxy) throw new Error(`no NATS cluster node ${node}`);
        return proxy;
      },
      natsRouteProxies(node) {
        if (!cluster) throw new Error("the stack runs no NATS cluster");
        return cluster.routeProxies(node);
      },
      natsStreamLeader() {
        if (!cluster) throw new Error("the stack runs no NATS cluster");
        return cluster.streamLeader(eventNames(cfg.namespace).stream);
      },
      async killNatsNode(node) {
        await cluster?.kill(node, "SIGKILL");
      },
      async restartNatsNode(node) {
        if (cluster && cluster.pid(node) === undefined) await cluster.restart(node);
      },
      redisNodes: redisCluster?.nodes ?? [],
      async killRedisMasterOf(saleId) {
        if (!redisCluster) throw new Error("the stack runs no Redis Cluster");
        const slot = await redisCluster.slotOf(saleKeys(cfg.namespace, saleId).rules);
        return (await redisCluster.killMasterOf(slot)).killed;
      },
      async restartRedisNode(node) {
        await redisCluster?.restart(node);
      },
      proxy(link) {
        const proxy = proxies.get(linkName(link));
        if (!proxy) throw new Error(`no fault proxy on ${linkName(link)}: give it in the options' links`);
        return proxy;
      },
      async createSale(o = {}) {
        const { sale } = await callUnary(sales, "createSale", saleRequest(o));
        return sale!;
      },
      async sold(saleId) {
        return ((await db!("sales").where({ id: saleId }).first("sold")) as { sold: number }).sold;
      },
      async kill(target, signal = "SIGKILL") {
        if (!isService(target)) await deps!.signal(target, signal);
        else {
          const s = services.get(target)!;
          if (!s.running()) return;
          process.kill(-s.pid, signal); // detached: the service leads its own process group
          if (signal === "SIGKILL") await s.exited;
        }
        // The kernel stops and continues a process asynchronously: wait until it has.
        if (signal === "SIGSTOP") await eventually(() => state(target) !== "running", 5000, `${target} to stop`, 10);
        if (signal === "SIGCONT") await eventually(() => state(target) !== "stopped", 5000, `${target} to continue`, 10);
      },
      async restart(target) {
        if (!isService(target)) return deps!.restart(target);
        const s = services.get(target)!;
        if (s.running()) {
          process.kill(-s.pid, "SIGCONT");
          s.kill();
          await s.exited;
        }
        spawn(target);
        await waitServing(target);
      },
      waitServing,
      state,
      async drained(timeoutMs = 30_000) {
        const nc = await connectNats(cfg.natsUrl, "fault-test-drain");
        try {
          const jsm = await jetstreamManager(nc);
          const deadline = Date.now() + timeoutMs;
          // The stream's last sequence, then the writer's ack floor up to it (writerDrained waits up to 15 s each time).
          // Either may time out while a NATS cluster elects leaders: asked again until the deadline.
          for (;;) {
            try {
              const last = (await jsm.streams.info(eventNames(cfg.namespace).stream)).state.last_seq;
              await writerDrained(jsm, cfg.namespace, last);
              return;
            } catch (error) {
              if (Date.now() > deadline) throw error;
            }
          }
        } finally {
          await nc.close();
        }
      },
      stop: removeAll,
    };
  } catch (error) {
    await removeAll().catch(() => undefined);
    throw error;
  }
}

/** The state letter of /proc/<pid>/stat: T (or t) is stopped, Z or no entry is dead. */
function processState(pid: number): ProcessState {
  try {
    const stat = fs.readFileSync(`/proc/${pid}/stat`, "utf8");
    const letter = stat.slice(stat.lastIndexOf(")") + 2, stat.lastIndexOf(")") + 3);
    if (letter === "T" || letter === "t") return "stopped";
    if (letter === "Z" || letter === "X") return "dead";
    return "running";
  } catch {
    return "dead";
  }
}
