// The invariant checker the fault tests rely on must see what it is there to
// see: a sale in order passes, and each kind of damage is reported.
import { afterAll, beforeAll, expect, it } from "vitest";
import { status } from "@grpc/grpc-js";
import { callUnary, userMetadata } from "@seckill/sdk";
import { saleKeys } from "../../services/inventory/stock-store.js";
import type { Purchase } from "../support/crowd.js";
import { checkInvariants } from "../support/invariants.js";
import { eventually, startTestStack, type TestStack } from "../support/stack.js";

let stack: TestStack;
beforeAll(async () => {
  stack = await startTestStack();
});
afterAll(async () => {
  await stack?.stop();
});

async function buy(saleId: string, userId: string, requestId: string): Promise<Purchase> {
  const { order } = await callUnary(stack.orders, "placeOrder", { saleId, quantity: 1, requestId, purchaseToken: "", retry: false }, { metadata: userMetadata(userId) });
  return { userId, requestId, quantity: 1, calls: 1, answer: { kind: "accepted", orderId: order!.orderId } };
}

it("passes a healthy sale and reports lost, doubled, refused-but-ordered, miscounted and stuck reservations", async () => {
  const sale = await stack.createSale({ totalStock: 5, perUserLimit: 1 });
  const purchases = await Promise.all([0, 1, 2].map((i) => buy(sale.saleId, `u${i}`, `r${i}`)));
  await eventually(async () => (await stack.db("orders").where({ sale_id: sale.saleId })).length === 3, 10_000, "the orders");
  const redis = { client: stack.redis, namespace: stack.config.namespace };
  expect(await checkInvariants(stack.db, sale.saleId, purchases, { redis })).toEqual([]);

  const lostId = `${sale.saleId}-01JZZZZZZZZZZZZZZZZZZZZZZZ`;
  const told: Purchase[] = [
    ...purchases,
    { userId: "u9", requestId: "r9", quantity: 1, calls: 1, answer: { kind: "accepted", orderId: lostId } },
    { ...purchases[0], answer: { kind: "accepted", orderId: lostId } },
    { ...purchases[1], answer: { kind: "refused", code: status.FAILED_PRECONDITION, reason: "SOLD_OUT" } },
  ];
  await stack.db("sales").where({ id: sale.saleId }).update({ sold: 2 });
  await stack.redis.hset(saleKeys(stack.config.namespace, sale.saleId).reservations, lostId, "1|0|u9|r9");
  const kinds = (await checkInvariants(stack.db, sale.saleId, told, { redis })).map((a) => a.kind).sort();
  expect(kinds).toEqual(["inconsistent answers", "lost", "lost", "sold mismatch", "stock mismatch", "stuck"]);

  const refusedFirst: Purchase[] = [{ ...purchases[2], answer: { kind: "refused", code: status.FAILED_PRECONDITION, reason: "SOLD_OUT" } }];
  await stack.db("sale_buyers").where({ sale_id: sale.saleId, user_id: "u0" }).update({ units: 0 });
  const more = (await checkInvariants(stack.db, sale.saleId, refusedFirst)).map((a) => a.kind).sort();
  expect(more).toEqual(["buyers mismatch", "refused but ordered", "sold mismatch"]);
});
