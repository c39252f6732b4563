// The inventory sweeper against real Redis, JetStream and Postgres: a
// reservation whose event never reached JetStream (inventory died between the
// Lua script and the publish) becomes an order within a bounded time, exactly
// once; normal purchases are not republished; released reservations are
// dropped; and one that never becomes an order is reported.
import { afterAll, beforeAll, describe, expect, it } from "vitest";
import { credentials } from "@grpc/grpc-js";
import { callUnary, InventoryServiceClient, Reason, userMetadata } from "@seckill/sdk";
import { newOrderId, ulid } from "../services/common/ids.js";
import { createRedisStockStore, saleKeys, type StockStore } from "../services/inventory/stock-store.js";
import { createRedisSweepIndex } from "../services/inventory/sweep-index.js";
import { quietLogger } from "../services/common/log.js";
import { startInventory } from "../services/inventory/app.js";
import { eventually, startTestStack, type TestStack } from "./support/stack.js";

const SWEEP_AFTER_MS = 1500;
const SWEEP_REPORT_AFTER_MS = 3000;

let stack: TestStack;
/** The stack's Redis driven directly, as an inventory process that dies before publishing would have. */
let stock: StockStore;
beforeAll(async () => {
  stack = await startTestStack({
    SWEEP_INTERVAL_MS: "100",
    SWEEP_AFTER_MS: String(SWEEP_AFTER_MS),
    SWEEP_REPORT_AFTER_MS: String(SWEEP_REPORT_AFTER_MS),
    SWEEP_BATCH_SIZE: "7",
  });
  stock = createRedisStockStore(stack.redis, stack.config.namespace);
});
afterAll(async () => {
  await stack?.stop();
});

const stats = () => ({ ...stack.inventory.sweeper.stats });
const ordersOf = (saleId: string) => stack.db("orders").where({ sale_id: saleId }).select("id", "user_id", "request_id", "quantity", "status");
const soldOf = async (saleId: string) => ((await stack.db("sales").where({ id: saleId }).first()) as { sold: number }).sold;
const unconfirmed = (saleId: string) => stack.redis.zrange(saleKeys(stack.config.namespace, saleId).unconfirmed, 0, -1);

/** Runs the reserve script only: the reservation exists in Redis, its event was never published. */
async function reserveWithoutPublishing(saleId: string, userId: string, requestId: string, quantity = 1): Promise<string> {
  const nowMs = Date.now();
  const [answer] = await stock.reserve(saleId, nowMs, [{ userId, requestId, quantity, newReservationId: newOrderId(saleId, nowMs) }]);
  expect(answer.outcome).toBe("OK");
  return answer.reservationId;
}

describe("the sweeper", () => {
  it("republishes a reservation whose event never reached JetStream: one order, within the bound", async () => {
    const sale = await stack.createSale({ totalStock: 5, perUserLimit: 2 });
    const before = stats();
    const started = Date.now();
    const reservationId = await reserveWithoutPublishing(sale.saleId, "orphan", "lost-publish", 2);
    expect(await unconfirmed(sale.saleId)).toEqual([reservationId]);

    await eventually(async () => (await ordersOf(sale.saleId)).length > 0, SWEEP_AFTER_MS + 8000, "the swept order");
    const elapsed = Date.now() - started;
    expect(elapsed).toBeGreaterThanOrEqual(SWEEP_AFTER_MS - 50);
    expect(await ordersOf(sale.saleId)).toEqual([{ id: reservationId, user_id: "orphan", request_id: "lost-publish", quantity: 2, status: "CREATED" }]);
    expect(stats().republished).toBeGreaterThan(before.republished);
    // Confirmed on the next look: out of the unconfirmed set.
    await eventually(async () => (await unconfirmed(sale.saleId)).length === 0, SWEEP_AFTER_MS + 5000, "the reservation to be confirmed");

    // The client retrying with the same request id gets the same order; still one row, counted once.
    const { order } = await callUnary(
      stack.orders,
      "placeOrder",
      { saleId: sale.saleId, quantity: 2, requestId: "lost-publish", purchaseToken: "", retry: true },
      { metadata: userMetadata("orphan") },
    );
    expect(order!.orderId).toBe(reservationId);
    await new Promise((r) => setTimeout(r, 500));
    expect((await ordersOf(sale.saleId)).map((o) => o.id)).toEqual([reservationId]);
    expect(await soldOf(sale.saleId)).toBe(2);
  });

  it("sweeps many orphans in chunks, each into exactly one order", async () => {
    const sale = await stack.createSale({ totalStock: 30 });
    const ids = await Promise.all(Array.from({ length: 23 }, (_, i) => reserveWithoutPublishing(sale.saleId, `orphan-${i}`, `r-${i}`)));
    await eventually(async () => (await ordersOf(sale.saleId)).length === ids.length, SWEEP_AFTER_MS + 10_000, "every swept order");
    await eventually(async () => (await unconfirmed(sale.saleId)).length === 0, SWEEP_AFTER_MS + 5000, "every reservation confirmed");
    expect(new Set((await ordersOf(sale.saleId)).map((o) => o.id))).toEqual(new Set(ids));
    expect(await soldOf(sale.saleId)).toBe(ids.length);
  });

  it("does not republish normal purchases: they are confirmed from Postgres and counted once", async () => {
    const sale = await stack.createSale({ totalStock: 20 });
    const before = stats();
    const orderIds = await Promise.all(
      Array.from({ length: 20 }, async (_, i) => {
        const { order } = await callUnary(
          stack.orders,
          "placeOrder",
          { saleId: sale.saleId, quantity: 1, requestId: `buy-${i}`, purchaseToken: "", retry: false },
          { metadata: userMetadata(`buyer-${i}`) },
        );
        return order!.orderId;
      }),
    );
    const placedAt = Date.now();
    await eventually(async () => (await ordersOf(sale.saleId)).length === 20, 10_000, "the orders");
    const persistedAfterMs = Date.now() - placedAt;
    await eventually(async () => (await unconfirmed(sale.saleId)).length === 0, SWEEP_AFTER_MS + 5000, "the reservations confirmed");
    const after = stats();
    expect(after.confirmed - before.confirmed).toBeGreaterThanOrEqual(20);
    // Orders persisted well before SWEEP_AFTER_MS are never republished. (On a
    // machine so loaded that the writer took longer, a republish is allowed:
    // it must still make no second order, which the lines below check.)
    if (persistedAfterMs < SWEEP_AFTER_MS - 500) expect(after.republished).toBe(before.republished);
    expect(new Set((await ordersOf(sale.saleId)).map((o) => o.id))).toEqual(new Set(orderIds));
    expect(await soldOf(sale.saleId)).toBe(20);
  });

  it("drops a released reservation without republishing it", async () => {
    const sale = await stack.createSale({ totalStock: 3 });
    const reservationId = await reserveWithoutPublishing(sale.saleId, "changed-mind", "r-1");
    expect((await stock.release(sale.saleId, reservationId)).outcome).toBe("RELEASED");
    const before = stats();
    await eventually(async () => (await unconfirmed(sale.saleId)).length === 0, SWEEP_AFTER_MS + 5000, "the released reservation dropped");
    expect(stats().released).toBeGreaterThan(before.released);
    await new Promise((r) => setTimeout(r, 300));
    expect(await ordersOf(sale.saleId)).toEqual([]);
  });

  it("reports a reservation that never becomes an order, after SWEEP_REPORT_AFTER_MS", async () => {
    // A sale Redis knows but Postgres does not: the writer refuses its event every time.
    const saleId = ulid();
    const now = Date.now();
    await stock.load(saleId, { startsAtMs: now - 1000, endsAtMs: now + 3600_000, closedAtMs: 0, perUserLimit: 1, totalStock: 5, releasePolicy: "RESTORE" }, 5, []);
    await createRedisSweepIndex(stack.redis, stack.config.namespace).addSale(saleId);
    const started = Date.now();
    const reservationId = await reserveWithoutPublishing(saleId, "ghost", "never-written");

    await eventually(async () => stats().reportedIds.includes(reservationId), SWEEP_REPORT_AFTER_MS + 8000, "the report");
    expect(Date.now() - started).toBeGreaterThanOrEqual(SWEEP_REPORT_AFTER_MS - 50);
    expect(await stack.db("orders").where({ sale_id: saleId })).toEqual([]);
    // Reported once, then no longer swept.
    expect(await unconfirmed(saleId)).toEqual([]);
    const reported = stats().reported;
    await new Promise((r) => setTimeout(r, SWEEP_AFTER_MS + 300));
    expect(stats().reported).toBe(reported);
    expect(stats().reportedIds.filter((id) => id === reservationId)).toHaveLength(1);
  });

  it("sweeps on one replica at a time: a held lock makes the sweep skip", async () => {
    const lock = `${stack.config.namespace}:lock:sweeper`;
    await stack.redis.set(lock, "another-replica", "PX", 5000);
    try {
      await stack.inventory.sweeper.sweepOnce(); // may be one already under way
      expect(await stack.inventory.sweeper.sweepOnce()).toBe(false);
    } finally {
      await stack.redis.del(lock);
    }
    expect(await stack.inventory.sweeper.sweepOnce()).toBe(true);
  });

  it("puts a sale in the sweep index when a replica that did not load it reserves from it", async () => {
    const sale = await stack.createSale({ totalStock: 3 });
    // Loaded and indexed by the stack's inventory; the index then loses it.
    const sweepIndex = createRedisSweepIndex(stack.redis, stack.config.namespace);
    await sweepIndex.removeSale(sale.saleId);
    const replica = await startInventory({ ...stack.config, inventoryAddr: "127.0.0.1:0" }, quietLogger());
    const client = new InventoryServiceClient(replica.address, credentials.createInsecure());
    try {
      expect(await sweepIndex.sales()).not.toContain(sale.saleId);
      const { results } = await callUnary(client, "reserve", { items: [{ saleId: sale.saleId, userId: "elsewhere", requestId: "r-1", quantity: 1 }] });
      expect(results[0].reason).toBe(Reason.REASON_UNSPECIFIED);
      expect(await sweepIndex.sales()).toContain(sale.saleId);
    } finally {
      client.close();
      await replica.stop();
    }
  });

  // Last: it stops the stack's writer.
  it("does not republish reservations that are only waiting in the writer's backlog", async () => {
    const sale = await stack.createSale({ totalStock: 10 });
    await stack.writer.writer.stop();
    await Promise.all(
      Array.from({ length: 5 }, (_, i) =>
        callUnary(
          stack.orders,
          "placeOrder",
          { saleId: sale.saleId, quantity: 1, requestId: `backlog-${i}`, purchaseToken: "", retry: false },
          { metadata: userMetadata(`backlog-${i}`) },
        ),
      ),
    );
    const before = stats();
    await new Promise((r) => setTimeout(r, SWEEP_AFTER_MS + 1000));
    expect(stats().sweeps).toBeGreaterThan(before.sweeps);
    expect(stats().republished).toBe(before.republished);
    expect(await unconfirmed(sale.saleId)).toHaveLength(5);
  });
});
