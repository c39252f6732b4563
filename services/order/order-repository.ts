// Orders in Postgres. Each function takes the caller's knex or transaction.
import type { Knex } from "knex";
import type { Cursor } from "../common/page-token.js";

export type PersistedStatus = "CREATED" | "PAID" | "CANCELLED" | "EXPIRED";

export interface OrderRow {
  id: string;
  sale_id: string;
  user_id: string;
  request_id: string;
  quantity: number;
  status: PersistedStatus;
  unit_price_minor: number;
  currency: string;
  reserved_at: Date;
  created_at: Date;
  pay_by: Date;
  updated_at: Date;
  paid_at: Date | null;
  payment_reference: string | null;
  pay_request_id: string | null;
  released_at: Date | null;
  /** When the StockReleased event of a CANCELLED or EXPIRED order was acknowledged by JetStream. */
  release_published_at: Date | null;
}

export interface ReservationToPersist {
  reservationId: string;
  saleId: string;
  userId: string;
  requestId: string;
  quantity: number;
  reservedAt: Date;
}

export class OversellRefused extends Error {
  constructor(readonly saleIds: string[]) {
    super(`Postgres refused orders beyond the stock of sale(s) ${saleIds.join(", ")}`);
  }
}

/** An order the writer has just inserted: what its status notification needs. */
export interface InsertedOrder {
  id: string;
  sale_id: string;
  user_id: string;
}

/**
 * Persists a batch of reservations in one statement: inserts the orders
 * (a reservation already stored is skipped), adds each sale's new units to its
 * sold counter only where `sold + k <= total_stock`, and adds each buyer's units
 * to sale_buyers (a CHECK holds the per-user limit; under a KEEP release policy
 * the units of the buyer's released orders are still counted there, see
 * markReleased, so they count against the limit too). Throws OversellRefused when a sale's
 * counter would pass its stock; the caller's transaction then rolls back.
 * Returns the orders inserted now.
 */
export async function persistReservations(trx: Knex.Transaction, batch: ReservationToPersist[]): Promise<InsertedOrder[]> {
  const result = await trx.raw(
    `
    WITH incoming AS (
      SELECT * FROM unnest(?::text[], ?::text[], ?::text[], ?::text[], ?::int[], ?::timestamptz[])
        AS t(id, sale_id, user_id, request_id, quantity, reserved_at)
    ), inserted AS (
      INSERT INTO orders (id, sale_id, user_id, request_id, quantity, status, unit_price_minor, currency, reserved_at, pay_by)
      SELECT i.id, i.sale_id, i.user_id, i.request_id, i.quantity, 'CREATED', s.price_minor, s.currency, i.reserved_at,
             i.reserved_at + make_interval(secs => s.payment_window_seconds)
        FROM incoming i JOIN sales s ON s.id = i.sale_id
      ON CONFLICT DO NOTHING
      RETURNING id, sale_id, user_id, quantity
    ), per_sale AS (
      SELECT sale_id, sum(quantity)::int AS units FROM inserted GROUP BY sale_id
    ), counted AS (
      UPDATE sales s SET sold = s.sold + p.units
        FROM per_sale p
       WHERE s.id = p.sale_id AND s.sold + p.units <= s.total_stock
      RETURNING s.id
    ), buyers AS (
      INSERT INTO sale_buyers (sale_id, user_id, units, per_user_limit)
      SELECT i.sale_id, i.user_id, sum(i.quantity)::int, min(s.per_user_limit)
        FROM inserted i JOIN sales s ON s.id = i.sale_id
       GROUP BY i.sale_id, i.user_id
      ON CONFLICT (sale_id, user_id) DO UPDATE SET units = sale_buyers.units + excluded.units
    )
    -- Data-modifying CTEs run to completion whether or not this reads them.
    SELECT i.id, i.sale_id, i.user_id,
           (SELECT array_agg(p.sale_id) FROM per_sale p WHERE p.sale_id NOT IN (SELECT id FROM counted)) AS refused
      FROM inserted i
    `,
    [
      batch.map((r) => r.reservationId),
      batch.map((r) => r.saleId),
      batch.map((r) => r.userId),
      batch.map((r) => r.requestId),
      batch.map((r) => r.quantity),
      batch.map((r) => r.reservedAt.toISOString()),
    ],
  );
  const rows = result.rows as (InsertedOrder & { refused: string[] | null })[];
  const refused = rows[0]?.refused;
  if (refused && refused.length > 0) throw new OversellRefused(refused);
  return rows.map(({ id, sale_id, user_id }) => ({ id, sale_id, user_id }));
}

/** Which of these order ids are stored. */
export async function existingOrderIds(db: Knex, ids: string[]): Promise<Set<string>> {
  const rows = await db("orders").whereIn("id", ids).select("id");
  return new Set(rows.map((r: { id: string }) => r.id));
}

/** Which of these sale ids exist. */
export async function existingSaleIds(db: Knex, ids: string[]): Promise<Set<string>> {
  const rows = await db("sales")
    .whereIn("id", [...new Set(ids)])
    .select("id");
  return new Set(rows.map((r: { id: string }) => r.id));
}

export async function findOrder(db: Knex, id: string): Promise<OrderRow | undefined> {
  return db<OrderRow>("orders").where({ id }).first();
}

/** The user's orders, newest first; the cursor is the last row's (created_at, id). */
export async function listOrders(db: Knex, userId: string, limit: number, opts: { saleId?: string; after?: Cursor }): Promise<OrderRow[]> {
  const query = db<OrderRow>("orders")
    .where({ user_id: userId })
    .orderBy([
      { column: "created_at", order: "desc" },
      { column: "id", order: "desc" },
    ])
    .limit(limit);
  if (opts.saleId) query.andWhere({ sale_id: opts.saleId });
  if (opts.after) query.andWhereRaw("(created_at, id) < (?, ?)", [opts.after.createdAt, opts.after.id]);
  return query;
}

/** CREATED → PAID before pay_by; undefined when the guard did not match. */
export async function markPaid(db: Knex, id: string, userId: string, payment: { reference: string; requestId: string }, now: Date): Promise<OrderRow | undefined> {
  const [row] = await db<OrderRow>("orders")
    .where({ id, user_id: userId, status: "CREATED" })
    .andWhere("pay_by", ">", now)
    .update({ status: "PAID", paid_at: now, payment_reference: payment.reference, pay_request_id: payment.requestId, updated_at: now })
    .returning("*");
  return row;
}

/**
 * CREATED → CANCELLED or EXPIRED, leaving release_published_at NULL (the
 * release outbox: the event is published after commit), returning the units to the sale and the buyer
 * in the same transaction; undefined when the guard did not match. The buyer's
 * units (sale_buyers) go down only when the sale's release policy is RESTORE:
 * under KEEP they stay counted against the per-user limit.
 */
export async function markReleased(trx: Knex.Transaction, id: string, status: "CANCELLED" | "EXPIRED", guard: { userId?: string }, now: Date): Promise<OrderRow | undefined> {
  const query = trx<OrderRow>("orders").where({ id, status: "CREATED" });
  if (guard.userId) query.andWhere({ user_id: guard.userId });
  const [row] = await query.update({ status, released_at: now, updated_at: now }).returning("*");
  if (!row) return undefined;
  await trx("sales").where({ id: row.sale_id }).decrement("sold", row.quantity);
  await trx.raw(
    `UPDATE sale_buyers b SET units = b.units - ? FROM sales s
      WHERE b.sale_id = ? AND b.user_id = ? AND s.id = b.sale_id AND s.release_policy = 'RESTORE'`,
    [row.quantity, row.sale_id, row.user_id],
  );
  return row;
}

/**
 * Locks up to `limit` CREATED orders past pay_by (by the database clock) that no
 * other transaction holds: replicas running this at once each get other orders.
 */
export async function lockDueOrders(trx: Knex.Transaction, limit: number): Promise<string[]> {
  const result = await trx.raw(`SELECT id FROM orders WHERE status = 'CREATED' AND pay_by <= now() ORDER BY pay_by LIMIT ? FOR UPDATE SKIP LOCKED`, [limit]);
  return (result.rows as { id: string }[]).map((r) => r.id);
}

/**
 * CREATED → EXPIRED for these (locked) orders in three statements whatever their
 * number, returning the units to their sales and (under a RESTORE release
 * policy, as markReleased) to their buyers; the sales rows are
 * locked in id order first so that replicas expiring at once do not deadlock
 * on them. Returns the orders expired (release_published_at NULL: the outbox).
 */
export async function markExpired(trx: Knex.Transaction, ids: string[], now: Date): Promise<OrderRow[]> {
  if (ids.length === 0) return [];
  const rows = await trx<OrderRow>("orders").whereIn("id", ids).andWhere({ status: "CREATED" }).update({ status: "EXPIRED", released_at: now, updated_at: now }).returning("*");
  if (rows.length === 0) return rows;
  const saleIds = [...new Set(rows.map((r) => r.sale_id))].sort();
  await trx.raw(`SELECT id FROM sales WHERE id = ANY(?::text[]) ORDER BY id FOR UPDATE`, [saleIds]);
  await trx.raw(
    `
    WITH expired AS (
      SELECT * FROM unnest(?::text[], ?::text[], ?::int[]) AS t(sale_id, user_id, quantity)
    ), per_sale AS (
      SELECT sale_id, sum(quantity)::int AS units FROM expired GROUP BY sale_id
    ), sold AS (
      UPDATE sales s SET sold = s.sold - p.units FROM per_sale p WHERE s.id = p.sale_id
    ), per_buyer AS (
      SELECT sale_id, user_id, sum(quantity)::int AS units FROM expired GROUP BY sale_id, user_id
    )
    UPDATE sale_buyers b SET units = b.units - p.units FROM per_buyer p JOIN sales s ON s.id = p.sale_id
     WHERE b.sale_id = p.sale_id AND b.user_id = p.user_id AND s.release_policy = 'RESTORE'
    `,
    [rows.map((r) => r.sale_id), rows.map((r) => r.user_id), rows.map((r) => r.quantity)],
  );
  return rows;
}

/** Released orders whose event is still unpublished, released at least `olderThanMs` ago (database clock). */
export async function unpublishedReleases(db: Knex, olderThanMs: number, limit: number): Promise<OrderRow[]> {
  return db<OrderRow>("orders")
    .whereNotNull("released_at")
    .whereNull("release_published_at")
    .andWhereRaw("released_at <= now() - make_interval(secs => ?)", [olderThanMs / 1000])
    .orderBy("released_at")
    .limit(limit);
}

/** Records the PubAck of these orders' StockReleased events. */
export async function markReleasesPublished(db: Knex, ids: string[], now: Date): Promise<void> {
  if (ids.length === 0) return;
  await db("orders").whereIn("id", ids).whereNull("release_published_at").update({ release_published_at: now });
}
