// The one way a service connects to Redis: it fails fast while disconnected
// (no offline queue, one retry, bounded command and connect times) so callers
// answer UNAVAILABLE at once instead of queueing behind a dead link.
import { Redis } from "ioredis";

export function createRedis(url: string): Redis {
  return new Redis(url, {
    enableAutoPipelining: true,
    maxRetriesPerRequest: 1,
    // Fail fast while disconnected instead of queueing purchases behind a dead link.
    enableOfflineQueue: false,
    commandTimeout: 2000,
    connectTimeout: 2000,
    lazyConnect: true,
  });
}
