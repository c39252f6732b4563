// A Redis Cluster on loopback ports (three masters with one replica each by
// default), from the redis-server binary the private single instance uses
// (dependencies.ts), joined by redis-cli --cluster create. Like the single
// instance it saves nothing to disk, so a killed master's data survives only
// in its replica (a killed node restarted comes back empty, as a replica).
// For `npm start -- --cluster`, the fault campaign, and the tests that kill the
// master owning a sale's slot and wait for its replica's promotion.
import { execFile } from "node:child_process";
import fs from "node:fs";
import path from "node:path";
import { setTimeout as sleep } from "node:timers/promises";
import { promisify } from "node:util";
import { Redis } from "ioredis";
import { findServerBinary, isRunning, MissingDependencyError, spawnLogged, stopChild, waitReady, type Started } from "./dependencies.js";
import { freePorts } from "./ports.js";

const run = promisify(execFile);

export interface RedisClusterOptions {
  /** e.g. <repo>/.local: node n's files are under <stateDir>/redis-cluster-<n>, its log <stateDir>/redis-cluster-<n>.log. */
  stateDir: string;
  /** Masters (default 3); each gets one replica. */
  masters?: number;
  /** The nodes' client ports (default: free ports); their cluster bus ports are free ports too. */
  ports?: number[];
  log?: (line: string) => void;
  /** Directories (PATH syntax) searched for redis-server, as in ensureDependencies. */
  path?: string;
}

export interface RedisCluster {
  /** Every node as host:port: REDIS_CLUSTER_NODES for the services. */
  nodes: string[];
  /** The node that serves a slot now (the master the cluster reports for it). */
  masterOf(slot: number): Promise<string>;
  /** The slot of a key (CLUSTER KEYSLOT, as the cluster computes it). */
  slotOf(key: string): Promise<number>;
  /** A node's pid while it runs. */
  pid(node: string): number | undefined;
  /**
   * kill -9 the master serving the slot, then waits until another node serves
   * it (its replica promoted) and every slot is served again.
   */
  killMasterOf(slot: number, timeoutMs?: number): Promise<{ killed: string; promoted: string }>;
  /**
   * Starts a killed node again with its cluster identity but no data (nothing
   * is saved): it rejoins, finds its slots served by the promoted replica,
   * becomes that node's replica, and resolves once it has synced. A no-op while it runs.
   */
  restart(node: string, timeoutMs?: number): Promise<void>;
  /** Stops every node and waits for them to exit. */
  stop(): Promise<void>;
}

const HOST = "127.0.0.1";
/** How long a master may be unreachable before its replica takes over. */
const NODE_TIMEOUT_MS = 1000;
const READY_MS = 20_000;

export async function startRedisCluster(opts: RedisClusterOptions): Promise<RedisCluster> {
  const log = opts.log ?? (() => {});
  const masters = opts.masters ?? 3;
  const size = masters * 2;
  const bin = findServerBinary("redis", opts.path);
  if (!bin) throw new MissingDependencyError("redis: redis-server was not found to start a Redis Cluster. Install it (apt-get install redis-server).");
  const cli = path.join(path.dirname(bin), "redis-cli");
  if (!fs.existsSync(cli)) throw new MissingDependencyError(`redis: ${cli} was not found to create a Redis Cluster. Install it (apt-get install redis-tools).`);
  const ports = opts.ports ?? (await freePorts(size));
  const busPorts = await freePorts(size);
  const nodes = ports.map((port) => `${HOST}:${port}`);
  const children = new Map<string, Started>();

  const stop = async () => {
    await Promise.all([...children.values()].map(stopChild));
  };
  const dirOf = (i: number) => path.resolve(opts.stateDir, `redis-cluster-${i + 1}`);
  const logOf = (i: number) => path.resolve(opts.stateDir, `redis-cluster-${i + 1}.log`);
  /** Starts node i in its directory: nodes.conf there is the node's identity in the cluster, so a fresh directory is a fresh node. */
  const startNode = async (i: number) => {
    const [dir, logFile] = [dirOf(i), logOf(i)];
    const args = ["--port", String(ports[i]), "--bind", HOST, "--dir", dir, "--save", "", "--appendonly", "no"];
    args.push("--cluster-enabled", "yes", "--cluster-config-file", "nodes.conf", "--cluster-port", String(busPorts[i]));
    args.push("--cluster-node-timeout", String(NODE_TIMEOUT_MS));
    // A replica always takes over, however long it was cut off: a promoted replica that missed writes is the case to survive.
    args.push("--cluster-replica-validity-factor", "0", "--repl-diskless-sync-delay", "0");
    const child = spawnLogged("redis", bin, args, logFile);
    children.set(nodes[i], child);
    await waitReady(child, logFile, () => ping(ports[i]));
  };
  try {
    await Promise.all(
      nodes.map(async (_node, i) => {
        fs.rmSync(dirOf(i), { recursive: true, force: true });
        fs.mkdirSync(dirOf(i), { recursive: true });
        fs.writeFileSync(logOf(i), "");
        await startNode(i);
      }),
    );
    await run(cli, ["--cluster", "create", ...nodes, "--cluster-replicas", "1", "--cluster-yes"], { timeout: READY_MS });
    await untilServed(nodes, READY_MS);
    await untilReplicated(nodes, READY_MS);
  } catch (error) {
    await stop();
    throw error;
  }
  log(`redis: started a cluster of ${masters} masters with a replica each on ${nodes.join(",")} (logs in ${path.resolve(opts.stateDir)}/redis-cluster-*.log)`);

  const alive = () => nodes.filter((node) => isRunning(children.get(node)!.child));

  async function masterOf(slot: number): Promise<string> {
    const owner = await withNode(alive()[0], async (r) => ownerOf(await r.cluster("SLOTS"), slot));
    if (!owner) throw new Error(`no node serves slot ${slot}`);
    return owner;
  }

  return {
    nodes,
    masterOf,
    slotOf: (key) => withNode(alive()[0], async (r) => Number(await r.cluster("KEYSLOT", key))),
    pid: (node) => {
      const child = children.get(node)?.child;
      return child && isRunning(child) ? child.pid : undefined;
    },
    async killMasterOf(slot, timeoutMs = 20_000) {
      const killed = await masterOf(slot);
      const child = children.get(killed)!;
      const exited = new Promise<void>((resolve) => child.child.once("exit", () => resolve()));
      child.child.kill("SIGKILL");
      await exited;
      log(`redis: killed the master ${killed} of slot ${slot}`);
      const deadline = Date.now() + timeoutMs;
      for (;;) {
        const owner = await masterOf(slot).catch(() => killed);
        if (owner !== killed && (await clusterOk(alive()))) {
          log(`redis: slot ${slot} is served by ${owner}`);
          return { killed, promoted: owner };
        }
        if (Date.now() > deadline) throw new Error(`slot ${slot} was not taken over within ${timeoutMs} ms after ${killed} died`);
        await sleep(100);
      }
    },
    async restart(node, timeoutMs = READY_MS) {
      const i = nodes.indexOf(node);
      if (i < 0) throw new Error(`no Redis Cluster node ${node}`);
      if (isRunning(children.get(node)!.child)) return;
      await startNode(i);
      await untilServed(alive(), timeoutMs);
      await untilReplicated([node], timeoutMs);
      log(`redis: ${node} is back, as a replica`);
    },
    stop,
  };
}

async function withNode<T>(node: string, fn: (redis: Redis) => Promise<T>): Promise<T> {
  const [host, port] = node.split(":");
  const redis = new Redis({ host, port: Number(port), lazyConnect: true, maxRetriesPerRequest: 0, connectTimeout: 1000, retryStrategy: () => null });
  // A node that is down fails connect(); its error event says the same.
  redis.on("error", () => undefined);
  try {
    await redis.connect();
    return await fn(redis);
  } finally {
    redis.disconnect();
  }
}

type SlotRanges = [number, number, [string, number, ...unknown[]], ...unknown[]][];

function ownerOf(ranges: unknown, slot: number): string | undefined {
  const range = (ranges as SlotRanges).find(([from, to]) => slot >= from && slot <= to);
  return range ? `${range[2][0]}:${range[2][1]}` : undefined;
}

const ping = (port: number) => withNode(`${HOST}:${port}`, async (r) => (await r.ping()) === "PONG");

/** Every node that runs says cluster_state:ok: every slot is served. */
async function clusterOk(nodes: string[]): Promise<boolean> {
  const states = await Promise.all(nodes.map((node) => withNode(node, (r) => r.cluster("INFO")).catch(() => "")));
  return states.every((info) => /^cluster_state:ok\r?$/m.test(String(info)));
}

async function untilServed(nodes: string[], timeoutMs: number): Promise<void> {
  const deadline = Date.now() + timeoutMs;
  while (!(await clusterOk(nodes))) {
    if (Date.now() > deadline) throw new Error(`the Redis Cluster on ${nodes.join(",")} did not reach cluster_state:ok within ${timeoutMs} ms`);
    await sleep(100);
  }
}

/** Every replica has finished its first sync with its master: from then on a failover keeps the data replicated so far. */
async function untilReplicated(nodes: string[], timeoutMs: number): Promise<void> {
  const deadline = Date.now() + timeoutMs;
  const synced = async (node: string) => {
    const info = await withNode(node, (r) => r.info("replication")).catch(() => "");
    return /^role:master\r?$/m.test(info) || /^master_link_status:up\r?$/m.test(info);
  };
  while (!(await Promise.all(nodes.map(synced))).every(Boolean)) {
    if (Date.now() > deadline) throw new Error(`the replicas of the Redis Cluster on ${nodes.join(",")} did not sync within ${timeoutMs} ms`);
    await sleep(100);
  }
}
