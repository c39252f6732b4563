// The sales the gateway reads to issue tokens, from Postgres through a small
// in-process cache: a flash sale's buyers all ask about the same sale in the
// same second, and one query a second per sale (and per gateway) is plenty.
// Unknown sales are cached too, so made-up ids cannot hammer Postgres.
import type { Knex } from "knex";
import { findSale, type SaleRow } from "../../services/inventory/sale-repository.js";
import { eligibilityRulesOf, type EligibilityRules } from "./eligibility.js";

export interface CachedSale {
  row: SaleRow;
  rules: EligibilityRules;
}

export interface SaleCache {
  /** undefined when there is no such sale. */
  get(saleId: string): Promise<CachedSale | undefined>;
}

export function createSaleCache(db: Knex, opts: { ttlMs: number; maxEntries: number; nowMs: () => number }): SaleCache {
  const entries = new Map<string, { at: number; value: Promise<CachedSale | undefined> }>();
  return {
    get(saleId) {
      const now = opts.nowMs();
      const hit = entries.get(saleId);
      if (hit && now - hit.at < opts.ttlMs) return hit.value;
      if (entries.size >= opts.maxEntries) {
        for (const [id, entry] of entries) if (now - entry.at >= opts.ttlMs) entries.delete(id);
        if (entries.size >= opts.maxEntries) entries.clear();
      }
      const value = findSale(db, saleId).then((row) => (row ? { row, rules: eligibilityRulesOf(row.access_rules) } : undefined));
      entries.set(saleId, { at: now, value });
      // A failed read is not remembered: the next call tries again.
      value.catch(() => {
        if (entries.get(saleId)?.value === value) entries.delete(saleId);
      });
      return value;
    },
  };
}
