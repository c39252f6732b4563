// What the sweeper (sweeper.ts) visits: the sales that may hold reservations
// without an order, and in each the reservations not yet confirmed (the sale's
// `unconfirmed` sorted set, which reserve.lua fills). The set of sales is one
// global key, written outside the per-sale scripts so that they stay on one
// cluster slot.
import type { RedisClient } from "../common/redis.js";
import type { Logger } from "../common/log.js";
import { errorMessage } from "../common/error-message.js";
import { saleKeys, type ReserveAnswer } from "./stock-store.js";

export interface SweepIndex {
  addSale(saleId: string): Promise<void>;
  removeSale(saleId: string): Promise<void>;
  sales(): Promise<string[]>;
  /** Reservations in the sale's unconfirmed set due by dueMs (score <= dueMs), earliest first, with their scores. */
  unconfirmed(saleId: string, dueMs: number, limit: number): Promise<{ reservationId: string; dueMs: number }[]>;
  unconfirmedCount(saleId: string): Promise<number>;
  /** Removes reservations from the unconfirmed set (their order is in Postgres, or they are settled otherwise). */
  confirm(saleId: string, reservationIds: string[]): Promise<void>;
  /** Moves reservations still in the unconfirmed set to score atMs (looked at again later). */
  deferUnconfirmed(saleId: string, reservationIds: string[], atMs: number): Promise<void>;
}

export function createRedisSweepIndex(redis: RedisClient, namespace: string): SweepIndex {
  const salesKey = `${namespace}:sales-warm`;
  const unconfirmedKey = (saleId: string) => saleKeys(namespace, saleId).unconfirmed;
  return {
    async addSale(saleId) {
      await redis.sadd(salesKey, saleId);
    },

    async removeSale(saleId) {
      await redis.srem(salesKey, saleId);
    },

    sales: () => redis.smembers(salesKey),

    async unconfirmed(saleId, dueMs, limit) {
      const flat = await redis.zrangebyscore(unconfirmedKey(saleId), "-inf", dueMs, "WITHSCORES", "LIMIT", 0, limit);
      const due: { reservationId: string; dueMs: number }[] = [];
      for (let i = 0; i < flat.length; i += 2) due.push({ reservationId: flat[i], dueMs: Number(flat[i + 1]) });
      return due;
    },

    unconfirmedCount: (saleId) => redis.zcard(unconfirmedKey(saleId)),

    async confirm(saleId, reservationIds) {
      if (reservationIds.length > 0) await redis.zrem(unconfirmedKey(saleId), ...reservationIds);
    },

    async deferUnconfirmed(saleId, reservationIds, atMs) {
      if (reservationIds.length === 0) return;
      const args: (string | number)[] = [];
      for (const id of reservationIds) args.push(atMs, id);
      await redis.zadd(unconfirmedKey(saleId), "XX", ...args);
    },
  };
}

/** The two steps that put a sale in the sweep index: loading it, and reserving from it. */
export interface SweepIndexing {
  /** After the sale is loaded into Redis (whether or not this load wrote it). */
  indexLoaded(saleId: string): Promise<void>;
  /** After a reserve: a sale that made a reservation is in the index (looked up once per sale by this process). */
  indexReserved(saleId: string, answers: ReserveAnswer[]): Promise<void>;
}

/**
 * A failure to index is logged, not thrown: the purchase stands, and the sale
 * is indexed again on its next load or reservation.
 */
export function sweepIndexing(index: Pick<SweepIndex, "addSale">, log: Logger): SweepIndexing {
  const indexed = new Set<string>();
  const add = async (saleId: string) => {
    try {
      await index.addSale(saleId);
      if (indexed.size >= 10_000) indexed.clear();
      indexed.add(saleId);
    } catch (error) {
      log.warn("could not add the sale to the sweep index", { saleId, err: errorMessage(error) });
    }
  };
  return {
    indexLoaded: add,
    async indexReserved(saleId, answers) {
      if (!indexed.has(saleId) && answers.some((a) => a.outcome === "OK")) await add(saleId);
    },
  };
}
