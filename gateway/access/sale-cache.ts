// The sales the gateway reads to issue tokens, from Postgres through a small
// in-process cache: a flash sale's buyers all ask about the same sale in the
// same second, and one query a second per sale (and per gateway) is plenty.
// Unknown sales are cached too, so made-up ids cannot hammer Postgres.
//
// A read that fails or hangs (Postgres down, restarting, paused, cut off)
// does not stop the sale: the last value read within staleMs is served
// instead — at once when the read fails, after STALE_AFTER_MS when it has not
// answered — and the sale is read again a ttlMs later. The purchase path itself rides out a Postgres outage (orders
// wait in JetStream), so token issuance must not be the part that stops it.
// What a stale read can get wrong is caught later anyway (inventory refuses
// a closed, ended or sold-out sale), except eligibility rules changed during
// the outage, which take effect when Postgres answers again. With nothing to
// fall back on, the failure is the answer for FAILED_READ_TTL_MS, so a crowd
// does not become one query per request.
import { setTimeout as sleep } from "node:timers/promises";
import type { Knex } from "knex";
import { findSale, type SaleRow } from "../../services/common/sale-records.js";
import { eligibilityRulesOf, type EligibilityRules } from "./eligibility.js";

export interface CachedSale {
  row: SaleRow;
  rules: EligibilityRules;
}

export interface SaleCache {
  /** undefined when there is no such sale. */
  get(saleId: string): Promise<CachedSale | undefined>;
}

/** How long a failed read with no earlier value to serve is the answer, without reading again (from the read's start). */
export const FAILED_READ_TTL_MS = 200;
/** How long a read may take, when an earlier one can be served, before that one is served instead. */
export const STALE_AFTER_MS = 250;

export interface SaleCacheOptions {
  /** How long a read is used before the sale is read again. */
  ttlMs: number;
  /** How old a successful read may be and still be served when a new read fails. */
  staleMs: number;
  maxEntries: number;
  nowMs: () => number;
}

interface Entry {
  /** When the read behind `value` started, and how long it answers. */
  at: number;
  ttl: number;
  value: Promise<CachedSale | undefined>;
  /** The last successful read (its time and result): what a failed read falls back on. */
  good?: { at: number; sale: CachedSale | undefined };
}

export function createSaleCache(db: Knex, opts: SaleCacheOptions): SaleCache {
  const entries = new Map<string, Entry>();

  /** Drops expired entries, keeping those whose last good read can still be served in an outage; all of them if that is not enough. */
  function makeRoom(now: number): void {
    if (entries.size < opts.maxEntries) return;
    for (const [id, entry] of entries) {
      if (now - entry.at >= entry.ttl && !(entry.good && now - entry.good.at <= opts.staleMs)) entries.delete(id);
    }
    if (entries.size >= opts.maxEntries) entries.clear();
  }

  return {
    get(saleId) {
      const now = opts.nowMs();
      const hit = entries.get(saleId);
      if (hit && now - hit.at < hit.ttl) return hit.value;
      makeRoom(now);
      const good = hit?.good && now - hit.good.at <= opts.staleMs ? hit.good : undefined;
      const entry: Entry = { at: now, ttl: opts.ttlMs, good, value: Promise.resolve(undefined) };
      const read = findSale(db, saleId).then(
        (row) => {
          const sale = row ? { row, rules: eligibilityRulesOf(row.access_rules) } : undefined;
          entry.good = { at: now, sale };
          return sale;
        },
        (error: unknown) => {
          if (good) return good.sale;
          entry.ttl = Math.min(opts.ttlMs, FAILED_READ_TTL_MS);
          throw error;
        },
      );
      // The timer does not hold the process open.
      entry.value = good ? Promise.race([read, sleep(STALE_AFTER_MS, good.sale, { ref: false })]) : read;
      entries.set(saleId, entry);
      return entry.value;
    },
  };
}
