// The writer gathers reservations that arrive within WRITER_LINGER_MS into one
// transaction, and does not wait out the linger once a batch is full.
import { afterAll, beforeAll, expect, it } from "vitest";
import { callUnary, userMetadata } from "@seckill/sdk";
import { eventually, startTestStack, type TestStack } from "./support/stack.js";

let stack: TestStack;
beforeAll(async () => {
  // A linger far longer than the test: only a full batch can get written in time.
  stack = await startTestStack({ WRITER_LINGER_MS: "10000", WRITER_BATCH_SIZE: "4" });
});
afterAll(async () => {
  await stack?.stop();
});

const buy = (saleId: string, i: number) =>
  callUnary(stack.orders, "placeOrder", { saleId, quantity: 1, requestId: `linger-${i}`, purchaseToken: "", retry: false }, { metadata: userMetadata(`linger-user-${i}`) });
const persisted = async (saleId: string) => Number((await stack.db("orders").where({ sale_id: saleId }).count({ n: "*" }))[0].n);

it("gathers purchases made one after another into one transaction, written as soon as the batch is full", async () => {
  const sale = await stack.createSale({ totalStock: 100 });
  const before = stack.writer.writer.stats.batches;
  for (let i = 0; i < 3; i++) await buy(sale.saleId, i);
  await new Promise((r) => setTimeout(r, 300));
  expect(await persisted(sale.saleId)).toBe(0);
  await buy(sale.saleId, 3);
  await eventually(async () => (await persisted(sale.saleId)) === 4, 5_000, "the four orders");
  expect(stack.writer.writer.stats.batches - before).toBe(1);
});
