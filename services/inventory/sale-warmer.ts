// Warming a sale: loading it into Redis from Postgres (rules, stock left,
// buyers), so that it sells from Redis alone. A sale whose Redis state was
// lost is rebuilt first (lost-sale-rebuild.ts). Every warmed sale is put in
// the sweep index.
import type { Knex } from "knex";
import type { JetStreamProgress } from "../common/event-bus.js";
import { createLostSaleRebuild, REBUILDING } from "./lost-sale-rebuild.js";
import * as repo from "./sale-repository.js";
import type { SaleRow } from "./sale-repository.js";
import { windowOf } from "../common/sale-window.js";
import type { SaleRules, StockStore } from "./stock-store.js";
import type { SweepIndexing } from "./sweep-index.js";

/** How long a "still being rebuilt" verdict answers later callers without looking again. */
export const REBUILD_RECHECK_MS = 200;

export interface SaleWarmerDeps {
  db: Knex;
  stock: Pick<StockStore, "load" | "discard" | "live" | "restoreReservations">;
  sweepIndexing: Pick<SweepIndexing, "indexLoaded">;
  /** How far reservation events are published and written: see JetStreamProgress. */
  jetstreamProgress: () => Promise<JetStreamProgress>;
  now: () => Date;
}

const rulesOf = (row: SaleRow): SaleRules => ({
  ...windowOf(row),
  perUserLimit: row.per_user_limit,
  totalStock: row.total_stock,
  releasePolicy: row.release_policy,
});

export function createSaleWarmer(deps: SaleWarmerDeps) {
  const { db, stock } = deps;
  const rebuildIfLost = createLostSaleRebuild(deps);

  /** Loads the sale unless Redis holds it already; throws REBUILDING while a lost sale waits for its rebuild. */
  async function warm(row: SaleRow): Promise<{ loaded: boolean; stockLeft: number }> {
    row = await rebuildIfLost(row);
    const buyers = await repo.saleBuyers(db, row.id);
    const result = await stock.load(row.id, rulesOf(row), row.total_stock - row.sold, buyers);
    await deps.sweepIndexing.indexLoaded(row.id);
    if (row.warmed_at === null) await repo.markWarmed(db, row.id, deps.now());
    return result;
  }

  /** Warms in progress, by sale; and until when a sale found still being rebuilt is refused without looking again. */
  const warming = new Map<string, Promise<boolean>>();
  const rebuildingUntil = new Map<string, number>();

  /**
   * warm() for requests that found a sale cold (the purchase path, status
   * polls): one at a time per sale, concurrent callers sharing it, and a sale
   * found still being rebuilt refused for REBUILD_RECHECK_MS without another
   * look. While a lost sale waits for its rebuild, every Reserve batch and
   * every waiting buyer's poll would otherwise read Postgres, Redis and
   * JetStream's progress each. False when the sale does not exist.
   */
  function warmOnDemand(saleId: string): Promise<boolean> {
    const nowMs = deps.now().getTime();
    const until = rebuildingUntil.get(saleId);
    if (until !== undefined) {
      if (until > nowMs) return Promise.reject(REBUILDING);
      rebuildingUntil.delete(saleId);
    }
    let pending = warming.get(saleId);
    if (!pending) {
      pending = (async () => {
        const row = await repo.findSale(db, saleId);
        if (!row) return false;
        await warm(row);
        return true;
      })()
        .catch((error: unknown) => {
          if (error === REBUILDING) rebuildingUntil.set(saleId, deps.now().getTime() + REBUILD_RECHECK_MS);
          throw error;
        })
        .finally(() => warming.delete(saleId));
      warming.set(saleId, pending);
    }
    return pending;
  }

  return { warm, warmOnDemand };
}

export type SaleWarmer = ReturnType<typeof createSaleWarmer>;
