// What must hold for a sale once the system has drained, whatever failed on
// the way: the answers the clients were told against Postgres (and, when given,
// Redis). Returns every anomaly found, described, so that a fault test (or a
// chaos campaign) asserts the list is empty and prints what broke when not.
//
//   nothing lost      every acknowledged reservation has its order row (a
//                     released one keeps its row, CANCELLED/EXPIRED with
//                     released_at), with the sale, user, request and quantity
//                     the client was told
//   nothing doubled   one order per (user, request id); one order id per
//                     request in the answers; a refused request has no order
//   no oversell       sold <= total_stock, and sold = the live (CREATED or
//                     PAID) units; units told <= total_stock
//   per-user limit    nobody's live units (or units told) pass the limit, and
//                     sale_buyers agrees with the orders
//   nothing stuck     (with Redis) every reservation Redis holds that is not
//                     released is an order in Postgres, and Redis's stock left
//                     is total_stock - sold
import type { Knex } from "knex";
import type { RedisClient } from "../../services/common/redis.js";
import { saleKeys } from "../../services/inventory/stock-store.js";
import type { Purchase } from "./crowd.js";

export interface Anomaly {
  kind:
    | "unknown sale"
    | "lost"
    | "mismatch"
    | "inconsistent answers"
    | "refused but ordered"
    | "duplicate"
    | "oversold"
    | "sold mismatch"
    | "over limit"
    | "buyers mismatch"
    | "stuck"
    | "stock mismatch";
  detail: string;
}

export interface InvariantOptions {
  /** The sale's Redis and namespace: checks that nothing Redis reserved is stuck outside Postgres. */
  redis?: { client: RedisClient; namespace: string };
}

interface OrderRow {
  id: string;
  user_id: string;
  request_id: string;
  quantity: number;
  status: string;
  released_at: Date | null;
}

const LIVE = new Set(["CREATED", "PAID"]);
const key = (userId: string, requestId: string) => `${userId}\u0000${requestId}`;
const who = (userId: string, requestId: string) => `user ${userId} request ${requestId}`;

export async function checkInvariants(db: Knex, saleId: string, purchases: Purchase[], opts: InvariantOptions = {}): Promise<Anomaly[]> {
  const anomalies: Anomaly[] = [];
  const add = (kind: Anomaly["kind"], detail: string) => anomalies.push({ kind, detail });

  const sale = (await db("sales").where({ id: saleId }).first()) as { total_stock: number; sold: number; per_user_limit: number } | undefined;
  if (!sale) {
    add("unknown sale", `sale ${saleId} is not in Postgres`);
    return anomalies;
  }
  const orders = (await db("orders").where({ sale_id: saleId }).select("id", "user_id", "request_id", "quantity", "status", "released_at")) as OrderRow[];
  const byId = new Map(orders.map((o) => [o.id, o]));
  const byRequest = new Map<string, OrderRow[]>();
  for (const o of orders) byRequest.set(key(o.user_id, o.request_id), [...(byRequest.get(key(o.user_id, o.request_id)) ?? []), o]);

  // What the clients were told.
  const told = new Map<string, string>();
  const toldUnits = new Map<string, number>();
  let toldTotal = 0;
  const countedOrders = new Set<string>();
  for (const p of purchases) {
    const { answer } = p;
    if (answer.kind === "accepted") {
      const earlier = told.get(key(p.userId, p.requestId));
      if (earlier !== undefined && earlier !== answer.orderId) {
        add("inconsistent answers", `${who(p.userId, p.requestId)} was told order ${earlier} and order ${answer.orderId}`);
      }
      told.set(key(p.userId, p.requestId), answer.orderId);
      if (!countedOrders.has(answer.orderId)) {
        countedOrders.add(answer.orderId);
        toldUnits.set(p.userId, (toldUnits.get(p.userId) ?? 0) + p.quantity);
        toldTotal += p.quantity;
      }
      const row = byId.get(answer.orderId);
      if (!row) {
        add("lost", `${who(p.userId, p.requestId)} was told order ${answer.orderId}, which is not in Postgres`);
      } else if (row.user_id !== p.userId || row.request_id !== p.requestId || row.quantity !== p.quantity) {
        add(
          "mismatch",
          `order ${row.id} is user ${row.user_id} request ${row.request_id} quantity ${row.quantity}; ` + `${who(p.userId, p.requestId)} quantity ${p.quantity} was told it`,
        );
      } else if (!LIVE.has(row.status) && row.released_at === null) {
        add("lost", `order ${row.id} is ${row.status} without a recorded release`);
      }
    } else if (answer.kind === "refused" && byRequest.has(key(p.userId, p.requestId)) && !told.has(key(p.userId, p.requestId))) {
      const ids = byRequest
        .get(key(p.userId, p.requestId))!
        .map((o) => o.id)
        .join(", ");
      add("refused but ordered", `${who(p.userId, p.requestId)} was refused (${answer.reason}) but has order ${ids}`);
    }
  }
  if (toldTotal > sale.total_stock) add("oversold", `${toldTotal} units were acknowledged for a stock of ${sale.total_stock}`);
  for (const [user, units] of toldUnits) {
    if (units > sale.per_user_limit) add("over limit", `user ${user} was acknowledged ${units} units (limit ${sale.per_user_limit})`);
  }

  // What Postgres holds.
  for (const [k, rows] of byRequest) {
    if (rows.length > 1) {
      const [user, request] = k.split("\u0000");
      add("duplicate", `${who(user, request)} has ${rows.length} orders: ${rows.map((o) => o.id).join(", ")}`);
    }
  }
  const live = orders.filter((o) => LIVE.has(o.status));
  const liveUnits = live.reduce((n, o) => n + o.quantity, 0);
  if (sale.sold > sale.total_stock || sale.sold < 0) add("oversold", `sold ${sale.sold} of a stock of ${sale.total_stock}`);
  if (liveUnits > sale.total_stock) add("oversold", `${liveUnits} live units in orders for a stock of ${sale.total_stock}`);
  if (sale.sold !== liveUnits) add("sold mismatch", `sales.sold is ${sale.sold} but the live orders hold ${liveUnits} units`);
  const unitsByUser = new Map<string, number>();
  for (const o of live) unitsByUser.set(o.user_id, (unitsByUser.get(o.user_id) ?? 0) + o.quantity);
  for (const [user, units] of unitsByUser) {
    if (units > sale.per_user_limit) add("over limit", `user ${user} holds ${units} units in orders (limit ${sale.per_user_limit})`);
  }
  const buyers = (await db("sale_buyers").where({ sale_id: saleId }).select("user_id", "units")) as { user_id: string; units: number }[];
  const buyerUnits = new Map(buyers.map((b) => [b.user_id, b.units]));
  for (const user of new Set([...unitsByUser.keys(), ...buyerUnits.keys()])) {
    const inOrders = unitsByUser.get(user) ?? 0;
    const counted = buyerUnits.get(user) ?? 0;
    if (inOrders !== counted) add("buyers mismatch", `user ${user}: sale_buyers says ${counted} units, the orders hold ${inOrders}`);
  }

  if (opts.redis) await checkRedis(opts.redis.client, opts.redis.namespace, saleId, sale, byId, add);
  return anomalies;
}

async function checkRedis(
  redis: RedisClient,
  namespace: string,
  saleId: string,
  sale: { total_stock: number; sold: number },
  byId: Map<string, OrderRow>,
  add: (kind: Anomaly["kind"], detail: string) => void,
): Promise<void> {
  const keys = saleKeys(namespace, saleId);
  const [reservations, released, stock] = await Promise.all([redis.hkeys(keys.reservations), redis.smembers(keys.released), redis.get(keys.stock)]);
  const releasedSet = new Set(released);
  const stuck = reservations.filter((id) => !releasedSet.has(id) && !byId.has(id));
  if (stuck.length > 0) {
    add("stuck", `${stuck.length} reservation(s) in Redis have no order in Postgres: ${stuck.slice(0, 5).join(", ")}${stuck.length > 5 ? ", …" : ""}`);
  }
  if (stock !== null && Number(stock) !== sale.total_stock - sale.sold) {
    add("stock mismatch", `Redis has ${stock} units left, Postgres ${sale.total_stock - sale.sold} (stock ${sale.total_stock}, sold ${sale.sold})`);
  }
}
