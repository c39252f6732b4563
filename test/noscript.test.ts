// Redis forgets its scripts on a restart (NOSCRIPT): the reservation path
// reloads them transparently, so a script-cache flush in the middle of a sale
// costs no purchase an error.
import { afterAll, beforeAll, expect, it } from "vitest";
import { callUnary, userMetadata } from "@seckill/sdk";
import { eventually, startTestStack, type TestStack } from "./support/stack.js";

let stack: TestStack;
beforeAll(async () => {
  stack = await startTestStack();
});
afterAll(async () => {
  await stack?.stop();
});

it("keeps selling through SCRIPT FLUSH, with every purchase answered and persisted", async () => {
  const sale = await stack.createSale({ totalStock: 400 });
  const buy = (i: number) =>
    callUnary(
      stack.orders,
      "placeOrder",
      { saleId: sale.saleId, quantity: 1, requestId: `noscript-${i}`, purchaseToken: "", retry: false },
      { metadata: userMetadata(`noscript-user-${i}`) },
    );
  const evalCalls = async () => Number(/cmdstat_eval:calls=(\d+)/.exec(await stack.redis.info("commandstats"))?.[1] ?? 0);
  const evalsBefore = await evalCalls();
  const waves: Promise<unknown>[] = [];
  for (let wave = 0; wave < 4; wave++) {
    await stack.redis.script("FLUSH");
    waves.push(Promise.all(Array.from({ length: 50 }, (_, k) => buy(wave * 50 + k))));
    await new Promise((r) => setTimeout(r, 20));
  }
  await Promise.all(waves);
  await eventually(async () => ((await stack.db("sales").where({ id: sale.saleId }).first()).sold as number) === 200, 10_000, "200 orders");
  const stock = await callUnary(stack.inventoryClient, "getStock", { saleId: sale.saleId });
  expect(stock.stockLeft).toBe(200);
  // The flushed script came back by EVAL after NOSCRIPT (not by luck of timing).
  expect(await evalCalls()).toBeGreaterThan(evalsBefore);
});
