import { describe, expect, it } from "vitest";
import { compareSale, type SaleViews } from "./reconcile.js";
import type { LedgerOrder } from "./sale-repository.js";
import type { StoredReservation } from "./stock-store.js";

const order = (id: string, user: string, o: Partial<LedgerOrder> = {}): LedgerOrder => ({ id, user_id: user, quantity: 1, released: false, release_stuck: false, ...o });
const reservation = (id: string, user: string, released = false): StoredReservation => ({
  reservationId: id,
  saleId: "s",
  userId: user,
  requestId: `r-${id}`,
  quantity: 1,
  reservedAtMs: 0,
  released,
});

/** A consistent sale: stock 5, a and b bought one each, b's released. */
function views(change: (v: SaleViews) => void = () => {}): SaleViews {
  const v: SaleViews = {
    sale: { total_stock: 5, sold: 1, per_user_limit: 1, release_policy: "RESTORE" },
    orders: [order("1", "a"), order("2", "b", { released: true })],
    buyers: new Map([["a", 1]]),
    redis: {
      live: { warm: true, stockLeft: 4, totalStock: 5, startsAtMs: 0, endsAtMs: 1, closedAtMs: 0, epoch: "e1" },
      buyers: new Map([["a", 1]]),
      reservations: [reservation("1", "a"), reservation("2", "b", true)],
      unconfirmed: [],
    },
    queue: { published: 10, written: 10, idle: true },
  };
  change(v);
  return v;
}
const kinds = (v: SaleViews) => compareSale(v).map((d) => d.kind);

describe("compareSale", () => {
  it("finds nothing in a consistent sale", () => {
    expect(compareSale(views())).toEqual([]);
  });

  it("checks Postgres against itself whatever Redis holds", () => {
    expect(kinds(views((v) => (v.sale.sold = 2)))).toEqual(["SOLD_MISMATCH"]);
    const oversoldAndUnloaded = (v: SaleViews) => {
      v.sale.total_stock = 0;
      v.sale.sold = 1;
      v.redis.live = { warm: false };
    };
    expect(kinds(views(oversoldAndUnloaded))).toEqual(["OVERSOLD", "REDIS_NOT_LOADED"]);
    expect(kinds(views((v) => v.orders.push(order("3", "a"))))).toContain("OVER_LIMIT");
    expect(kinds(views((v) => (v.orders[1].release_stuck = true)))).toEqual(["RELEASE_UNPUBLISHED"]);
  });

  it("counts released units against the limit only when the sale keeps the allowance", () => {
    const rebuy = (v: SaleViews) => {
      v.orders.push(order("3", "b"));
      v.sale.sold = 2;
      v.buyers.set("b", 1);
      v.redis.buyers.set("b", 1);
      v.redis.reservations.push(reservation("3", "b"));
      v.redis.live = { ...v.redis.live, stockLeft: 3 } as SaleViews["redis"]["live"];
    };
    expect(kinds(views(rebuy))).toEqual([]);
    const rebuyKeepingAllowance = (v: SaleViews) => {
      rebuy(v);
      v.sale.release_policy = "KEEP";
    };
    expect(kinds(views(rebuyKeepingAllowance))).toEqual(["OVER_LIMIT"]);
  });

  it("compares Redis with Postgres only once the writer has drained", () => {
    const behind = views((v) => {
      v.queue = { published: 12, written: 10, idle: false };
      v.redis.reservations.push(reservation("9", "z"));
    });
    expect(compareSale(behind)).toEqual([expect.objectContaining({ kind: "QUEUE_NOT_DRAINED", description: expect.stringContaining("2 events") })]);
    expect(kinds(views((v) => v.redis.reservations.push(reservation("9", "z"))))).toEqual(["MISSING_IN_POSTGRES"]);
  });

  it("tells which side missed a release", () => {
    expect(kinds(views((v) => (v.redis.reservations[1].released = false)))).toEqual(["RELEASE_NOT_APPLIED"]);
    expect(kinds(views((v) => (v.redis.reservations[0].released = true)))).toEqual(["RELEASED_ONLY_IN_REDIS"]);
  });
});
