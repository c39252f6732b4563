// The purchase path end to end on real Redis, Postgres, NATS JetStream and
// real gRPC servers: the flood sells exactly the stock. On one Redis and NATS
// server, then on a Redis Cluster and a NATS cluster.
import { afterAll, beforeAll, describe, expect, it } from "vitest";
import { status, type ServiceError } from "@grpc/grpc-js";
import { callUnary, OrderStatus, rejectionOf, userMetadata } from "@seckill/sdk";
import { STACK_START_MS, stackEnvironments } from "./support/environments.js";
import { eventually, type TestStack } from "./support/stack.js";

let stack: TestStack;

const place = (saleId: string, userId: string, requestId: string, quantity = 1, retry = false) =>
  callUnary(stack.orders, "placeOrder", { saleId, quantity, requestId, purchaseToken: "", retry }, { metadata: userMetadata(userId) });

/** As a well-behaved client buys: on UNAVAILABLE, back off from the server's hint and retry with the same request id. */
async function placeWithRetries(saleId: string, userId: string, requestId: string) {
  for (let attempt = 1; ; attempt++) {
    try {
      return await place(saleId, userId, requestId, 1, attempt > 1);
    } catch (error) {
      const refusal = rejectionOf(error as ServiceError);
      if (refusal.code !== status.UNAVAILABLE || attempt === 30) throw error;
      const backoff = Math.min(1000, (refusal.retryDelayMs ?? 50) * 2 ** Math.min(attempt - 1, 5));
      await new Promise((r) => setTimeout(r, backoff * (0.5 + Math.random())));
    }
  }
}

async function ordersInPostgres(saleId: string) {
  return stack.db("orders").where({ sale_id: saleId }).select("id", "user_id", "quantity", "status");
}

for (const environment of stackEnvironments()) {
  describe(`a storm of buyers on ${environment.name}`, () => {
    beforeAll(async () => {
      stack = await environment.startStack();
    }, STACK_START_MS);
    afterAll(() => environment.stop());

    it("sells exactly the stock, persists exactly those orders, and keeps every user within the limit", async () => {
      const stock = 60;
      const limit = 2;
      const sale = await stack.createSale({ totalStock: stock, perUserLimit: limit });
      const users = 300;
      const attemptsPerUser = 4;

      const outcomes = await Promise.all(
        Array.from({ length: users * attemptsPerUser }, (_, i) => {
          const user = `user-${i % users}`;
          return placeWithRetries(sale.saleId, user, `req-${i}`).then(
            (res) => ({ ok: true as const, user, orderId: res.order!.orderId, status: res.order!.status }),
            (err: ServiceError) => ({ ok: false as const, user, code: err.code, reason: rejectionOf(err).reason }),
          );
        }),
      );

      const accepted = outcomes.filter((o) => o.ok);
      expect(accepted).toHaveLength(stock);
      expect(new Set(accepted.map((o) => o.ok && o.orderId)).size).toBe(stock);
      for (const o of accepted) if (o.ok) expect(o.status).toBe(OrderStatus.ORDER_STATUS_PENDING);

      const refused = outcomes.filter((o) => !o.ok);
      for (const o of refused) {
        if (o.ok) continue;
        expect([status.FAILED_PRECONDITION, status.ALREADY_EXISTS]).toContain(o.code);
        expect(["SOLD_OUT", "ALREADY_PURCHASED"]).toContain(o.reason);
      }

      const perUser = new Map<string, number>();
      for (const o of accepted) perUser.set(o.user, (perUser.get(o.user) ?? 0) + 1);
      expect(Math.max(...perUser.values())).toBeLessThanOrEqual(limit);

      await eventually(async () => (await ordersInPostgres(sale.saleId)).length >= stock, 20_000, "orders in Postgres");
      const rows = await ordersInPostgres(sale.saleId);
      expect(rows).toHaveLength(stock);
      expect(new Set(rows.map((r) => r.id))).toEqual(new Set(accepted.map((o) => o.ok && o.orderId)));
      const saleRow = await stack.db("sales").where({ id: sale.saleId }).first();
      expect(saleRow.sold).toBe(stock);
      const overLimit = await stack.db("sale_buyers").where({ sale_id: sale.saleId }).andWhere("units", ">", limit);
      expect(overLimit).toHaveLength(0);

      const status_ = await callUnary(stack.sales, "getSaleStatus", { saleId: sale.saleId });
      expect(status_.stockLeft).toBe(0);
    });

    it("gives the same request id one reservation and one order, however often it is sent at once", async () => {
      const sale = await stack.createSale({ totalStock: 5 });
      const results = await Promise.all(Array.from({ length: 25 }, () => place(sale.saleId, "replayer", "same-request")));
      const ids = new Set(results.map((r) => r.order!.orderId));
      expect(ids.size).toBe(1);
      const [orderId] = ids;
      await eventually(async () => (await ordersInPostgres(sale.saleId)).length === 1, 10_000, "the order");
      // Sent again later, after the order exists: still the same answer, still one order.
      const again = await place(sale.saleId, "replayer", "same-request");
      expect(again.order!.orderId).toBe(orderId);
      await new Promise((r) => setTimeout(r, 300));
      expect(await ordersInPostgres(sale.saleId)).toHaveLength(1);
      const stockNow = await callUnary(stack.inventoryClient, "getStock", { saleId: sale.saleId });
      expect(stockNow.stockLeft).toBe(4);
    });

    it("answers SOLD_OUT from the in-process flag once sold out, and a retry still gets its first answer", async () => {
      const sale = await stack.createSale({ totalStock: 1 });
      const winner = await place(sale.saleId, "early", "r1");
      const err = await place(sale.saleId, "late", "r2").catch((e: ServiceError) => e);
      expect(rejectionOf(err as ServiceError)).toMatchObject({ code: status.FAILED_PRECONDITION, reason: "SOLD_OUT" });
      // The winner's retry (flagged as such) skips the shortcut and gets its reservation back.
      const retried = await callUnary(
        stack.orders,
        "placeOrder",
        { saleId: sale.saleId, quantity: 1, requestId: "r1", purchaseToken: "", retry: true },
        { metadata: userMetadata("early") },
      );
      expect(retried.order!.orderId).toBe(winner.order!.orderId);
    });

    it("answers a sold-out sale's bad requests as before the sell-out: the shortcut only answers what the handler would", async () => {
      const sale = await stack.createSale({ totalStock: 1 });
      await place(sale.saleId, "early", "q1");
      const answer = (userId: string, request: Partial<{ requestId: string; quantity: number; purchaseToken: string }>) =>
        callUnary(
          stack.orders,
          "placeOrder",
          { saleId: sale.saleId, quantity: 1, requestId: "q2", purchaseToken: "", retry: false, ...request },
          {
            metadata: userMetadata(userId),
          },
        ).then(
          () => ({ code: status.OK, reason: undefined }),
          (error: ServiceError) => rejectionOf(error),
        );
      expect(await answer("late", {})).toMatchObject({ code: status.FAILED_PRECONDITION, reason: "SOLD_OUT" });
      expect(await answer("late", { requestId: "no spaces allowed" })).toMatchObject({ code: status.INVALID_ARGUMENT });
      expect(await answer("late", { quantity: 101 })).toMatchObject({ code: status.INVALID_ARGUMENT });
      expect(await answer("late", { purchaseToken: "x".repeat(5000) })).toMatchObject({ code: status.INVALID_ARGUMENT });
      expect(await answer("", {})).toMatchObject({ code: status.UNAUTHENTICATED });
    });
  });
}
