// Start-up waits for its dependencies instead of exiting when one is not there
// yet (a service restarted while Postgres restarts, a pod that starts before
// Redis): each first connection is retried with backoff for STARTUP_TIMEOUT_MS,
// logged once, and start-up fails with the last error only after that. An
// error that is not a dependency being unreachable (bad credentials, a missing
// database) fails at once.
import { setTimeout as sleep } from "node:timers/promises";
import type { RedisClient } from "./redis.js";
import { isDependencyFailure } from "./dependency-errors.js";
import type { Logger } from "./log.js";
import { errorMessage } from "./error-message.js";

export interface StartupOptions {
  timeoutMs: number;
  log: Logger;
}

const FIRST_DELAY_MS = 200;
const MAX_DELAY_MS = 2000;

/** Runs attempt until it succeeds, retrying dependency failures until the start-up timeout. */
export async function untilReachable<T>(what: string, attempt: () => Promise<T>, o: StartupOptions): Promise<T> {
  const deadline = Date.now() + o.timeoutMs;
  let delay = FIRST_DELAY_MS;
  let waiting = false;
  for (;;) {
    try {
      const result = await attempt();
      if (waiting) o.log.info(`${what} reachable`);
      return result;
    } catch (error) {
      if (!isDependencyFailure(error) || Date.now() + delay > deadline) throw error;
      if (!waiting) o.log.warn(`waiting for ${what}`, { err: errorMessage(error), timeoutMs: o.timeoutMs });
      waiting = true;
      await sleep(delay);
      delay = Math.min(delay * 2, MAX_DELAY_MS);
    }
  }
}

/** Connects a lazyConnect ioredis client and waits until it is ready (ioredis itself keeps reconnecting meanwhile). */
export async function redisReady(redis: RedisClient, o: StartupOptions): Promise<void> {
  if (redis.status === "wait") redis.connect().catch(() => undefined);
  await untilReachable(
    "redis",
    () =>
      redis.status === "ready"
        ? Promise.resolve()
        : new Promise<void>((resolve, reject) => {
            const timer = setTimeout(() => {
              redis.off("ready", ready);
              reject(new Error("Connection is closed."));
            }, 500);
            const ready = () => {
              clearTimeout(timer);
              resolve();
            };
            redis.once("ready", ready);
          }),
    o,
  );
}
