// Rebuilding a sale whose Redis state was lost. A sale loaded before (its
// warmed_at is set) and missing from Redis now lost its state to a restart
// without persistence or a flush; one loaded on another Redis server was
// restored from a snapshot or a replica (redis-epoch.ts) and may lack the last
// reservations, so its keys go and it counts as lost too. A lost sale fails
// closed (UNAVAILABLE) until every reservation acknowledged before the loss is
// in Postgres; then its reservation records are written back from Postgres,
// and sale-warmer.ts loads its stock and buyers from there as for any sale.
import type { Knex } from "knex";
import type { JetStreamProgress } from "../common/event-bus.js";
import { overloaded } from "../common/refusal.js";
import * as repo from "./sale-repository.js";
import type { SaleRow } from "./sale-repository.js";
import type { StockStore } from "./stock-store.js";

/** The refusal while a lost sale waits for the stream to drain into Postgres. */
export const REBUILDING = overloaded("the sale is being rebuilt after its Redis state was lost; retry shortly", 1000);

export interface LostSaleRebuildDeps {
  db: Knex;
  stock: Pick<StockStore, "discard" | "live" | "restoreReservations">;
  /** How far reservation events are published and written: see JetStreamProgress. */
  jetstreamProgress: () => Promise<JetStreamProgress>;
}

/**
 * Returns rebuildIfLost(row): for a sale whose Redis state is lost, waits for
 * the drain (throwing REBUILDING until then), restores its reservation records
 * and returns the sale as Postgres holds it now, to be loaded from; any other
 * sale is returned as it is.
 */
export function createLostSaleRebuild(deps: LostSaleRebuildDeps): (row: SaleRow) => Promise<SaleRow> {
  const { db, stock } = deps;
  /** Sales found without their Redis state, and the stream sequence their rebuild waits for. */
  const rebuildMarks = new Map<string, number>();

  async function isLost(row: SaleRow): Promise<boolean> {
    if (row.warmed_at === null) return false;
    await stock.discard(row.id);
    return !(await stock.live(row.id)).warm;
  }

  return async function rebuildIfLost(row: SaleRow): Promise<SaleRow> {
    if (!(await isLost(row))) return row;
    // Every reservation acknowledged before the loss was published before its
    // answer, so it is in the stream by the time the loss is seen: wait until
    // the writer has handled the stream up to that point.
    const progress = await deps.jetstreamProgress();
    let mark = rebuildMarks.get(row.id);
    if (mark === undefined) {
      mark = progress.published;
      rebuildMarks.set(row.id, mark);
    }
    if (!progress.idle && progress.written < mark) throw REBUILDING;
    rebuildMarks.delete(row.id);
    // Re-read: the drained backlog may have moved the sold counter.
    const current = (await repo.findSale(db, row.id)) ?? row;
    const orders = await repo.saleReservations(db, row.id);
    await stock.restoreReservations(
      row.id,
      orders.map((o) => ({
        reservationId: o.id,
        userId: o.user_id,
        requestId: o.request_id,
        quantity: o.quantity,
        reservedAtMs: o.reserved_at.getTime(),
        released: o.released,
      })),
    );
    return current;
  };
}
