// A sale whose Redis state is lost (a Redis restart without persistence) is
// never reloaded blindly: it fails closed with UNAVAILABLE until every
// reservation acknowledged before the loss is in Postgres, is then rebuilt
// from Postgres (stock, buyers, request ids), and sells on without overselling.
import { afterAll, beforeAll, expect, it } from "vitest";
import { status } from "@grpc/grpc-js";
import { callUnary, Reason, userMetadata } from "@seckill/sdk";
import { saleKeys } from "../services/inventory/stock-store.js";
import { eventually, refusal, startTestStack, type TestStack } from "./support/stack.js";

let stack: TestStack;
beforeAll(async () => {
  stack = await startTestStack();
});
afterAll(async () => {
  await stack?.stop();
});

const buy = (saleId: string, user: string, requestId: string, retry = false) =>
  callUnary(
    stack.orders,
    "placeOrder",
    { saleId, quantity: 1, requestId, purchaseToken: "", retry },
    { metadata: userMetadata(user) },
  );

/** What a Redis restart without persistence does to one sale. */
async function loseRedisState(saleId: string): Promise<void> {
  await stack.redis.del(...Object.values(saleKeys(stack.config.namespace, saleId)));
}

it("fails closed while acknowledged reservations are still on their way to Postgres, then rebuilds and sells exactly the stock", async () => {
  const sale = await stack.createSale({ totalStock: 10, perUserLimit: 1 });
  // Three reservations are acknowledged while the writer is stopped: they sit in JetStream.
  await stack.writer.writer.stop();
  const early = await Promise.all([0, 1, 2].map((i) => buy(sale.saleId, `early-${i}`, `early-req-${i}`)));
  await loseRedisState(sale.saleId);

  const closed = await refusal(buy(sale.saleId, "during-loss", "loss-req"));
  expect(closed).toMatchObject({ code: status.UNAVAILABLE, reason: "OVERLOADED" });
  expect((await refusal(callUnary(stack.sales, "getSaleStatus", { saleId: sale.saleId }))).code).toBe(status.UNAVAILABLE);

  // The writer comes back (a new one on the same durable consumer) and drains the backlog.
  const { startWriter } = await import("../services/order/writer/app.js");
  const { quietLogger } = await import("../services/common/log.js");
  const writer = await startWriter(stack.config, quietLogger());
  try {
    await eventually(async () => ((await stack.db("sales").where({ id: sale.saleId }).first()).sold as number) === 3, 10_000, "the backlog");
    // Rebuilt from Postgres: 7 left, the early buyers still at their limit, their request ids remembered.
    await eventually(async () => {
      try {
        await buy(sale.saleId, "after-loss", "after-req");
        return true;
      } catch {
        return false;
      }
    }, 10_000, "the sale to be rebuilt");
    expect((await callUnary(stack.inventoryClient, "getStock", { saleId: sale.saleId })).stockLeft).toBe(6);
    expect((await refusal(buy(sale.saleId, "early-0", "early-again"))).reason).toBe("ALREADY_PURCHASED");
    const replay = await buy(sale.saleId, "early-1", "early-req-1", true);
    expect(replay.order!.orderId).toBe(early[1].order!.orderId);

    // The rest of the stock sells to a crowd; nothing more.
    const crowd = await Promise.allSettled(Array.from({ length: 30 }, (_, i) => buy(sale.saleId, `crowd-${i}`, `crowd-req-${i}`)));
    expect(crowd.filter((r) => r.status === "fulfilled")).toHaveLength(6);
    await eventually(async () => ((await stack.db("sales").where({ id: sale.saleId }).first()).sold as number) === 10, 10_000, "all ten orders");
    await new Promise((r) => setTimeout(r, 300));
    expect(await stack.db("orders").where({ sale_id: sale.saleId }).count({ n: "*" })).toEqual([{ n: 10 }]);
  } finally {
    await writer.stop();
  }
});

it("refuses only the lost sale's items in a Reserve batch; the other sale's items are reserved", async () => {
  const lost = await stack.createSale({ totalStock: 5 });
  const healthy = await stack.createSale({ totalStock: 5 });
  await buy(lost.saleId, "before", "before-req");
  await stack.writer.writer.stop(); // keeps the lost sale's rebuild waiting
  await buy(lost.saleId, "pending", "pending-req");
  await loseRedisState(lost.saleId);
  const { results } = await callUnary(stack.inventoryClient, "reserve", {
    items: [
      { saleId: lost.saleId, userId: "a", requestId: "batch-a", quantity: 1 },
      { saleId: healthy.saleId, userId: "b", requestId: "batch-b", quantity: 1 },
    ],
  });
  expect(results.map((r) => r.reason)).toEqual([Reason.REASON_OVERLOADED, Reason.REASON_UNSPECIFIED]);
  expect(results[1].reservationId.startsWith(healthy.saleId)).toBe(true);
});
