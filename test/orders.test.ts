// The order life cycle end to end on real servers: reading a fresh order while
// it is PENDING and once persisted, watching it change, listing, paying and
// cancelling, and the privacy of another user's order.
import { afterAll, beforeAll, describe, expect, it } from "vitest";
import { Metadata, status, type ServiceError } from "@grpc/grpc-js";
import { callUnary, OrderStatus, rejectionOf, userMetadata, type Order, type OrderServiceClient, type WatchOrderResponse } from "@seckill/sdk";
import { quietLogger } from "../services/common/log.js";
import { newOrderId } from "../services/common/ids.js";
import { startWriter, type WriterApp } from "../services/order/writer/app.js";
import { eventually, refusal, startTestStack, type TestStack } from "./support/stack.js";

const { ORDER_STATUS_PENDING: PENDING, ORDER_STATUS_CREATED: CREATED, ORDER_STATUS_PAID: PAID, ORDER_STATUS_CANCELLED: CANCELLED } = OrderStatus;
const PAYMENT_WINDOW_MS = 900_000; // what stack.createSale() asks for

let stack: TestStack;
beforeAll(async () => {
  stack = await startTestStack();
});
afterAll(async () => {
  await stack?.stop();
});

let requests = 0;
const nextRequestId = () => `req-${++requests}`;

function clientFor(s: TestStack = stack) {
  const orders = s.orders;
  return {
    place: async (saleId: string, userId: string, quantity = 1, requestId = nextRequestId(), retry = false) =>
      (await callUnary(orders, "placeOrder", { saleId, quantity, requestId, purchaseToken: "", retry }, { metadata: userMetadata(userId) })).order!,
    get: async (orderId: string, userId: string) => (await callUnary(orders, "getOrder", { orderId }, { metadata: userMetadata(userId) })).order!,
    pay: async (orderId: string, userId: string, paymentReference = `pay-${orderId.slice(-8)}`, requestId = `pay-${orderId.slice(-8)}`) =>
      (await callUnary(orders, "payOrder", { orderId, paymentReference, requestId }, { metadata: userMetadata(userId) })).order!,
    cancel: async (orderId: string, userId: string, requestId = `cancel-${orderId.slice(-8)}`) =>
      (await callUnary(orders, "cancelOrder", { orderId, requestId }, { metadata: userMetadata(userId) })).order!,
    list: (userId: string, req: { pageSize?: number; pageToken?: string; saleId?: string } = {}) =>
      callUnary(orders, "listOrders", { pageSize: req.pageSize ?? 0, pageToken: req.pageToken ?? "", saleId: req.saleId ?? "" }, { metadata: userMetadata(userId) }),
    /** Waits until the order is persisted (GetOrder no longer PENDING). */
    created: async (orderId: string, userId: string): Promise<Order> => {
      let order: Order | undefined;
      await eventually(
        async () => {
          order = (await callUnary(orders, "getOrder", { orderId }, { metadata: userMetadata(userId) })).order!;
          return order.status !== PENDING;
        },
        15_000,
        `order ${orderId} persisted`,
      );
      return order!;
    },
  };
}
const api = () => clientFor(stack);

interface Watch {
  orders: Order[];
  statuses(): OrderStatus[];
  /** Resolves when the stream ends: the error for a non-OK status. */
  done: Promise<ServiceError | undefined>;
  ended: boolean;
  cancel(): void;
}

function watch(client: OrderServiceClient, orderId: string, userId: string, deadlineMs = 20_000): Watch {
  const call = client.watchOrder({ orderId }, userMetadata(userId), { deadline: Date.now() + deadlineMs });
  const orders: Order[] = [];
  const w: Watch = {
    orders,
    statuses: () => orders.map((o) => o.status),
    ended: false,
    cancel: () => call.cancel(),
    done: new Promise((resolve) => {
      call.on("data", (message: WatchOrderResponse) => orders.push(message.order!));
      call.on("error", (error: ServiceError) => {
        w.ended = true;
        resolve(error);
      });
      call.on("end", () => {
        w.ended = true;
        resolve(undefined);
      });
    }),
  };
  return w;
}

const saleRow = (saleId: string) => stack.db("sales").where({ id: saleId }).first();
const buyerUnits = async (saleId: string, userId: string) =>
  ((await stack.db("sale_buyers").where({ sale_id: saleId, user_id: userId }).first()) as { units: number } | undefined)?.units;
const stockLeft = async (saleId: string) => (await callUnary(stack.inventoryClient, "getStock", { saleId })).stockLeft;

describe("reading an order", () => {
  it("shows PENDING or CREATED right after PlaceOrder and CREATED with price, currency and deadline once persisted", async () => {
    const sale = await stack.createSale({ totalStock: 10, perUserLimit: 3, priceMinor: 2500 });
    const placed = await api().place(sale.saleId, "reader", 2);
    expect(placed).toMatchObject({ saleId: sale.saleId, userId: "reader", quantity: 2, status: PENDING, amountMinor: 0, currency: "" });
    expect(placed.orderId.startsWith(`${sale.saleId}-`)).toBe(true);
    expect(placed.reservedAt).toBeInstanceOf(Date);

    const first = await api().get(placed.orderId, "reader");
    expect([PENDING, CREATED]).toContain(first.status);
    expect(first).toMatchObject({ orderId: placed.orderId, saleId: sale.saleId, userId: "reader", quantity: 2, requestId: placed.requestId });
    expect(first.reservedAt!.getTime()).toBe(placed.reservedAt!.getTime());
    if (first.status === PENDING) {
      expect(first).toMatchObject({ amountMinor: 0, currency: "", createdAt: undefined, payBy: undefined });
    }

    const created = await api().created(placed.orderId, "reader");
    expect(created.status).toBe(CREATED);
    expect(created).toMatchObject({ orderId: placed.orderId, quantity: 2, amountMinor: 2 * 2500, currency: "EUR", requestId: placed.requestId });
    expect(created.amountMinor).toBe(sale.priceMinor * 2);
    expect(created.reservedAt!.getTime()).toBe(placed.reservedAt!.getTime());
    expect(created.payBy!.getTime()).toBe(placed.reservedAt!.getTime() + sale.paymentWindowSeconds * 1000);
    expect(sale.paymentWindowSeconds * 1000).toBe(PAYMENT_WINDOW_MS);
    expect(created.createdAt).toBeInstanceOf(Date);
    expect(created.updatedAt).toBeInstanceOf(Date);
  });

  it("refuses a missing identity, a malformed order id and an unknown order", async () => {
    const sale = await stack.createSale();
    const noUser = await refusal(callUnary(stack.orders, "getOrder", { orderId: newOrderId(sale.saleId) }, { metadata: new Metadata() }));
    expect(noUser).toMatchObject({ code: status.UNAUTHENTICATED, reason: "UNAUTHENTICATED" });
    const noUserList = await refusal(callUnary(stack.orders, "listOrders", { pageSize: 0, pageToken: "", saleId: "" }, { metadata: new Metadata() }));
    expect(noUserList).toMatchObject({ code: status.UNAUTHENTICATED, reason: "UNAUTHENTICATED" });
    expect(await refusal(api().get("not-an-order", "someone"))).toMatchObject({ code: status.INVALID_ARGUMENT, reason: "INVALID_ARGUMENT" });
    expect(await refusal(api().get(newOrderId(sale.saleId), "someone"))).toMatchObject({ code: status.NOT_FOUND, reason: "NOT_FOUND" });
  });
});

describe("watching an order", () => {
  it("streams the order from PENDING (or already CREATED) to CREATED, then PAID, and ends", async () => {
    const sale = await stack.createSale();
    const placed = await api().place(sale.saleId, "watcher");
    const w = watch(stack.orders, placed.orderId, "watcher");
    await eventually(async () => w.statuses().includes(CREATED), 15_000, "CREATED on the stream");
    expect([PENDING, CREATED]).toContain(w.statuses()[0]);
    expect(w.ended).toBe(false);

    const paid = await api().pay(placed.orderId, "watcher");
    expect(paid.status).toBe(PAID);
    expect(await w.done).toBeUndefined();
    const statuses = w.statuses();
    expect(statuses[statuses.length - 1]).toBe(PAID);
    // Each status once, in life-cycle order.
    expect(statuses).toEqual([PENDING, CREATED, PAID].filter((s) => statuses.includes(s)));
    for (const o of w.orders) expect(o.orderId).toBe(placed.orderId);
    expect(w.orders[w.orders.length - 1]).toMatchObject({ amountMinor: sale.priceMinor, currency: "EUR" });
  });

  it("sends a final order once and ends", async () => {
    const sale = await stack.createSale();
    const placed = await api().place(sale.saleId, "late-watcher");
    await api().created(placed.orderId, "late-watcher");
    await api().cancel(placed.orderId, "late-watcher");
    const w = watch(stack.orders, placed.orderId, "late-watcher");
    expect(await w.done).toBeUndefined();
    expect(w.statuses()).toEqual([CANCELLED]);
  });
});

describe("listing orders", () => {
  it("returns only the caller's orders, newest first, a page at a time, optionally for one sale", async () => {
    const [a, b, c] = [await stack.createSale({ perUserLimit: 2 }), await stack.createSale(), await stack.createSale()];
    // One at a time, each persisted before the next, so their creation times differ.
    const mine: string[] = [];
    for (const saleId of [a.saleId, b.saleId, c.saleId, a.saleId]) {
      const placed = await api().place(saleId, "lister");
      await api().created(placed.orderId, "lister");
      mine.push(placed.orderId);
    }
    const theirs = await Promise.all([api().place(a.saleId, "someone-else"), api().place(b.saleId, "someone-else")]);
    for (const o of theirs) await api().created(o.orderId, "someone-else");
    const newestFirst = [...mine].reverse();

    const all = await api().list("lister");
    expect(all.orders.map((o) => o.orderId)).toEqual(newestFirst);
    expect(all.nextPageToken).toBe("");
    for (const o of all.orders) expect(o).toMatchObject({ userId: "lister", status: CREATED });
    const created = all.orders.map((o) => o.createdAt!.getTime());
    expect(created).toEqual([...created].sort((x, y) => y - x));

    const first = await api().list("lister", { pageSize: 3 });
    expect(first.orders.map((o) => o.orderId)).toEqual(newestFirst.slice(0, 3));
    expect(first.nextPageToken).not.toBe("");
    const second = await api().list("lister", { pageSize: 3, pageToken: first.nextPageToken });
    expect(second.orders.map((o) => o.orderId)).toEqual(newestFirst.slice(3));
    expect(second.nextPageToken).toBe("");

    const onlyA = await api().list("lister", { saleId: a.saleId });
    expect(onlyA.orders.map((o) => o.orderId)).toEqual([mine[3], mine[0]]);
    const onlyAPaged = await api().list("lister", { saleId: a.saleId, pageSize: 1 });
    expect(onlyAPaged.orders.map((o) => o.orderId)).toEqual([mine[3]]);
    const onlyANext = await api().list("lister", { saleId: a.saleId, pageSize: 1, pageToken: onlyAPaged.nextPageToken });
    expect(onlyANext.orders.map((o) => o.orderId)).toEqual([mine[0]]);
    expect(onlyANext.nextPageToken).toBe("");

    const other = await api().list("someone-else");
    expect(new Set(other.orders.map((o) => o.orderId))).toEqual(new Set(theirs.map((o) => o.orderId)));
    expect((await api().list("nobody")).orders).toEqual([]);
    expect(await refusal(api().list("lister", { pageSize: 101 }))).toMatchObject({ code: status.INVALID_ARGUMENT });
    expect(await refusal(api().list("lister", { pageToken: "garbage" }))).toMatchObject({ code: status.INVALID_ARGUMENT });
  });

  it("pages through orders persisted together without skipping or repeating any", async () => {
    const sales = await Promise.all(Array.from({ length: 7 }, () => stack.createSale()));
    // Placed at once: the writer tends to persist them in one transaction, with one creation time.
    const placed = await Promise.all(sales.map((s) => api().place(s.saleId, "batch-lister")));
    for (const o of placed) await api().created(o.orderId, "batch-lister");

    const seen: string[] = [];
    let pageToken = "";
    for (let page = 0; page < 10; page++) {
      const res = await api().list("batch-lister", { pageSize: 2, pageToken });
      seen.push(...res.orders.map((o) => o.orderId));
      pageToken = res.nextPageToken;
      if (!pageToken) break;
    }
    expect(pageToken).toBe("");
    expect(seen).toHaveLength(placed.length);
    expect(new Set(seen)).toEqual(new Set(placed.map((o) => o.orderId)));
    const all = await api().list("batch-lister");
    expect(seen).toEqual(all.orders.map((o) => o.orderId));
  });
});

describe("paying and cancelling", () => {
  it("pays a CREATED order once: the same request again returns it PAID, another request is refused, and a PAID order cannot be cancelled", async () => {
    const sale = await stack.createSale();
    const placed = await api().place(sale.saleId, "payer");
    await api().created(placed.orderId, "payer");
    const paid = await api().pay(placed.orderId, "payer", "psp-1", "pay-once");
    expect(paid).toMatchObject({ orderId: placed.orderId, status: PAID, amountMinor: sale.priceMinor, currency: "EUR" });
    const again = await api().pay(placed.orderId, "payer", "psp-1", "pay-once");
    expect(again.status).toBe(PAID);
    expect(again.updatedAt!.getTime()).toBe(paid.updatedAt!.getTime());
    expect(await refusal(api().pay(placed.orderId, "payer", "psp-2", "pay-twice"))).toMatchObject({
      code: status.FAILED_PRECONDITION,
      reason: "ORDER_NOT_PAYABLE",
    });
    const row = await stack.db("orders").where({ id: placed.orderId }).first();
    expect(row).toMatchObject({ status: "PAID", payment_reference: "psp-1" });

    expect(await refusal(api().cancel(placed.orderId, "payer"))).toMatchObject({
      code: status.FAILED_PRECONDITION,
      reason: "ORDER_NOT_CANCELLABLE",
    });
    expect((await api().get(placed.orderId, "payer")).status).toBe(PAID);
    expect((await saleRow(sale.saleId)).sold).toBe(1);
    expect(await refusal(api().pay(placed.orderId, "payer", ""))).toMatchObject({ code: status.INVALID_ARGUMENT });
  });

  it("cancels a CREATED order: stock, sold and the buyer's units go back, the buyer may buy again, and cancelling again changes nothing", async () => {
    const sale = await stack.createSale({ totalStock: 1, perUserLimit: 1 });
    const placed = await api().place(sale.saleId, "canceller");
    await api().created(placed.orderId, "canceller");
    expect(await stockLeft(sale.saleId)).toBe(0);
    expect((await saleRow(sale.saleId)).sold).toBe(1);
    expect(await buyerUnits(sale.saleId, "canceller")).toBe(1);
    // The stock and the buyer's limit are both used up (retry=true skips the
    // in-process sold-out shortcut, so Redis answers with the limit).
    expect(await refusal(api().place(sale.saleId, "bystander"))).toMatchObject({ code: status.FAILED_PRECONDITION, reason: "SOLD_OUT" });
    expect(await refusal(api().place(sale.saleId, "canceller", 1, nextRequestId(), true))).toMatchObject({
      code: status.ALREADY_EXISTS,
      reason: "ALREADY_PURCHASED",
    });

    const cancelled = await api().cancel(placed.orderId, "canceller");
    expect(cancelled).toMatchObject({ orderId: placed.orderId, status: CANCELLED });
    // Postgres holds the release at once; Redis applies it from JetStream a moment later.
    await eventually(async () => (await stockLeft(sale.saleId)) === 1, 10_000, "the released unit back in Redis");
    expect((await saleRow(sale.saleId)).sold).toBe(0);
    expect(await buyerUnits(sale.saleId, "canceller")).toBe(0);
    expect((await api().get(placed.orderId, "canceller")).status).toBe(CANCELLED);

    const again = await api().cancel(placed.orderId, "canceller");
    expect(again).toMatchObject({ orderId: placed.orderId, status: CANCELLED });
    expect(again.updatedAt!.getTime()).toBe(cancelled.updatedAt!.getTime());
    expect(await stockLeft(sale.saleId)).toBe(1);
    expect((await saleRow(sale.saleId)).sold).toBe(0);

    expect(await refusal(api().pay(placed.orderId, "canceller"))).toMatchObject({
      code: status.FAILED_PRECONDITION,
      reason: "ORDER_NOT_PAYABLE",
    });

    // The same buyer, limit 1, buys the returned unit with a new request id.
    const rebought = await api().place(sale.saleId, "canceller");
    expect(rebought.orderId).not.toBe(placed.orderId);
    expect((await api().created(rebought.orderId, "canceller")).status).toBe(CREATED);
    expect(await stockLeft(sale.saleId)).toBe(0);
    expect((await saleRow(sale.saleId)).sold).toBe(1);
    expect(await buyerUnits(sale.saleId, "canceller")).toBe(1);
    const rows = await stack.db("orders").where({ sale_id: sale.saleId }).orderBy("created_at").select("id", "status");
    expect(rows).toEqual([
      { id: placed.orderId, status: "CANCELLED" },
      { id: rebought.orderId, status: "CREATED" },
    ]);
  });

  it("hides another user's order: NOT_FOUND for GetOrder, WatchOrder, PayOrder and CancelOrder", async () => {
    const sale = await stack.createSale();
    const placed = await api().place(sale.saleId, "owner");
    await api().created(placed.orderId, "owner");
    const notFound = { code: status.NOT_FOUND, reason: "NOT_FOUND" };

    expect(await refusal(api().get(placed.orderId, "intruder"))).toMatchObject(notFound);
    expect(await refusal(api().pay(placed.orderId, "intruder"))).toMatchObject(notFound);
    expect(await refusal(api().cancel(placed.orderId, "intruder"))).toMatchObject(notFound);
    const w = watch(stack.orders, placed.orderId, "intruder");
    const error = await w.done;
    expect(error).toBeDefined();
    expect(rejectionOf(error!)).toMatchObject(notFound);
    expect(w.orders).toEqual([]);

    // Untouched by the attempts.
    const mine = await api().get(placed.orderId, "owner");
    expect(mine.status).toBe(CREATED);
    expect((await saleRow(sale.saleId)).sold).toBe(1);
  });
});

describe("an order whose event is not written yet", () => {
  // A stack of its own whose writer is stopped, so orders stay PENDING until a
  // new writer is started.
  let paused: TestStack;
  let writer: WriterApp | undefined;
  beforeAll(async () => {
    paused = await startTestStack();
    await paused.writer.stop();
  });
  afterAll(async () => {
    await writer?.stop();
    await paused?.stop();
  });

  it("is PENDING on GetOrder and WatchOrder, hidden from other users, and streams CREATED and PAID once written", async () => {
    const c = clientFor(paused);
    const sale = await paused.createSale({ priceMinor: 4200 });
    const placed = await c.place(sale.saleId, "patient");
    const w = watch(paused.orders, placed.orderId, "patient");
    await eventually(async () => w.orders.length > 0, 5000, "the first WatchOrder message");
    expect(w.orders[0]).toMatchObject({ orderId: placed.orderId, status: PENDING, amountMinor: 0, currency: "" });
    expect((await c.get(placed.orderId, "patient")).status).toBe(PENDING);
    expect(await c.list("patient")).toMatchObject({ orders: [], nextPageToken: "" });

    const notFound = { code: status.NOT_FOUND, reason: "NOT_FOUND" };
    expect(await refusal(c.get(placed.orderId, "intruder"))).toMatchObject(notFound);
    expect(await refusal(c.pay(placed.orderId, "intruder"))).toMatchObject(notFound);
    expect(await refusal(c.cancel(placed.orderId, "intruder"))).toMatchObject(notFound);
    const spy = watch(paused.orders, placed.orderId, "intruder");
    expect(rejectionOf((await spy.done)!)).toMatchObject(notFound);
    // Neither payable nor cancellable before it is written.
    expect(await refusal(c.pay(placed.orderId, "patient"))).toMatchObject({ code: status.FAILED_PRECONDITION, reason: "ORDER_NOT_PAYABLE" });
    expect(await refusal(c.cancel(placed.orderId, "patient"))).toMatchObject({
      code: status.FAILED_PRECONDITION,
      reason: "ORDER_NOT_CANCELLABLE",
    });
    expect(w.statuses()).toEqual([PENDING]);

    writer = await startWriter(paused.config, quietLogger());
    await eventually(async () => w.statuses().includes(CREATED), 10_000, "CREATED on the stream");
    expect(w.orders[1]).toMatchObject({ status: CREATED, amountMinor: 4200, currency: "EUR" });
    await c.pay(placed.orderId, "patient");
    expect(await w.done).toBeUndefined();
    expect(w.statuses()).toEqual([PENDING, CREATED, PAID]);
  });
});
