// The counters already over their limit, remembered in process until their
// window ends (envoyproxy/ratelimit's local cache). A counter past its limit
// stays past it for the rest of its window, so such a descriptor is answered
// OVER_LIMIT without a Redis round trip; in a flash sale most calls are. Bounded:
// when full, the entry remembered first is forgotten first (it is refused by
// Redis again, and remembered again).

export interface OverLimitCache {
  /** Whether the counter is known to be over its limit at nowMs. */
  has(counterKey: string, nowMs: number): boolean;
  /** Remembers the counter as over its limit until its window ends. */
  add(counterKey: string, windowEndMs: number): void;
  readonly size: number;
}

/** maxKeys 0 remembers nothing: every check goes to Redis. */
export function createOverLimitCache(maxKeys: number): OverLimitCache {
  // Insertion order is the order of eviction.
  const windowEnds = new Map<string, number>();
  return {
    has(counterKey, nowMs) {
      const end = windowEnds.get(counterKey);
      if (end === undefined) return false;
      if (nowMs < end) return true;
      windowEnds.delete(counterKey);
      return false;
    },
    add(counterKey, windowEndMs) {
      if (maxKeys === 0) return;
      windowEnds.delete(counterKey);
      while (windowEnds.size >= maxKeys) windowEnds.delete(windowEnds.keys().next().value as string);
      windowEnds.set(counterKey, windowEndMs);
    },
    get size() {
      return windowEnds.size;
    },
  };
}
