// Which incarnation of the Redis server holds the stock. Every sale loaded into
// Redis records the run id of the server it was loaded on (the rules hash's
// `epoch` field). Redis picks a new run id at every start, and a failover lands
// on another server with its own: a sale whose epoch is not the server's run id
// now came back from a snapshot or a replica, may lack the last reservations,
// and is never sold from (the scripts answer COLD; lost-sale-rebuild.ts rebuilds
// it from Postgres once the queue has drained).
//
// The run id is read on every (re)connection before anything is reserved: a
// restart drops the connection, and until the new connection's run id is known
// current() is undefined and reservations are refused with UNAVAILABLE.
import type { Redis } from "ioredis";
import type { Logger } from "../common/log.js";

export interface RedisEpoch {
  /** The connected server's run id; undefined while (re)connecting. */
  current(): string | undefined;
  /** Called when a reconnection finds a different server (a restart or a failover). */
  onChange(listener: (runId: string) => void): void;
}

export function parseRunId(info: string): string | undefined {
  return /^run_id:([0-9a-f]+)\r?$/m.exec(info)?.[1];
}

/** Reads the run id now (the connection must be ready), then follows reconnections. */
export async function trackRedisEpoch(redis: Redis, log: Logger): Promise<RedisEpoch> {
  let current: string | undefined;
  let known: string | undefined;
  const listeners: ((runId: string) => void)[] = [];

  async function refresh(): Promise<void> {
    const runId = parseRunId(await redis.info("server"));
    if (!runId) throw new Error("Redis INFO has no run_id");
    current = runId;
    if (known !== undefined && known !== runId) {
      log.warn("redis server changed (restart or failover): its sales are rebuilt from Postgres", { previous: known, runId });
      for (const listener of listeners) listener(runId);
    }
    known = runId;
  }

  redis.on("close", () => (current = undefined));
  // Until the run id is known, nothing is reserved: keep asking while the connection lasts.
  const refreshWhileReady = () => {
    refresh().catch((err) => {
      log.warn("could not read the redis run id; retrying", { err: err.message });
      setTimeout(() => redis.status === "ready" && current === undefined && refreshWhileReady(), 500).unref();
    });
  };
  redis.on("ready", refreshWhileReady);
  await refresh();
  return {
    current: () => current,
    onChange: (listener) => void listeners.push(listener),
  };
}
