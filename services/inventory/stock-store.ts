// Stock in Redis: the admission gate of the purchase path. Each operation is
// one Lua script on the sale's keys, which share a {sale:<id>} hash tag so they
// live on one Redis Cluster slot. ioredis runs the scripts with EVALSHA and
// reloads them transparently after NOSCRIPT (a Redis restart).
import { readFileSync } from "node:fs";
import type { SaleWindow } from "../common/sale-window.js";
import type { RedisClient } from "../common/redis.js";
import { assetPath } from "../common/assets.js";
import type { ReleasePolicyName } from "../common/sale-records.js";
import { saleKeyPrefix, saleRulesKey } from "../common/sale-rules.js";

const lua = (name: string) => readFileSync(assetPath("services", "inventory", "lua", `${name}.lua`), "utf8");

export type ReserveOutcome = "OK" | "REPLAY" | "QUANTITY_OVER_LIMIT" | "SOLD_OUT" | "SALE_NOT_STARTED" | "SALE_ENDED" | "ALREADY_PURCHASED" | "COLD";

export interface ReserveAttempt {
  userId: string;
  requestId: string;
  quantity: number;
  /** Used only if the attempt succeeds. */
  newReservationId: string;
}

export interface ReserveAnswer {
  outcome: ReserveOutcome;
  reservationId: string;
  stockLeft: number;
  reservedAtMs: number;
  /** Units reserved; for QUANTITY_OVER_LIMIT, the sale's per-user limit. */
  quantity: number;
}

export type { ReleasePolicyName } from "../common/sale-records.js";

export interface SaleRules extends SaleWindow {
  perUserLimit: number;
  totalStock: number;
  releasePolicy: ReleasePolicyName;
}

/** What Redis knows of a sale right now: enough to answer GetSaleStatus without Postgres. */
export type LiveSale =
  | { warm: false }
  | ({
      warm: true;
      stockLeft: number;
      totalStock: number;
      /** Run id of the server it was loaded on (redis-epoch.ts). */
      epoch: string;
    } & SaleWindow);

export interface RestoredReservation {
  reservationId: string;
  userId: string;
  requestId: string;
  quantity: number;
  reservedAtMs: number;
  released: boolean;
}

export interface StoredReservation {
  reservationId: string;
  saleId: string;
  userId: string;
  requestId: string;
  quantity: number;
  reservedAtMs: number;
  released: boolean;
}

/**
 * A sale's state where purchases are decided: its rules, stock, buyers and
 * reservation records in Redis.
 */
export interface StockStore {
  reserve(saleId: string, nowMs: number, attempts: ReserveAttempt[]): Promise<ReserveAnswer[]>;
  /**
   * Writes the sale into Redis unless it is there already (load.lua); loaded
   * is false when it was there.
   */
  load(saleId: string, rules: SaleRules, stockLeft: number, buyers: [string, number][]): Promise<{ loaded: boolean; stockLeft: number }>;
  /**
   * Before loading a sale that lost its Redis state: writes back the request ids
   * and reservation records of its orders (idempotent), so a replayed request
   * gets its first answer and a release finds its reservation.
   */
  restoreReservations(saleId: string, records: RestoredReservation[]): Promise<void>;
  setRules(saleId: string, rules: Pick<SaleRules, "startsAtMs">): Promise<boolean>;
  /**
   * Closes the sale where purchases are decided, and returns the close time
   * to record: no reservation is made afterwards, and none carries a later
   * time (the later of nowMs and the latest reservation's). A closed sale
   * keeps its close time. 0 when the sale is not loaded on this Redis server.
   */
  close(saleId: string, nowMs: number): Promise<number>;
  release(saleId: string, reservationId: string): Promise<{ outcome: "RELEASED" | "ALREADY_RELEASED" | "UNKNOWN" | "COLD"; stockLeft: number }>;
  /** Warm only when loaded on the Redis server that holds its keys now (see redis-epoch.ts). */
  live(saleId: string): Promise<LiveSale>;
  /**
   * Deletes every key of the sale when it was loaded on another Redis server
   * (restored from a snapshot or a replica), or always with force; true when
   * something was deleted. The sale then loads from Postgres like a lost one.
   */
  discard(saleId: string, force?: boolean): Promise<boolean>;
  /** Everything Redis holds about the sale, for reconciling it with Postgres. */
  snapshot(saleId: string): Promise<SaleSnapshot>;
  reservation(saleId: string, reservationId: string): Promise<StoredReservation | undefined>;
  /** The reservations' records, in order; undefined where there is none. */
  reservations(saleId: string, reservationIds: string[]): Promise<(StoredReservation | undefined)[]>;
}

export interface SaleSnapshot {
  live: LiveSale;
  /** Units per user, as the per-user limit counts them. */
  buyers: Map<string, number>;
  reservations: StoredReservation[];
  unconfirmed: string[];
}

interface ScriptCommands {
  seckillReserve(...args: (string | number)[]): Promise<(string | number)[]>;
  seckillLoad(...args: (string | number)[]): Promise<[number, number]>;
  seckillSetRules(...args: (string | number)[]): Promise<number>;
  seckillClose(...args: (string | number)[]): Promise<number>;
  seckillRelease(...args: (string | number)[]): Promise<[number, number]>;
  seckillDiscard(...args: (string | number)[]): Promise<number>;
  seckillLive(...args: (string | number)[]): Promise<[number, string | null, string | null, string | null, string | null, string | null, string | null]>;
}

export function saleKeys(namespace: string, saleId: string) {
  const base = saleKeyPrefix(namespace, saleId);
  return {
    rules: saleRulesKey(namespace, saleId),
    stock: `${base}:stock`,
    buyers: `${base}:buyers`,
    requests: `${base}:requests`,
    reservations: `${base}:reservations`,
    released: `${base}:released`,
    unconfirmed: `${base}:unconfirmed`,
  };
}

/**
 * Works on one Redis server or a Redis Cluster alike: each script compares the
 * sale's epoch with the run id of the server it runs on (redis-epoch.ts), so a
 * sale on a restarted server or a promoted replica is never sold from, whatever
 * this client believes about the cluster's topology.
 */
export function createRedisStockStore(redis: RedisClient, namespace: string): StockStore {
  redis.defineCommand("seckillReserve", { numberOfKeys: 6, lua: lua("reserve") });
  redis.defineCommand("seckillLoad", { numberOfKeys: 3, lua: lua("load") });
  redis.defineCommand("seckillSetRules", { numberOfKeys: 1, lua: lua("set-rules") });
  redis.defineCommand("seckillClose", { numberOfKeys: 1, lua: lua("close") });
  redis.defineCommand("seckillRelease", { numberOfKeys: 5, lua: lua("release") });
  redis.defineCommand("seckillDiscard", { numberOfKeys: 7, lua: lua("discard") });
  redis.defineCommand("seckillLive", { numberOfKeys: 2, lua: lua("live") });
  const scripts = redis as unknown as ScriptCommands;
  const keysOf = (saleId: string) => saleKeys(namespace, saleId);

  function parseRecord(saleId: string, reservationId: string, record: string, released: boolean): StoredReservation {
    const [quantity, reservedAtMs, userId, requestId] = record.split("|");
    return { reservationId, saleId, userId, requestId, quantity: Number(quantity), reservedAtMs: Number(reservedAtMs), released };
  }

  async function reservations(saleId: string, reservationIds: string[]): Promise<(StoredReservation | undefined)[]> {
    if (reservationIds.length === 0) return [];
    const k = keysOf(saleId);
    const [records, released] = await Promise.all([redis.hmget(k.reservations, ...reservationIds), redis.smismember(k.released, ...reservationIds)]);
    return reservationIds.map((reservationId, i) => {
      const record = records[i];
      return record ? parseRecord(saleId, reservationId, record, released[i] === 1) : undefined;
    });
  }

  async function live(saleId: string): Promise<LiveSale> {
    const k = keysOf(saleId);
    const [here, starts, ends, closed, total, left, epoch] = await scripts.seckillLive(k.rules, k.stock);
    if (here !== 1) return { warm: false };
    return {
      warm: true,
      stockLeft: Number(left ?? 0),
      totalStock: Number(total),
      startsAtMs: Number(starts),
      endsAtMs: Number(ends),
      closedAtMs: Number(closed ?? 0),
      epoch: epoch ?? "",
    };
  }

  return {
    async reserve(saleId, nowMs, attempts) {
      const k = keysOf(saleId);
      const args: (string | number)[] = [k.rules, k.stock, k.buyers, k.requests, k.reservations, k.unconfirmed, nowMs];
      for (const a of attempts) args.push(a.userId, a.requestId, a.quantity, a.newReservationId);
      const flat = await scripts.seckillReserve(...args);
      const answers: ReserveAnswer[] = [];
      for (let i = 0; i < flat.length; i += 5) {
        answers.push({
          outcome: flat[i] as ReserveOutcome,
          reservationId: flat[i + 1] as string,
          stockLeft: Number(flat[i + 2]),
          reservedAtMs: Number(flat[i + 3]),
          quantity: Number(flat[i + 4]),
        });
      }
      return answers;
    },

    async restoreReservations(saleId, records) {
      const k = keysOf(saleId);
      for (let i = 0; i < records.length; i += 1000) {
        const pipeline = redis.pipeline();
        for (const r of records.slice(i, i + 1000)) {
          pipeline.hset(k.requests, `${r.userId}|${r.requestId}`, r.reservationId);
          pipeline.hset(k.reservations, r.reservationId, `${r.quantity}|${r.reservedAtMs}|${r.userId}|${r.requestId}`);
          if (r.released) pipeline.sadd(k.released, r.reservationId);
        }
        await pipeline.exec();
      }
    },

    async load(saleId, rules, stockLeft, buyers) {
      const k = keysOf(saleId);
      const args: (string | number)[] = [k.rules, k.stock, k.buyers];
      args.push(rules.startsAtMs, rules.endsAtMs, rules.perUserLimit, rules.closedAtMs, rules.totalStock, stockLeft, rules.releasePolicy);
      for (const [user, units] of buyers) args.push(user, units);
      const [loaded, left] = await scripts.seckillLoad(...args);
      return { loaded: loaded === 1, stockLeft: Number(left) };
    },

    async setRules(saleId, rules) {
      return (await scripts.seckillSetRules(keysOf(saleId).rules, "starts", rules.startsAtMs)) === 1;
    },

    async close(saleId, nowMs) {
      return Number(await scripts.seckillClose(keysOf(saleId).rules, nowMs));
    },

    async release(saleId, reservationId) {
      const k = keysOf(saleId);
      const [code, left] = await scripts.seckillRelease(k.rules, k.stock, k.buyers, k.reservations, k.released, reservationId);
      const outcome = code === 1 ? "RELEASED" : code === 0 ? "ALREADY_RELEASED" : code === -1 ? "UNKNOWN" : "COLD";
      return { outcome, stockLeft: Number(left) };
    },

    live,

    async discard(saleId, force = false) {
      const k = keysOf(saleId);
      const keys = [k.rules, k.stock, k.buyers, k.requests, k.reservations, k.released, k.unconfirmed];
      return (await scripts.seckillDiscard(...keys, force ? "force" : "stale")) === 1;
    },

    async snapshot(saleId) {
      const k = keysOf(saleId);
      const [state, buyers, records, released, unconfirmed] = await Promise.all([
        live(saleId),
        redis.hgetall(k.buyers),
        redis.hgetall(k.reservations),
        redis.smembers(k.released),
        redis.zrange(k.unconfirmed, 0, -1),
      ]);
      const releasedSet = new Set(released);
      return {
        live: state,
        buyers: new Map(Object.entries(buyers).map(([user, units]) => [user, Number(units)])),
        reservations: Object.entries(records).map(([id, record]) => parseRecord(saleId, id, record, releasedSet.has(id))),
        unconfirmed,
      };
    },

    async reservation(saleId, reservationId) {
      const [found] = await reservations(saleId, [reservationId]);
      return found;
    },

    reservations,
  };
}
