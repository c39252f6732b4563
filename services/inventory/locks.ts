// Locks shared by the inventory replicas (one sweeper at a time): a Redis key
// per lock, held by a random token until it expires or is given back.
import type { RedisClient } from "../common/redis.js";

export interface Locks {
  /** SET NX PX on a global lock key; true when this token holds it now. */
  tryLock(name: string, token: string, ttlMs: number): Promise<boolean>;
  /** Deletes the lock if this token still holds it. */
  unlock(name: string, token: string): Promise<void>;
}

const UNLOCK_LUA = "if redis.call('GET', KEYS[1]) == ARGV[1] then return redis.call('DEL', KEYS[1]) end return 0";

export function createRedisLocks(redis: RedisClient, namespace: string): Locks {
  const keyOf = (name: string) => `${namespace}:lock:${name}`;
  return {
    async tryLock(name, token, ttlMs) {
      return (await redis.set(keyOf(name), token, "PX", ttlMs, "NX")) === "OK";
    },

    async unlock(name, token) {
      await redis.eval(UNLOCK_LUA, 1, keyOf(name), token);
    },
  };
}
