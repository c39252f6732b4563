// A TCP proxy on loopback for fault injection between a service and one of its
// dependencies (Redis, NATS, Postgres): the service is given the proxy's
// address, the proxy forwards every connection to the real server, and the
// campaign can make the link slow (fixed latency plus jitter, each direction),
// drop every open connection (both ends see it close), or blackhole it for a
// while (nothing passes, no error either: bytes wait, as TCP retransmissions
// would, and flow again once it ends — new connections hang the same way).
// Order within a direction is always kept.
import net from "node:net";
import type { Random } from "./prng.js";

export interface TcpProxyOptions {
  /** Where connections go: host:port. */
  target: string;
  /** Loopback port to listen on (default: one chosen by the OS). */
  port?: number;
  /** Jitter draws (default: none needed until jitter is set; then required). */
  random?: Random;
}

export interface LinkFault {
  /** Added to every chunk in each direction. */
  latencyMs: number;
  /** Up to this much more, drawn per chunk. */
  jitterMs?: number;
}

export interface TcpProxy {
  /** 127.0.0.1:<port> — the address to give the service. */
  address: string;
  port: number;
  target: string;
  setLatency(fault: LinkFault): void;
  /** Closes every open connection (both sides); new connections are accepted as usual. */
  dropConnections(): void;
  /** Nothing passes until `heal()` (or for `ms` when given); data waits and flows afterwards, in order. */
  blackhole(ms?: number): void;
  /** No latency, no blackhole. */
  heal(): void;
  /** Open connection pairs. */
  connections(): number;
  /** Bytes forwarded so far (both directions). */
  forwardedBytes(): number;
  close(): Promise<void>;
}

/** Pending bytes in one direction above which the sending side is paused (backpressure). */
const HIGH_WATER = 4 * 1024 * 1024;

interface Pipe {
  client: net.Socket;
  upstream: net.Socket;
}

export async function startTcpProxy(opts: TcpProxyOptions): Promise<TcpProxy> {
  const at = opts.target.lastIndexOf(":");
  const targetHost = opts.target.slice(0, at);
  const targetPort = Number(opts.target.slice(at + 1));
  let latency: LinkFault = { latencyMs: 0 };
  let blackholeUntil = 0;
  let blackholeTimer: NodeJS.Timeout | undefined;
  let forwarded = 0;
  const pipes = new Set<Pipe>();
  /** Directions holding data back, woken when a blackhole ends. */
  const waiting = new Set<() => void>();

  const blackholed = () => blackholeUntil > Date.now();
  const delay = () => {
    if (latency.latencyMs === 0 && !latency.jitterMs) return 0;
    const jitter = latency.jitterMs ? Math.floor(requireRandom(opts.random)() * latency.jitterMs) : 0;
    return latency.latencyMs + jitter;
  };
  const wakeAll = () => {
    for (const wake of [...waiting]) wake();
  };

  /** Forwards `from` to `to` through a queue: each chunk leaves at max(arrival + delay, previous chunk's departure). */
  function forward(from: net.Socket, to: net.Socket): void {
    const queue: { at: number; chunk: Buffer }[] = [];
    let queued = 0;
    let timer: NodeJS.Timeout | undefined;
    let ended = false;
    let lastAt = 0;
    const flush = () => {
      timer = undefined;
      waiting.delete(flush);
      if (to.destroyed) return;
      if (blackholed()) {
        waiting.add(flush);
        return;
      }
      const now = Date.now();
      while (queue.length > 0 && queue[0].at <= now) {
        const { chunk } = queue.shift()!;
        queued -= chunk.length;
        forwarded += chunk.length;
        to.write(chunk);
      }
      if (queued < HIGH_WATER && from.isPaused()) from.resume();
      if (queue.length > 0) timer = setTimeout(flush, queue[0].at - now);
      else if (ended) to.end();
    };
    from.on("data", (chunk: Buffer) => {
      lastAt = Math.max(Date.now() + delay(), lastAt);
      queue.push({ at: lastAt, chunk });
      queued += chunk.length;
      if (queued >= HIGH_WATER) from.pause();
      if (!timer && !waiting.has(flush)) flush();
    });
    from.on("end", () => {
      ended = true;
      if (!timer && !waiting.has(flush)) flush();
    });
    from.on("close", () => {
      if (timer) clearTimeout(timer);
      waiting.delete(flush);
    });
  }

  const server = net.createServer((client) => {
    const upstream = net.connect({ host: targetHost, port: targetPort });
    const pipe: Pipe = { client, upstream };
    pipes.add(pipe);
    const destroy = () => {
      pipes.delete(pipe);
      client.destroy();
      upstream.destroy();
    };
    client.on("error", destroy);
    upstream.on("error", destroy);
    client.on("close", destroy);
    upstream.on("close", destroy);
    client.setNoDelay(true);
    upstream.setNoDelay(true);
    forward(client, upstream);
    forward(upstream, client);
  });
  await new Promise<void>((resolve, reject) => {
    server.once("error", reject);
    server.listen(opts.port ?? 0, "127.0.0.1", () => resolve());
  });
  const port = (server.address() as net.AddressInfo).port;

  const dropConnections = () => {
    for (const { client, upstream } of [...pipes]) {
      client.destroy();
      upstream.destroy();
    }
    pipes.clear();
  };
  const endBlackhole = () => {
    if (blackholeTimer) clearTimeout(blackholeTimer);
    blackholeTimer = undefined;
    blackholeUntil = 0;
    wakeAll();
  };

  return {
    address: `127.0.0.1:${port}`,
    port,
    target: opts.target,
    setLatency(fault) {
      if (fault.jitterMs) requireRandom(opts.random);
      latency = { ...fault };
    },
    dropConnections,
    blackhole(ms) {
      if (blackholeTimer) clearTimeout(blackholeTimer);
      blackholeUntil = ms === undefined ? Number.MAX_SAFE_INTEGER : Date.now() + ms;
      blackholeTimer = ms === undefined ? undefined : setTimeout(endBlackhole, ms);
    },
    heal() {
      latency = { latencyMs: 0 };
      endBlackhole();
    },
    connections: () => pipes.size,
    forwardedBytes: () => forwarded,
    async close() {
      endBlackhole();
      const closed = new Promise<void>((resolve) => server.close(() => resolve()));
      dropConnections();
      await closed;
    },
  };
}

function requireRandom(random: Random | undefined): Random {
  if (!random) throw new Error("a TCP proxy with jitter needs a seeded random source (options.random)");
  return random;
}
