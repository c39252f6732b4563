// The one way a process connects to Redis, a single server or a Redis Cluster:
// it fails fast while disconnected (no offline queue, one retry, bounded
// command and connect times) so callers answer UNAVAILABLE at once instead of
// queueing behind a dead link.
import { Cluster, Redis, type RedisOptions } from "ioredis";

/** A connection to one Redis server or to a Redis Cluster: the commands are the same, keyed commands routed by slot. */
export type RedisClient = Redis | Cluster;

/** Where Redis is: a cluster when its seed nodes are given (host:port each), else the one server at url. */
export interface RedisTarget {
  redisUrl: string;
  redisClusterNodes: readonly string[];
}

const FAIL_FAST: RedisOptions = {
  enableAutoPipelining: true,
  maxRetriesPerRequest: 1,
  commandTimeout: 2000,
  connectTimeout: 2000,
};

/** A URL alone is one server; a RedisTarget is a cluster when it names cluster nodes. */
export function createRedis(url: string): Redis;
export function createRedis(target: RedisTarget): RedisClient;
export function createRedis(target: string | RedisTarget): RedisClient {
  const { redisUrl, redisClusterNodes } = typeof target === "string" ? { redisUrl: target, redisClusterNodes: [] } : target;
  if (redisClusterNodes.length === 0) {
    // Fail fast while disconnected instead of queueing purchases behind a dead link.
    return new Redis(redisUrl, { ...FAIL_FAST, enableOfflineQueue: false, lazyConnect: true });
  }
  // The credentials and TLS of REDIS_URL apply to every node of the cluster.
  const url = new URL(redisUrl);
  return new Cluster(redisClusterNodes.map(hostPort), {
    enableAutoPipelining: true,
    enableOfflineQueue: false,
    lazyConnect: true,
    // Writes and reads go to the slot's master: a replica may lag behind it.
    scaleReads: "master",
    // A failover is answered by MOVED (followed at once) or by a dead link until
    // the replica is promoted: retry briefly, then the call fails and is refused.
    retryDelayOnFailover: 200,
    retryDelayOnClusterDown: 200,
    maxRedirections: 6,
    slotsRefreshTimeout: 1000,
    slotsRefreshInterval: 1000,
    // Keep looking for the cluster while none of its nodes answers.
    clusterRetryStrategy: (times) => Math.min(100 * times, 2000),
    redisOptions: {
      ...FAIL_FAST,
      username: decodeURIComponent(url.username) || undefined,
      password: decodeURIComponent(url.password) || undefined,
      tls: url.protocol === "rediss:" ? {} : undefined,
    },
  });
}

/** "host:port" as ioredis names a cluster node. */
function hostPort(node: string): { host: string; port: number } {
  const at = node.lastIndexOf(":");
  return { host: node.slice(0, at).replace(/^\[|\]$/g, ""), port: Number(node.slice(at + 1)) };
}

/** Runs fn on every master of a cluster, or on the one server: for commands that see one node's keys only (SCAN, INFO). */
export async function onEveryMaster<T>(redis: RedisClient, fn: (node: Redis) => Promise<T>): Promise<T[]> {
  return Promise.all((redis instanceof Cluster ? redis.nodes("master") : [redis]).map(fn));
}
