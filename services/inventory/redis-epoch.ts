// Which incarnation of a Redis server holds a sale's stock. Every sale loaded
// into Redis records the run id of the server it was loaded on (the rules
// hash's `epoch` field, written by load.lua). Redis picks a new run id at every
// start, and a failover lands on another server with its own: in a cluster, the
// replica promoted to master of a sale's slot has its own run id and, since
// replication is asynchronous, may lack the last reservations. A sale whose
// epoch is not the run id of the server holding its keys now is never sold
// from: every script compares the two on the server it runs on (the scripts
// answer COLD; lost-sale-rebuild.ts rebuilds the sale from Postgres once the
// queue has drained).
//
// This tracker only hastens the rebuild: it follows the run ids of the server
// (or of every cluster master) and reports a change, so that the open sales are
// looked at once (redis-loss-watch.ts) instead of at the next periodic check.
import { Cluster } from "ioredis";
import { errorMessage } from "../common/error-message.js";
import type { Logger } from "../common/log.js";
import { onEveryMaster, type RedisClient } from "../common/redis.js";

export interface RedisEpoch {
  /** The run ids of the server, or of every master of the cluster, as last read. */
  current(): ReadonlySet<string>;
  /** Called when the server or a cluster master is another incarnation than before (a restart or a failover). */
  onChange(listener: (runIds: ReadonlySet<string>) => void): void;
}

export function parseRunId(info: string): string | undefined {
  return /^run_id:([0-9a-f]+)\r?$/m.exec(info)?.[1];
}

/** Reads the run ids now (the connection must be ready), then follows reconnections and cluster topology changes. */
export async function trackRedisEpoch(redis: RedisClient, log: Logger): Promise<RedisEpoch> {
  let known = new Set<string>();
  const listeners: ((runIds: ReadonlySet<string>) => void)[] = [];

  async function refresh(): Promise<void> {
    const runIds = await onEveryMaster(redis, async (node) => {
      const runId = parseRunId(await node.info("server"));
      if (!runId) throw new Error("Redis INFO has no run_id");
      return runId;
    });
    const now = new Set(runIds);
    const changed = known.size > 0 && [...now].some((runId) => !known.has(runId));
    known = now;
    if (changed) {
      log.warn("redis server changed (restart or failover): its sales are rebuilt from Postgres", { runIds: [...now] });
      for (const listener of listeners) listener(now);
    }
  }

  const refreshSoon = () => {
    refresh().catch((error) => log.warn("could not read the redis run ids; read again at the next change", { err: errorMessage(error) }));
  };
  redis.on("ready", refreshSoon);
  // A cluster client refreshes its slots map periodically and after a MOVED: a promoted replica shows up there.
  if (redis instanceof Cluster) redis.on("refresh", refreshSoon);
  await refresh();
  return {
    current: () => known,
    onChange: (listener) => void listeners.push(listener),
  };
}
