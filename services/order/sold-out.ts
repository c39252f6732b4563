// The sold-out shortcut of PlaceOrder. Once this process has seen a sale sell
// out, almost every buyer is answered SOLD_OUT from memory, before grpc-js
// (handlers.ts) — but never a request id that won a unit: its replay, with or
// without `retry`, goes on to inventory and gets its order back.
//
// Which request ids won is read from Redis once per sell-out seen (the sale's
// request-id hash, which only winners enter): the shortcut answers for a sale
// only once those winners are loaded, as a table of 32-bit hashes (8 bytes a
// winner; a hash shared with a winner costs that buyer the full path, never a
// wrong answer). New winners need stock back, which reaches the
// shortcut two ways: the release notification lifts it at once (before
// inventory can sell the unit again), and a check every REDIS_CHECK_INTERVAL_MS
// drops a sale whose Redis state no longer matches what was loaded (stock
// back, more winners, rebuilt after a Redis loss, ended, gone). A sale that
// ended is dropped too: the shortcut holds only open sold-out sales.
import type { RedisClient } from "../common/redis.js";
import { poll, type Poll } from "../common/poll.js";
import type { Logger } from "../common/log.js";
import { createRedisStockStore, saleKeys } from "../inventory/stock-store.js";
import { errorMessage } from "../common/error-message.js";

/** A sale's winning request ids, as loaded. */
export interface SaleWinners {
  /** Whether this user's request id may have won (false: it certainly did not). */
  has(userId: string, requestId: string): boolean;
  /** Request ids in Redis when loaded. */
  count: number;
  /** The Redis incarnation (run id) the sale was loaded on. */
  epoch: string;
}

/** A sale's Redis state as the shortcut checks it. */
export interface SoldOutState {
  /** Open, no stock left, and loaded on the Redis server now connected. */
  soldOut: boolean;
  /** Request ids that won. */
  count: number;
  epoch: string;
}

/** What the shortcut reads of the sales' Redis state (inventory's keys, read only). */
export interface SoldOutSource {
  /** The sale's winners when Redis holds it open and sold out; undefined when it does not. */
  winners(saleId: string): Promise<SaleWinners | undefined>;
  /** The state of each sale given. */
  states(saleIds: string[]): Promise<Map<string, SoldOutState>>;
}

export interface SoldOutShortcut {
  /** Whether any sale is sold out here (the quick gate decodes nothing otherwise). */
  any(): boolean;
  /** Whether SOLD_OUT can be answered without I/O: the sale is sold out here and this request id did not win. */
  refuses(saleId: string, userId: string, requestId: string): boolean;
  /** A reservation answer reported no stock left: the sale's winners are loaded, then the shortcut answers for it. */
  soldOut(saleId: string): void;
  /** A release seen for the sale: buyers may succeed again. */
  stockReturned(saleId: string): void;
  /** Loads in progress have ended (for tests and shutdown). */
  settled(): Promise<void>;
  stop(): Promise<void>;
}

/**
 * A release is applied by inventory a moment after it is announced: a sell-out
 * reported meanwhile must not bring the shortcut back (the returned unit would
 * be hidden behind it).
 */
const RELEASE_GRACE_MS = 2000;
/** After a failed load, the next one waits this long. */
const LOAD_RETRY_MS = 1000;

/** FNV-1a over UTF-16 code units: of `<user>|<request>` as the hash's field, or of the two parts. */
function fnv(h: number, s: string): number {
  for (let i = 0; i < s.length; i++) h = Math.imul(h ^ s.charCodeAt(i), 0x01000193);
  return h;
}
const FNV_OFFSET = 0x811c9dc5;
const PIPE = "|".charCodeAt(0);
export const fieldHash = (field: string): number => fnv(FNV_OFFSET, field) >>> 0;
export const requestHash = (userId: string, requestId: string): number => fnv(Math.imul(fnv(FNV_OFFSET, userId) ^ PIPE, 0x01000193), requestId) >>> 0;

/**
 * The winners' hashes in an open-addressing table at most half full (8 bytes a
 * winner): a lookup is one or two reads of one cache line, however many
 * winners. 0 marks a free slot, so a hash of 0 is stored as 1 (one more
 * possible false positive, never a missed winner).
 */
export function saleWinners(hashes: Uint32Array, count: number, epoch: string): SaleWinners {
  let bits = 4;
  while (1 << bits < hashes.length * 2) bits++;
  const table = new Uint32Array(1 << bits);
  const mask = table.length - 1;
  const shift = 32 - bits;
  const slot = (h: number) => Math.imul(h, 0x9e3779b1) >>> shift;
  for (const hash of hashes) {
    const h = hash || 1;
    for (let i = slot(h); ; i = (i + 1) & mask) {
      if (table[i] === h) break;
      if (table[i] === 0) {
        table[i] = h;
        break;
      }
    }
  }
  return {
    count,
    epoch,
    has(userId, requestId) {
      const h = requestHash(userId, requestId) || 1;
      for (let i = slot(h); ; i = (i + 1) & mask) {
        const v = table[i];
        if (v === h) return true;
        if (v === 0) return false;
      }
    },
  };
}

export function createSoldOutShortcut(opts: { source: SoldOutSource; log: Logger; checkIntervalMs: number; nowMs?: () => number }): SoldOutShortcut {
  const { source, log } = opts;
  const nowMs = opts.nowMs ?? Date.now;
  /** Sales answered SOLD_OUT here, with their winners. */
  const active = new Map<string, SaleWinners>();
  /** Loads in progress, by sale: a release seen meanwhile discards the result. */
  const loading = new Map<string, Promise<void>>();
  /** Sales whose last load failed: not tried again before this time. */
  const failedUntil = new Map<string, number>();
  /** Sales with a release seen in the last RELEASE_GRACE_MS. */
  const recentlyReleased = new Map<string, number>();
  let loadFailing = false;
  let stopped = false;

  function soldOut(saleId: string): void {
    if (active.has(saleId) || loading.has(saleId) || stopped) return;
    const now = nowMs();
    const released = recentlyReleased.get(saleId);
    if (released !== undefined) {
      if (released > now) return;
      recentlyReleased.delete(saleId);
    }
    if ((failedUntil.get(saleId) ?? 0) > now) return;
    failedUntil.delete(saleId);
    const load: Promise<void> = source.winners(saleId).then(
      (winners) => {
        if (loading.get(saleId) !== load) return; // stock came back meanwhile
        loadFailing = false;
        if (winners) active.set(saleId, winners);
      },
      (error: unknown) => {
        failedUntil.set(saleId, nowMs() + LOAD_RETRY_MS);
        if (!loadFailing) log.warn("sold-out sale's winners not loaded; its buyers take the full path", { saleId, err: errorMessage(error) });
        loadFailing = true;
      },
    );
    loading.set(saleId, load);
    void load.finally(() => {
      if (loading.get(saleId) === load) loading.delete(saleId);
    });
  }

  function stockReturned(saleId: string): void {
    active.delete(saleId);
    loading.delete(saleId);
    const now = nowMs();
    recentlyReleased.set(saleId, now + RELEASE_GRACE_MS);
    if (recentlyReleased.size > 10_000) {
      for (const [id, until] of recentlyReleased) if (until <= now) recentlyReleased.delete(id);
    }
  }

  /** Drops every sale whose Redis state is no longer the one its winners were loaded from. */
  async function check(): Promise<void> {
    if (active.size === 0) return;
    const states = await source.states([...active.keys()]);
    for (const [saleId, winners] of active) {
      const state = states.get(saleId);
      if (!state?.soldOut || state.count !== winners.count || state.epoch !== winners.epoch) active.delete(saleId);
    }
  }

  const checking: Poll = poll(check, opts.checkIntervalMs, log, "sold-out sales not checked in redis");

  return {
    any: () => active.size > 0,
    refuses(saleId, userId, requestId) {
      const winners = active.get(saleId);
      return winners !== undefined && !winners.has(userId, requestId);
    },
    soldOut,
    stockReturned,
    async settled() {
      await Promise.allSettled([...loading.values()]);
    },
    async stop() {
      stopped = true;
      await checking.stop();
      await Promise.allSettled([...loading.values()]);
      active.clear();
    },
  };
}

/**
 * Reads the sales' state as inventory's stock store does (services/inventory/
 * stock-store.ts), on the Redis server holding each sale's keys: one server, or
 * the master of the sale's slot in a cluster.
 */
export function redisSoldOutSource(redis: RedisClient, namespace: string, nowMs: () => number = Date.now): SoldOutSource {
  const stock = createRedisStockStore(redis, namespace);
  const read = async (saleId: string): Promise<SoldOutState> => {
    const [live, count] = await Promise.all([stock.live(saleId), redis.hlen(saleKeys(namespace, saleId).requests)]);
    // As reserve.lua sees it: loaded on the server holding it, not closed, not ended, no stock left.
    const open = live.warm && !(live.closedAtMs > 0) && nowMs() < live.endsAtMs;
    return { soldOut: open && live.warm && live.stockLeft <= 0, count, epoch: live.warm ? live.epoch : "" };
  };
  return {
    async winners(saleId) {
      const state = await read(saleId);
      if (!state.soldOut) return undefined;
      // No request id can win while there is no stock: every winner is in the hash now.
      const hashes: number[] = [];
      let cursor = "0";
      do {
        const [next, flat] = await redis.hscan(saleKeys(namespace, saleId).requests, cursor, "COUNT", 1000);
        for (let i = 0; i < flat.length; i += 2) hashes.push(fieldHash(flat[i]));
        cursor = next;
      } while (cursor !== "0");
      return saleWinners(Uint32Array.from(hashes), state.count, state.epoch);
    },
    async states(saleIds) {
      const states = await Promise.all(saleIds.map(read));
      return new Map(saleIds.map((saleId, i) => [saleId, states[i]]));
    },
  };
}
