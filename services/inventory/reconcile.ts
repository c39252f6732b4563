// Reconciling a sale on demand: reads what Redis, the event stream and
// Postgres hold for it and lists every difference, for operators (`seckill sale
// reconcile`). Redis is compared with Postgres only once the writer has
// drained the stream: before that Redis is ahead by the events in flight.
// Repair discards the sale's Redis state and rebuilds it from Postgres, the
// same path as a lost Redis (sales.ts).
import type { ReconcileSaleResponse, SaleDifference } from "@seckill/sdk";
import type { Knex } from "knex";
import type { JetStreamProgress } from "../common/event-bus.js";
import { invalid, overloaded, refuse } from "../common/refusal.js";
import { isSaleId } from "../common/ids.js";
import * as repo from "./sale-repository.js";
import type { LedgerOrder, SaleRow } from "./sale-repository.js";
import type { SaleSnapshot, StockStore } from "./stock-store.js";

const MAX_EXAMPLES = 20;

export interface SaleViews {
  sale: Pick<SaleRow, "total_stock" | "sold" | "per_user_limit" | "release_policy">;
  orders: LedgerOrder[];
  /** Units counted against each user's limit in Postgres. */
  buyers: Map<string, number>;
  redis: SaleSnapshot;
  queue: JetStreamProgress;
}

const difference = (kind: string, description: string, concerned: string[]): SaleDifference => ({
  kind,
  description,
  count: concerned.length,
  examples: concerned.slice(0, MAX_EXAMPLES),
});

const sum = (orders: LedgerOrder[]) => orders.reduce((total, o) => total + o.quantity, 0);

/** Units each user holds against the per-user limit: unreleased ones, or all of them when releases keep the allowance used. */
function heldByUser(v: SaleViews): Map<string, number> {
  const held = new Map<string, number>();
  for (const o of v.orders) {
    if (o.released && v.sale.release_policy !== "KEEP") continue;
    held.set(o.user_id, (held.get(o.user_id) ?? 0) + o.quantity);
  }
  return held;
}

/** Every way the views disagree; empty when they agree. */
export function compareSale(v: SaleViews): SaleDifference[] {
  const found: SaleDifference[] = [];
  const live = v.orders.filter((o) => !o.released);
  const liveUnits = sum(live);

  // Postgres against itself: the invariants its constraints are meant to keep.
  if (v.sale.sold !== liveUnits) {
    found.push(difference("SOLD_MISMATCH", `the sale's sold counter is ${v.sale.sold}, its unreleased orders hold ${liveUnits} units`, []));
  }
  if (liveUnits > v.sale.total_stock) {
    found.push(difference("OVERSOLD", `unreleased orders hold ${liveUnits} units of a stock of ${v.sale.total_stock}`, []));
  }
  const overLimit = [...heldByUser(v)].filter(([, units]) => units > v.sale.per_user_limit).map(([user]) => user);
  if (overLimit.length > 0) found.push(difference("OVER_LIMIT", `users holding more than ${v.sale.per_user_limit} units`, overLimit));
  const stuck = v.orders.filter((o) => o.release_stuck).map((o) => o.id);
  if (stuck.length > 0) {
    found.push(difference("RELEASE_UNPUBLISHED", "orders released over a minute ago whose stock-released event is not published: check the order service's release relay", stuck));
  }

  if (!v.redis.live.warm) {
    found.push(difference("REDIS_NOT_LOADED", "Redis does not hold the sale, or holds it from another Redis server; it is rebuilt from Postgres on its next use", []));
    return found;
  }
  if (!v.queue.idle) {
    const behind = Math.max(0, v.queue.published - v.queue.written);
    found.push(
      difference("QUEUE_NOT_DRAINED", `the writer has ${behind} events of the stream left to write: Redis and Postgres were not compared; reconcile again once it has drained`, []),
    );
    return found;
  }

  // Redis against Postgres, with nothing in flight between them.
  const redisLeft = v.redis.live.stockLeft;
  if (redisLeft !== v.sale.total_stock - liveUnits) {
    found.push(
      difference("STOCK_MISMATCH", `Redis has ${redisLeft} units left, Postgres ${v.sale.total_stock - liveUnits} (stock ${v.sale.total_stock} minus ${liveUnits} held)`, []),
    );
  }
  const inPostgres = new Map(v.orders.map((o) => [o.id, o]));
  const inRedis = new Map(v.redis.reservations.map((r) => [r.reservationId, r]));
  const missingInPostgres = v.redis.reservations.filter((r) => !r.released && !inPostgres.has(r.reservationId)).map((r) => r.reservationId);
  if (missingInPostgres.length > 0) {
    found.push(difference("MISSING_IN_POSTGRES", "reservations Redis holds with no order in Postgres (the sweeper republishes them, then reports them)", missingInPostgres));
  }
  const missingInRedis = v.orders.filter((o) => !inRedis.has(o.id)).map((o) => o.id);
  if (missingInRedis.length > 0) {
    found.push(difference("MISSING_IN_REDIS", "orders with no reservation record in Redis: a replay of their request would not find them", missingInRedis));
  }
  const notApplied = v.orders.filter((o) => o.released && inRedis.get(o.id)?.released === false).map((o) => o.id);
  if (notApplied.length > 0) {
    found.push(difference("RELEASE_NOT_APPLIED", "orders released in Postgres whose units Redis has not taken back", notApplied));
  }
  const releasedOnlyInRedis = v.redis.reservations.filter((r) => r.released && inPostgres.get(r.reservationId)?.released === false).map((r) => r.reservationId);
  if (releasedOnlyInRedis.length > 0) {
    found.push(difference("RELEASED_ONLY_IN_REDIS", "reservations released in Redis whose order Postgres still holds", releasedOnlyInRedis));
  }
  const users = new Set([...v.buyers.keys(), ...v.redis.buyers.keys()]);
  const buyerMismatch = [...users].filter((u) => (v.buyers.get(u) ?? 0) !== (v.redis.buyers.get(u) ?? 0));
  if (buyerMismatch.length > 0) {
    found.push(difference("BUYER_MISMATCH", "users whose units counted against the per-user limit differ between Redis and Postgres", buyerMismatch));
  }
  return found;
}

/** Differences a Redis rebuild from Postgres can fix. */
const REPAIRABLE = new Set(["REDIS_NOT_LOADED", "STOCK_MISMATCH", "MISSING_IN_REDIS", "RELEASE_NOT_APPLIED", "RELEASED_ONLY_IN_REDIS", "BUYER_MISMATCH", "MISSING_IN_POSTGRES"]);

export interface ReconcileDeps {
  db: Knex;
  stock: Pick<StockStore, "snapshot" | "discard">;
  jetstreamProgress: () => Promise<JetStreamProgress>;
  /** Loads the sale into Redis from Postgres (waiting for the queue to drain when it was lost). */
  warm(saleId: string): Promise<unknown>;
  now: () => Date;
}

export function createReconciler(deps: ReconcileDeps) {
  async function read(saleId: string): Promise<SaleViews> {
    const sale = await repo.findSale(deps.db, saleId);
    if (!sale) throw refuse("NOT_FOUND", `no sale ${saleId}`);
    // The queue first: Postgres read after it holds at least what it says is written.
    const queue = await deps.jetstreamProgress();
    const [orders, buyers, redis] = await Promise.all([repo.saleLedger(deps.db, saleId), repo.saleBuyers(deps.db, saleId), deps.stock.snapshot(saleId)]);
    return { sale, orders, buyers: new Map(buyers), redis, queue };
  }

  function response(saleId: string, v: SaleViews, differences: SaleDifference[], repaired: boolean): ReconcileSaleResponse {
    const live = v.orders.filter((o) => !o.released);
    return {
      saleId,
      redis: {
        loaded: v.redis.live.warm,
        stockLeft: v.redis.live.warm ? v.redis.live.stockLeft : 0,
        reservations: v.redis.reservations.length,
        reservedUnits: v.redis.reservations.filter((r) => !r.released).reduce((t, r) => t + r.quantity, 0),
        released: v.redis.reservations.filter((r) => r.released).length,
        unconfirmed: v.redis.unconfirmed.length,
        buyerUnits: [...v.redis.buyers.values()].reduce((t, u) => t + u, 0),
      },
      postgres: {
        totalStock: v.sale.total_stock,
        sold: v.sale.sold,
        orders: v.orders.length,
        liveUnits: sum(live),
        released: v.orders.length - live.length,
        releasesUnpublished: v.orders.filter((o) => o.release_stuck).length,
        usersOverLimit: [...heldByUser(v).values()].filter((u) => u > v.sale.per_user_limit).length,
      },
      queue: { publishedSeq: v.queue.published, writtenSeq: v.queue.written, drained: v.queue.idle },
      differences,
      repaired,
      checkedAt: deps.now(),
    };
  }

  return async function reconcile(saleId: string, repair: boolean): Promise<ReconcileSaleResponse> {
    if (!isSaleId(saleId)) throw invalid("sale_id", "26 characters of Crockford base32");
    let views = await read(saleId);
    let differences = compareSale(views);
    if (!repair) return response(saleId, views, differences, false);
    if (!views.queue.idle) throw overloaded("the writer has not drained the stream yet; repair once it has", 1000);
    if (!differences.some((d) => REPAIRABLE.has(d.kind))) return response(saleId, views, differences, false);
    await deps.stock.discard(saleId, true);
    await deps.warm(saleId);
    views = await read(saleId);
    differences = compareSale(views);
    return response(saleId, views, differences, true);
  };
}

export type Reconcile = ReturnType<typeof createReconciler>;
