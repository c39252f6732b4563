// Sales in Postgres, written by inventory alone. Each function takes the
// caller's knex (or transaction); the row and its lookup are common/sale-records.ts.
import type { Knex } from "knex";
import type { Cursor } from "../common/page-token.js";
import { findSale, type SaleRow } from "../common/sale-records.js";

export { findSale, type SaleRow, type StoredAccessRules } from "../common/sale-records.js";

export type NewSale = Omit<SaleRow, "sold" | "closed_at" | "created_at" | "warmed_at">;

/** Inserts the sale, or returns the one created earlier with the same request id. */
export async function insertSale(db: Knex, sale: NewSale): Promise<SaleRow> {
  const [inserted] = await db<SaleRow>("sales").insert(sale).onConflict("create_request_id").ignore().returning("*");
  if (inserted) return inserted;
  const existing = await db<SaleRow>("sales").where({ create_request_id: sale.create_request_id }).first();
  if (!existing) throw new Error(`sale with request id ${sale.create_request_id} vanished`);
  return existing;
}

/** Newest first; the cursor is the last row's (created_at, id). */
export async function listSales(db: Knex, limit: number, after?: Cursor): Promise<SaleRow[]> {
  const query = db<SaleRow>("sales")
    .orderBy([
      { column: "created_at", order: "desc" },
      { column: "id", order: "desc" },
    ])
    .limit(limit);
  if (after) query.whereRaw("(created_at, id) < (?, ?)", [after.createdAt, after.id]);
  return query;
}

/** Moves the start to `now` when the sale has not started; returns the sale as it is afterwards. */
export async function openSale(db: Knex, id: string, now: Date): Promise<SaleRow | undefined> {
  await db<SaleRow>("sales").where({ id }).andWhere("starts_at", ">", now).andWhere("ends_at", ">", now).whereNull("closed_at").update({ starts_at: now });
  return findSale(db, id);
}

/** Sets closed_at once; returns the sale as it is afterwards. */
export async function closeSale(db: Knex, id: string, now: Date): Promise<SaleRow | undefined> {
  await db<SaleRow>("sales").where({ id }).whereNull("closed_at").update({ closed_at: now });
  return findSale(db, id);
}

export async function markWarmed(db: Knex, id: string, now: Date): Promise<void> {
  await db<SaleRow>("sales").where({ id }).whereNull("warmed_at").update({ warmed_at: now });
}

/** The sale's orders as Redis records them, so replays of their request ids get the same answer after a rebuild. */
export async function saleReservations(
  db: Knex,
  saleId: string,
): Promise<{ id: string; user_id: string; request_id: string; quantity: number; reserved_at: Date; released: boolean }[]> {
  return db("orders").where({ sale_id: saleId }).select("id", "user_id", "request_id", "quantity", "reserved_at", db.raw("released_at IS NOT NULL AS released"));
}

/**
 * Units counted against each user's limit: those of persisted, unreleased
 * orders, plus those of released ones when the sale's release policy is KEEP
 * (sale_buyers.units: a release decrements it only under RESTORE). What Redis
 * needs to enforce the per-user limit, the same after a rebuild as before.
 */
export async function saleBuyers(db: Knex, saleId: string): Promise<[string, number][]> {
  const rows = await db("sale_buyers").where({ sale_id: saleId }).andWhere("units", ">", 0).select("user_id", "units");
  return rows.map((r: { user_id: string; units: number }) => [r.user_id, r.units]);
}

/** Sales loaded into Redis before that have not ended: the ones whose Redis state must not be lost. */
export async function openWarmedSales(db: Knex, now: Date, limit = 1000): Promise<string[]> {
  const rows = await db<SaleRow>("sales").whereNotNull("warmed_at").whereNull("closed_at").andWhere("ends_at", ">", now).orderBy("starts_at", "desc").limit(limit).select("id");
  return rows.map((r) => r.id);
}

export interface LedgerOrder {
  id: string;
  user_id: string;
  quantity: number;
  released: boolean;
  /** Released more than a minute ago and its stock-released event still not published. */
  release_stuck: boolean;
}

/** Every order of the sale, as reconciling it needs them. */
export async function saleLedger(db: Knex, saleId: string): Promise<LedgerOrder[]> {
  return db("orders")
    .where({ sale_id: saleId })
    .select(
      "id",
      "user_id",
      "quantity",
      db.raw("released_at IS NOT NULL AS released"),
      db.raw("(released_at < now() - interval '1 minute' AND release_published_at IS NULL) AS release_stuck"),
    );
}
