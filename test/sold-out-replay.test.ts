// A request id that won gets its order back on every replay, also after the
// sale sold out and without `retry: true`: the order service's sold-out
// shortcut never answers SOLD_OUT to a winner, neither on the process that
// answered it nor on another order process of the group, while every other
// buyer still gets SOLD_OUT from the shortcut, without inventory being asked
// (inventory's reservation counter does not move).
import { credentials, status, type ServiceError } from "@grpc/grpc-js";
import { callUnary, OrderServiceClient, OrderStatus, rejectionOf, userMetadata } from "@seckill/sdk";
import { afterAll, beforeAll, describe, expect, it } from "vitest";
import { quietLogger } from "../services/common/log.js";
import { saleKeys } from "../services/inventory/stock-store.js";
import { startOrder, type OrderApp } from "../services/order/app.js";
import { sample } from "./support/prometheus.js";
import { eventually, startTestStack, type TestStack } from "./support/stack.js";

let stack: TestStack;
let other: OrderApp;
/** The first order process, and another one of the same group. */
let a: OrderServiceClient;
let b: OrderServiceClient;
beforeAll(async () => {
  stack = await startTestStack({ METRICS_ADDR: "127.0.0.1:0" });
  other = await startOrder(stack.config, quietLogger());
  a = stack.orders;
  b = new OrderServiceClient(other.address, credentials.createInsecure());
});
afterAll(async () => {
  b?.close();
  await other?.stop();
  await stack?.stop();
});

/** PlaceOrder as a BFF that forgot the flag: never `retry: true`. */
const place = async (client: OrderServiceClient, saleId: string, userId: string, requestId: string) =>
  (await callUnary(client, "placeOrder", { saleId, quantity: 1, requestId, purchaseToken: "", retry: false }, { metadata: userMetadata(userId) })).order!;

/** Reservation attempts inventory has answered, whatever the outcome. */
async function inventoryAttempts(): Promise<number> {
  const text = await (await fetch(`http://${stack.inventory.metricsAddress}/metrics`)).text();
  const outcomes = ["OK", "REPLAY", "SOLD_OUT", "SALE_NOT_STARTED", "SALE_ENDED", "ALREADY_PURCHASED", "COLD", "OVERLOADED", "INVALID_ARGUMENT"];
  return outcomes.reduce((sum, outcome) => sum + (sample(text, "seckill_reservations_total", { outcome, service: "inventory" }) ?? 0), 0);
}

let losers = 0;
/** A new buyer is told SOLD_OUT; true when the process answered it from its shortcut (inventory was not asked). */
async function shortcutAnswers(client: OrderServiceClient, saleId: string): Promise<boolean> {
  const before = await inventoryAttempts();
  const n = ++losers;
  const error = await place(client, saleId, `loser-${n}`, `lose-${n}`).then(
    () => undefined,
    (e: ServiceError) => e,
  );
  expect(error && rejectionOf(error)).toMatchObject({ code: status.FAILED_PRECONDITION, reason: "SOLD_OUT" });
  return (await inventoryAttempts()) === before;
}

/** Waits until both processes answer the sale's losers from their shortcut. */
async function bothShortcuts(saleId: string): Promise<void> {
  await eventually(async () => (await shortcutAnswers(a, saleId)) && (await shortcutAnswers(b, saleId)), 15_000, "both sold-out shortcuts", 100);
}

async function created(orderId: string, userId: string): Promise<void> {
  await eventually(
    async () => (await callUnary(a, "getOrder", { orderId }, { metadata: userMetadata(userId) })).order!.status === OrderStatus.ORDER_STATUS_CREATED,
    10_000,
    `order ${orderId} CREATED`,
  );
}

const stockLeft = async (saleId: string) => (await callUnary(stack.inventoryClient, "getStock", { saleId })).stockLeft;

describe("a replay without retry after the sale sold out", () => {
  it("gets the winner its order back, on the process that answered it and on another, while losers get the shortcut", async () => {
    const sale = await stack.createSale({ totalStock: 2, perUserLimit: 1 });
    const wonOnA = await place(a, sale.saleId, "winner-a", "win-a");
    const wonOnB = await place(b, sale.saleId, "winner-b", "win-b");
    await bothShortcuts(sale.saleId);
    await created(wonOnA.orderId, "winner-a");
    await created(wonOnB.orderId, "winner-b");

    const before = await inventoryAttempts();
    for (const client of [a, b]) {
      expect((await place(client, sale.saleId, "winner-a", "win-a")).orderId).toBe(wonOnA.orderId);
      expect((await place(client, sale.saleId, "winner-b", "win-b")).orderId).toBe(wonOnB.orderId);
    }
    // The four replays went to inventory (REPLAY), nothing else did.
    expect((await inventoryAttempts()) - before).toBe(4);
    expect(await shortcutAnswers(a, sale.saleId)).toBe(true);
    expect(await shortcutAnswers(b, sale.saleId)).toBe(true);
    // Another request id of a winner is no winner: the shortcut answers it.
    const before2 = await inventoryAttempts();
    await expect(place(b, sale.saleId, "winner-a", "win-a-again")).rejects.toMatchObject({ code: status.FAILED_PRECONDITION });
    expect(await inventoryAttempts()).toBe(before2);
  });

  it("gets the winner of a released unit its order back once the sale has sold out again", async () => {
    const sale = await stack.createSale({ totalStock: 1, perUserLimit: 1 });
    const first = await place(a, sale.saleId, "first", "first-req");
    await bothShortcuts(sale.saleId);
    await created(first.orderId, "first");

    await callUnary(a, "cancelOrder", { orderId: first.orderId, requestId: "cancel-first" }, { metadata: userMetadata("first") });
    await eventually(async () => (await stockLeft(sale.saleId)) === 1, 10_000, "the released unit back in Redis");
    const second = await place(a, sale.saleId, "second", "second-req");
    // Sold out again: both processes load the winners again once they see it.
    await bothShortcuts(sale.saleId);
    await created(second.orderId, "second");

    for (const client of [a, b]) {
      expect((await place(client, sale.saleId, "second", "second-req")).orderId).toBe(second.orderId);
      expect((await place(client, sale.saleId, "first", "first-req")).orderId).toBe(first.orderId);
    }
  });

  it("drops the shortcut when stock comes back without a release being announced, and its new winner's replay gets the order", async () => {
    const sale = await stack.createSale({ totalStock: 1, perUserLimit: 1 });
    await place(a, sale.saleId, "early", "early-req");
    await bothShortcuts(sale.saleId);

    // A unit back in Redis that no release announced (as a rebuild after a Redis loss may bring).
    await stack.redis.incr(saleKeys(stack.config.namespace, sale.saleId).stock);
    // Each process's check (every REDIS_CHECK_INTERVAL_MS) finds stock left and stops answering for the sale.
    for (const client of [a, b]) {
      await eventually(
        async () => {
          const attempts = await inventoryAttempts();
          const n = ++losers;
          await place(client, sale.saleId, `probe-${n}`, `probe-${n}`).catch(() => undefined);
          return (await inventoryAttempts()) > attempts;
        },
        5000,
        "the process to stop answering for the sale",
      );
    }
    // A probe may have bought the unit; either way the sale is sold out again.
    if ((await stockLeft(sale.saleId)) > 0) await place(a, sale.saleId, "late-winner", "late-req");
    const lateWinner = (await stack.redis.hgetall(saleKeys(stack.config.namespace, sale.saleId).requests)) as Record<string, string>;
    const [late] = Object.entries(lateWinner).filter(([field]) => !field.startsWith("early|"));
    const [userId, requestId] = late[0].split("|");
    await bothShortcuts(sale.saleId);

    for (const client of [a, b]) expect((await place(client, sale.saleId, userId, requestId)).orderId).toBe(late[1]);
  });
});
