// A sale's rules in Redis: the hash inventory writes when it loads a sale
// (inventory/lua/load.lua: `starts`, `ends`, `closed`, …) and closes it
// (close.lua), and the gateway reads to stop a closed sale's purchases at the
// edge. Its key, and what its `closed` and `ends` fields mean to a reader, are
// defined here only, so the two sides cannot drift apart.
import type { Cluster, Redis } from "ioredis";

/** The prefix of every key of one sale: the {sale:<id>} hash tag keeps them on one Redis Cluster slot, as its scripts need. */
export const saleKeyPrefix = (namespace: string, saleId: string): string => `${namespace}:{sale:${saleId}}`;

/** The rules hash; its presence marks the sale as loaded (warm). */
export const saleRulesKey = (namespace: string, saleId: string): string => `${saleKeyPrefix(namespace, saleId)}:rules`;

/**
 * Whether a sale no longer takes purchases, from its `closed` (close time in
 * ms, 0 while open) and `ends` (end in ms) fields; a sale Redis does not hold
 * is not judged (false).
 */
export function isSaleOver(closed: string | null, ends: string | null, nowMs: number): boolean {
  return Number(closed ?? 0) > 0 || (ends !== null && nowMs >= Number(ends));
}

/** Reads whether the sale is over (one HMGET on its own key, so it works on a single Redis or a Cluster). */
export async function readSaleOver(redis: Redis | Cluster, namespace: string, saleId: string, nowMs: number): Promise<boolean> {
  const [closed, ends] = await redis.hmget(saleRulesKey(namespace, saleId), "closed", "ends");
  return isSaleOver(closed ?? null, ends ?? null, nowMs);
}
