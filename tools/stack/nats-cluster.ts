// A NATS cluster with JetStream on loopback ports (three nodes by default),
// from the nats-server binary the private single instance uses
// (dependencies.ts): each node has its own JetStream store under
// <stateDir>/nats-<n>, and routes to the others. For `npm start -- --cluster`
// and the tests that kill a node: a node can be killed, started again on its
// ports with its store, and asked for by the stream it leads. On request each
// route between two nodes runs through a TCP fault proxy of its own, so that a
// node can be cut off from the others while it runs.
import fs from "node:fs";
import path from "node:path";
import { setTimeout as sleep } from "node:timers/promises";
import { jetstreamManager } from "@nats-io/jetstream";
import { connectNats } from "../../services/common/event-bus.js";
import { findServerBinary, isRunning, MissingDependencyError, natsInfo, spawnLogged, stopChild, waitReady, type Started } from "./dependencies.js";
import { freePorts } from "./ports.js";
import { startTcpProxy, type TcpProxy } from "../chaos/tcp-proxy.js";

export interface NatsClusterOptions {
  /** e.g. <repo>/.local: node n's store is <stateDir>/nats-<n>, its log <stateDir>/nats-<n>.log. */
  stateDir: string;
  /** Nodes (default 3). */
  size?: number;
  /** The nodes' client ports (default: free ports), and their cluster route ports likewise. */
  clientPorts?: number[];
  routePorts?: number[];
  log?: (line: string) => void;
  /** Directories (PATH syntax) searched for nats-server, as in ensureDependencies. */
  path?: string;
  /** Node i dials node j's route port through a fault proxy of the pair's own (routeProxies). */
  proxyRoutes?: boolean;
}

export interface NatsCluster {
  /** The nodes' server names (nats-1, nats-2, ...): what JetStream names a stream's leader by. */
  nodes: string[];
  /** Every node's client URL, comma-separated: NATS_URL for the services. */
  url: string;
  urlOf(node: string): string;
  /** A node's pid while it runs. */
  pid(node: string): number | undefined;
  /** Sends a signal to a node; SIGKILL and SIGTERM resolve once it has exited. */
  kill(node: string, signal?: NodeJS.Signals): Promise<void>;
  /** Starts a node again on its ports with its store (killing it first if it still runs), once it answers. */
  restart(node: string): Promise<void>;
  /** The server name of the node that leads a stream now (waits out an election, up to 15 s). */
  streamLeader(stream: string): Promise<string>;
  /** With proxyRoutes: the proxies of every route to and from a node (blackhole them all to cut it off). */
  routeProxies(node: string): TcpProxy[];
  /** Waits until JetStream answers through the cluster and can place a stream on every node. */
  waitJetStream(timeoutMs?: number): Promise<void>;
  /** Stops every node and waits for them to exit; the stores stay. */
  stop(): Promise<void>;
}

const CLUSTER_NAME = "seckill";
const JETSTREAM_READY_MS = 20_000;
const LEADER_WAIT_MS = 15_000;
const READY_PROBE = "cluster_ready_probe";

export async function startNatsCluster(opts: NatsClusterOptions): Promise<NatsCluster> {
  const log = opts.log ?? (() => {});
  const size = opts.size ?? 3;
  const bin = findServerBinary("nats", opts.path);
  if (!bin) throw new MissingDependencyError("nats: nats-server was not found to start a NATS cluster. Install it (apt-get install nats-server).");
  const clientPorts = opts.clientPorts ?? (await freePorts(size));
  const routePorts = opts.routePorts ?? (await freePorts(size));
  const nodes = clientPorts.map((_, i) => `nats-${i + 1}`);
  // pairProxies[i][j]: what node i dials to reach node j's route port.
  const pairProxies: (TcpProxy | undefined)[][] = [];
  if (opts.proxyRoutes) {
    for (let i = 0; i < size; i++) {
      pairProxies.push(await Promise.all(routePorts.map((p, j) => (i === j ? undefined : startTcpProxy({ target: `127.0.0.1:${p}` })))));
    }
  }
  const routesOf = (i: number) =>
    routePorts
      .map((p, j) => (opts.proxyRoutes ? (i === j ? undefined : pairProxies[i][j]!.address) : `127.0.0.1:${p}`))
      .filter((a) => a !== undefined)
      .map((a) => `nats://${a}`)
      .join(",");
  // A node that hears of another from a third dials the address that one advertises, unless it is
  // among its own routes: through proxies, a node advertises a port nothing listens on, so that
  // every route stays on the proxies (a failed implicit route is not retried; configured ones are).
  const [nowhere] = opts.proxyRoutes ? await freePorts(1) : [0];
  const urls = clientPorts.map((p) => `nats://127.0.0.1:${p}`);
  fs.mkdirSync(opts.stateDir, { recursive: true });

  const running = new Map<string, Started>();
  const indexOf = (node: string) => {
    const i = nodes.indexOf(node);
    if (i < 0) throw new Error(`no NATS node ${node} (nodes: ${nodes.join(", ")})`);
    return i;
  };
  /** Starts node i; `fresh` starts its log afresh (a restart appends to it). */
  const startNode = async (i: number, fresh: boolean) => {
    const dir = path.join(opts.stateDir, nodes[i]);
    const logFile = path.join(opts.stateDir, `${nodes[i]}.log`);
    fs.mkdirSync(dir, { recursive: true });
    if (fresh) fs.writeFileSync(logFile, "");
    const args = ["-n", nodes[i], "-a", "127.0.0.1", "-p", String(clientPorts[i]), "-js", "-sd", dir];
    args.push("--cluster_name", CLUSTER_NAME, "--cluster", `nats://127.0.0.1:${routePorts[i]}`, "--routes", routesOf(i));
    if (opts.proxyRoutes) args.push("--cluster_advertise", `127.0.0.1:${nowhere}`);
    const node = spawnLogged("nats", bin, args, logFile);
    running.set(nodes[i], node);
    await waitReady(node, logFile, () => natsInfo("127.0.0.1", clientPorts[i]));
  };

  const cluster: NatsCluster = {
    nodes,
    url: urls.join(","),
    urlOf: (node) => urls[indexOf(node)],
    pid: (node) => {
      const s = running.get(nodes[indexOf(node)]);
      return s && isRunning(s.child) ? s.child.pid : undefined;
    },
    async kill(node, signal = "SIGKILL") {
      const s = running.get(nodes[indexOf(node)]);
      if (!s || !isRunning(s.child)) return;
      const exited = signal === "SIGKILL" || signal === "SIGTERM" ? new Promise<void>((resolve) => s.child.once("exit", () => resolve())) : undefined;
      process.kill(-s.child.pid!, signal); // detached: the node leads its own process group
      await exited;
    },
    async restart(node) {
      const i = indexOf(node);
      await cluster.kill(node, "SIGCONT"); // a paused node cannot die
      await cluster.kill(node, "SIGKILL");
      await startNode(i, false);
      log(`nats: restarted cluster node ${node} on 127.0.0.1:${clientPorts[i]}`);
    },
    async streamLeader(stream) {
      const nc = await connectNats(cluster.url, "cluster-leader");
      try {
        // No account check: it fails while a killed node's meta leadership is re-elected, which the loop waits out.
        const jsm = await jetstreamManager(nc, { timeout: 2000, checkAPI: false });
        const deadline = Date.now() + LEADER_WAIT_MS;
        for (;;) {
          const leader = await jsm.streams
            .info(stream)
            .then((info) => info.cluster?.leader)
            .catch(() => undefined);
          if (leader) return leader;
          if (Date.now() > deadline) throw new Error(`stream ${stream}: no leader within ${LEADER_WAIT_MS / 1000} s`);
          await sleep(100);
        }
      } finally {
        await nc.close();
      }
    },
    routeProxies(node) {
      if (!opts.proxyRoutes) throw new Error("the NATS cluster was started without proxyRoutes");
      const i = indexOf(node);
      return pairProxies.flatMap((row, from) => row.filter((p, to) => p && (from === i || to === i)) as TcpProxy[]);
    },
    async waitJetStream(timeoutMs = JETSTREAM_READY_MS) {
      const nc = await connectNats(cluster.url, "cluster-ready");
      try {
        const deadline = Date.now() + timeoutMs;
        for (;;) {
          // A meta leader can be elected before every node has joined (a route still retrying):
          // ready once a stream can be placed on every node.
          const ready = await jetstreamManager(nc, { timeout: 1000 })
            .then(async (jsm) => {
              await jsm.streams.add({ name: READY_PROBE, subjects: [`${READY_PROBE}.>`], num_replicas: size });
              await jsm.streams.delete(READY_PROBE);
            })
            .then(() => true)
            .catch(() => false);
          if (ready) return;
          if (Date.now() > deadline) throw new Error(`nats cluster: JetStream did not answer within ${timeoutMs / 1000} s`);
          await sleep(200);
        }
      } finally {
        await nc.close();
      }
    },
    async stop() {
      await Promise.all([...running.values()].map(stopChild));
      await Promise.all(pairProxies.flat().map((p) => p?.close()));
    },
  };

  try {
    await Promise.all(nodes.map((_, i) => startNode(i, true)));
    await cluster.waitJetStream();
  } catch (error) {
    await cluster.stop();
    throw error;
  }
  log(`nats: started a ${size}-node JetStream cluster on ${urls.join(", ")} (stores in ${opts.stateDir}/nats-*)`);
  return cluster;
}
