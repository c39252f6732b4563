// A sale's release policy on real servers: what a cancelled or expired order
// does to its buyer's per-user allowance. Under KEEP the buyer cannot buy again
// (the unit still goes back to stock for others), under RESTORE (the default)
// they can; Redis and Postgres agree, so a rebuild from Postgres after a Redis
// loss gives the same allowances, and Postgres refuses a KEEP buyer over the
// limit even when an event reaches the writer without Redis's check.
import { afterAll, beforeAll, describe, expect, it } from "vitest";
import { status } from "@grpc/grpc-js";
import { jetstream, jetstreamManager, type JetStreamClient, type JetStreamManager } from "@nats-io/jetstream";
import type { NatsConnection } from "@nats-io/transport-node";
import { callUnary, OrderStatus, ReleasePolicy, ReservationBatch, userMetadata, type Order } from "@seckill/sdk";
import { connectNats, eventNames } from "../services/common/event-bus.js";
import { newOrderId } from "../services/common/ids.js";
import { saleKeys } from "../services/inventory/stock-store.js";
import { persistReservations } from "../services/order/order-repository.js";
import { eventually, refusal, startTestStack, writerDrained, type TestStack } from "./support/stack.js";

const { RELEASE_POLICY_RESTORE_ALLOWANCE: RESTORE, RELEASE_POLICY_KEEP_ALLOWANCE: KEEP } = ReleasePolicy;

let stack: TestStack;
let nc: NatsConnection;
let js: JetStreamClient;
let jsm: JetStreamManager;
beforeAll(async () => {
  stack = await startTestStack({ EXPIRY_INTERVAL_MS: "200" });
  nc = await connectNats(stack.config.natsUrl, "release-policy-test");
  js = jetstream(nc);
  jsm = await jetstreamManager(nc);
});
afterAll(async () => {
  await nc?.close();
  await stack?.stop();
});

let requests = 0;
const nextRequestId = () => `rp-${++requests}`;

/** PlaceOrder with retry=true: a sold-out shortcut left from before a release must not answer for Redis. */
const place = async (saleId: string, userId: string) =>
  (await callUnary(stack.orders, "placeOrder", { saleId, quantity: 1, requestId: nextRequestId(), purchaseToken: "", retry: true }, { metadata: userMetadata(userId) })).order!;
const getOrder = async (orderId: string, userId: string) => (await callUnary(stack.orders, "getOrder", { orderId }, { metadata: userMetadata(userId) })).order!;
const cancel = (orderId: string, userId: string) => callUnary(stack.orders, "cancelOrder", { orderId, requestId: nextRequestId() }, { metadata: userMetadata(userId) });

async function created(orderId: string, userId: string): Promise<Order> {
  let order: Order | undefined;
  const persisted = async () => {
    order = await getOrder(orderId, userId);
    return order.status !== OrderStatus.ORDER_STATUS_PENDING;
  };
  await eventually(persisted, 10_000, `order ${orderId} persisted`);
  return order!;
}

/** Places an order and waits until the writer has persisted it. */
async function buy(saleId: string, userId: string): Promise<Order> {
  const order = await place(saleId, userId);
  expect((await created(order.orderId, userId)).status).toBe(OrderStatus.ORDER_STATUS_CREATED);
  return order;
}

const stockLeft = async (saleId: string) => (await callUnary(stack.inventoryClient, "getStock", { saleId })).stockLeft;
const soldOf = async (saleId: string) => ((await stack.db("sales").where({ id: saleId }).first()) as { sold: number }).sold;
const keys = (saleId: string) => saleKeys(stack.config.namespace, saleId);
const redisUnits = async (saleId: string, userId: string) => Number((await stack.redis.hget(keys(saleId).buyers, userId)) ?? 0);
const postgresUnits = async (saleId: string, userId: string) =>
  ((await stack.db("sale_buyers").where({ sale_id: saleId, user_id: userId }).first()) as { units: number } | undefined)?.units ?? 0;

/** Cancels the order and waits until its unit is back in Redis. */
async function cancelled(saleId: string, order: Order, userId: string): Promise<void> {
  const before = await stockLeft(saleId);
  expect((await cancel(order.orderId, userId)).order!.status).toBe(OrderStatus.ORDER_STATUS_CANCELLED);
  await eventually(async () => (await stockLeft(saleId)) === before + order.quantity, 10_000, "the cancelled unit back in Redis");
}

/** Moves the order's pay_by into the past and waits until it has expired and its unit is back in Redis. */
async function expired(saleId: string, order: Order, userId: string): Promise<void> {
  const before = await stockLeft(saleId);
  await stack.db.raw(`UPDATE orders SET pay_by = now() - interval '1 second' WHERE id = ?`, [order.orderId]);
  await eventually(async () => (await getOrder(order.orderId, userId)).status === OrderStatus.ORDER_STATUS_EXPIRED, 10_000, "the order EXPIRED");
  await eventually(async () => (await stockLeft(saleId)) === before + order.quantity, 10_000, "the expired unit back in Redis");
}

/** The buyers hash, without users at 0 (a rebuild writes only users with units). */
async function redisBuyers(saleId: string): Promise<Record<string, string>> {
  const all = await stack.redis.hgetall(keys(saleId).buyers);
  return Object.fromEntries(Object.entries(all).filter(([, units]) => units !== "0"));
}

describe("KEEP_ALLOWANCE", () => {
  it("a buyer who cancelled cannot buy again; another buyer takes the released unit", async () => {
    const sale = await stack.createSale({ totalStock: 1, perUserLimit: 1, releasePolicy: KEEP });
    expect(sale.releasePolicy).toBe(KEEP);
    expect((await callUnary(stack.sales, "getSale", { saleId: sale.saleId })).sale!.releasePolicy).toBe(KEEP);

    const first = await buy(sale.saleId, "alice");
    await cancelled(sale.saleId, first, "alice");
    expect(await soldOf(sale.saleId)).toBe(0);
    expect(await redisUnits(sale.saleId, "alice")).toBe(1);
    expect(await postgresUnits(sale.saleId, "alice")).toBe(1);

    // The unit is in stock, but not for alice.
    expect(await stockLeft(sale.saleId)).toBe(1);
    expect(await refusal(place(sale.saleId, "alice"))).toMatchObject({ code: status.ALREADY_EXISTS, reason: "ALREADY_PURCHASED" });
    await buy(sale.saleId, "bob");
    expect(await stockLeft(sale.saleId)).toBe(0);
    expect(await soldOf(sale.saleId)).toBe(1);
  }, 30_000);

  it("a buyer whose order expired cannot buy again; another buyer takes the released unit", async () => {
    const sale = await stack.createSale({ totalStock: 1, perUserLimit: 1, releasePolicy: KEEP });
    const first = await buy(sale.saleId, "late");
    await expired(sale.saleId, first, "late");
    expect(await soldOf(sale.saleId)).toBe(0);
    expect(await redisUnits(sale.saleId, "late")).toBe(1);
    expect(await postgresUnits(sale.saleId, "late")).toBe(1);

    expect(await refusal(place(sale.saleId, "late"))).toMatchObject({ code: status.ALREADY_EXISTS, reason: "ALREADY_PURCHASED" });
    await buy(sale.saleId, "punctual");
    expect(await soldOf(sale.saleId)).toBe(1);
  }, 30_000);

  it("counts the released units against the limit, not more: with a limit of 2, one cancelled unit leaves one to buy", async () => {
    const sale = await stack.createSale({ totalStock: 5, perUserLimit: 2, releasePolicy: KEEP });
    const first = await buy(sale.saleId, "carol");
    await cancelled(sale.saleId, first, "carol");
    await buy(sale.saleId, "carol");
    expect(await refusal(place(sale.saleId, "carol"))).toMatchObject({ reason: "ALREADY_PURCHASED" });
    expect(await postgresUnits(sale.saleId, "carol")).toBe(2);
    expect(await soldOf(sale.saleId)).toBe(1);
  }, 30_000);
});

describe("RESTORE_ALLOWANCE", () => {
  it("is the default, and gives the allowance back after a cancel and after an expiry", async () => {
    const sale = await stack.createSale({ totalStock: 1, perUserLimit: 1 });
    expect(sale.releasePolicy).toBe(RESTORE);

    const first = await buy(sale.saleId, "dora");
    await cancelled(sale.saleId, first, "dora");
    expect(await redisUnits(sale.saleId, "dora")).toBe(0);
    expect(await postgresUnits(sale.saleId, "dora")).toBe(0);
    const second = await buy(sale.saleId, "dora");

    await expired(sale.saleId, second, "dora");
    expect(await redisUnits(sale.saleId, "dora")).toBe(0);
    expect(await postgresUnits(sale.saleId, "dora")).toBe(0);
    await buy(sale.saleId, "dora");
    expect(await soldOf(sale.saleId)).toBe(1);
  }, 30_000);

  it("can be asked for explicitly", async () => {
    const sale = await stack.createSale({ totalStock: 1, perUserLimit: 1, releasePolicy: RESTORE });
    expect(sale.releasePolicy).toBe(RESTORE);
    const first = await buy(sale.saleId, "erin");
    await cancelled(sale.saleId, first, "erin");
    await buy(sale.saleId, "erin");
  }, 30_000);
});

describe("after the sale's Redis state is lost", () => {
  it.each([
    ["KEEP", KEEP],
    ["RESTORE", RESTORE],
  ])(
    "a %s sale is rebuilt from Postgres with the allowances Redis had",
    async (_name, releasePolicy) => {
      const sale = await stack.createSale({ totalStock: 5, perUserLimit: 1, releasePolicy });
      const keeps = releasePolicy === KEEP;
      await cancelled(sale.saleId, await buy(sale.saleId, "canceller"), "canceller");
      await expired(sale.saleId, await buy(sale.saleId, "expirer"), "expirer");
      await buy(sale.saleId, "holder");
      const buyersBefore = await redisBuyers(sale.saleId);
      const stockBefore = await stockLeft(sale.saleId);
      expect(buyersBefore).toEqual(keeps ? { canceller: "1", expirer: "1", holder: "1" } : { holder: "1" });
      expect(stockBefore).toBe(4);

      await stack.redis.del(...Object.values(keys(sale.saleId)));
      await eventually(
        async () => {
          try {
            return (await callUnary(stack.sales, "warmSale", { saleId: sale.saleId })).stockLeft >= 0;
          } catch {
            return false;
          }
        },
        10_000,
        "the sale to be rebuilt",
      );
      expect(await redisBuyers(sale.saleId)).toEqual(buyersBefore);
      expect(await stockLeft(sale.saleId)).toBe(stockBefore);
      expect(await stack.redis.hget(keys(sale.saleId).rules, "release")).toBe(keeps ? "KEEP" : "RESTORE");

      // And it behaves the same: the released buyers are refused under KEEP, served under RESTORE.
      for (const user of ["canceller", "expirer"]) {
        if (keeps) expect(await refusal(place(sale.saleId, user))).toMatchObject({ reason: "ALREADY_PURCHASED" });
        else await buy(sale.saleId, user);
      }
      expect(await refusal(place(sale.saleId, "holder"))).toMatchObject({ reason: "ALREADY_PURCHASED" });
      await buy(sale.saleId, "newcomer");
    },
    40_000,
  );
});

describe("Postgres's per-user guard", () => {
  /** A reservation straight to the stream, as an inventory without Redis's check would publish it. */
  async function publishReservation(saleId: string, userId: string): Promise<{ reservationId: string; seq: number }> {
    const reservationId = newOrderId(saleId);
    const event = { reservationId, saleId, userId, requestId: nextRequestId(), quantity: 1, reservedAt: new Date() };
    const ack = await js.publish(eventNames(stack.config.namespace).reservationSubject(saleId), ReservationBatch.encode({ reservations: [event] }).finish(), {
      msgID: `rp-${reservationId}`,
    });
    return { reservationId, seq: ack.seq };
  }

  it("refuses a KEEP buyer's order over the limit counting released units; a RESTORE buyer's is written", async () => {
    const keep = await stack.createSale({ totalStock: 5, perUserLimit: 1, releasePolicy: KEEP });
    const restore = await stack.createSale({ totalStock: 5, perUserLimit: 1, releasePolicy: RESTORE });
    await cancelled(keep.saleId, await buy(keep.saleId, "frank"), "frank");
    await cancelled(restore.saleId, await buy(restore.saleId, "frank"), "frank");
    const poisonBefore = stack.writer.writer.stats.poison;

    const refused = await publishReservation(keep.saleId, "frank");
    const accepted = await publishReservation(restore.saleId, "frank");
    await writerDrained(jsm, stack.config.namespace, Math.max(refused.seq, accepted.seq));

    expect(await stack.db("orders").where({ id: refused.reservationId })).toEqual([]);
    expect(await stack.db("orders").where({ id: accepted.reservationId }).select("user_id", "status")).toEqual([{ user_id: "frank", status: "CREATED" }]);
    expect(stack.writer.writer.stats.poison - poisonBefore).toBe(1);
    expect(await postgresUnits(keep.saleId, "frank")).toBe(1);
    expect(await soldOf(keep.saleId)).toBe(0);
    expect(await postgresUnits(restore.saleId, "frank")).toBe(1);

    // The repository function itself, in a transaction rolled back: the CHECK on sale_buyers refuses it.
    const attempt = stack.db.transaction(async (trx) => {
      await persistReservations(trx, [
        { reservationId: newOrderId(keep.saleId), saleId: keep.saleId, userId: "frank", requestId: nextRequestId(), quantity: 1, reservedAt: new Date() },
      ]);
      throw new Error("persisted over the limit");
    });
    await expect(attempt).rejects.toThrow(/sale_buyers_within_limit/);
  }, 30_000);
});
