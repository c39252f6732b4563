// The distributed engines a test file can run its stack on: a Redis Cluster
// (three masters with a replica each) and a three-node NATS JetStream cluster
// on loopback ports (tools/stack/redis-cluster.ts, nats-cluster.ts), their
// files in a temporary directory of their own, and the settings that point
// startTestStack at them. Started once per file, in beforeAll.
import { mkdtemp, rm } from "node:fs/promises";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { startNatsCluster, type NatsCluster } from "../../tools/stack/nats-cluster.js";
import { startRedisCluster, type RedisCluster } from "../../tools/stack/redis-cluster.js";

export interface Clusters {
  /** The Redis Cluster, when asked for. */
  redis?: RedisCluster;
  /** The NATS cluster, when asked for. */
  nats?: NatsCluster;
  /** REDIS_CLUSTER_NODES, and NATS_URL with JETSTREAM_REPLICAS=3, for what was started. */
  overrides: Record<string, string>;
  /** Stops every node and removes their files. */
  stop(): Promise<void>;
}

/** Starting both, side by side, takes a few seconds; a loaded machine may need many more. */
export const CLUSTERS_START_MS = 90_000;

export async function startClusters(which: { redis?: boolean; nats?: boolean } = { redis: true, nats: true }): Promise<Clusters> {
  const dir = await mkdtemp(join(tmpdir(), "seckill-clusters-"));
  const [redis, nats] = await Promise.allSettled([
    which.redis ? startRedisCluster({ stateDir: join(dir, "redis") }) : undefined,
    which.nats ? startNatsCluster({ stateDir: join(dir, "nats") }) : undefined,
  ]);
  const started = { redis: redis.status === "fulfilled" ? redis.value : undefined, nats: nats.status === "fulfilled" ? nats.value : undefined };
  const stop = async () => {
    await Promise.all([started.redis?.stop(), started.nats?.stop()]);
    await rm(dir, { recursive: true, force: true });
  };
  const failed = [redis, nats].find((r) => r.status === "rejected");
  if (failed) {
    await stop();
    throw failed.reason;
  }
  const overrides: Record<string, string> = {};
  if (started.redis) overrides.REDIS_CLUSTER_NODES = started.redis.nodes.join(",");
  if (started.nats) Object.assign(overrides, { NATS_URL: started.nats.url, JETSTREAM_REPLICAS: "3" });
  return { ...started, overrides, stop };
}
