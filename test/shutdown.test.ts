// Shutdown of the order service: open WatchOrder streams end at once with
// UNAVAILABLE (so clients reconnect to another replica) instead of holding the
// drain open until the grace period runs out.
import { afterAll, beforeAll, expect, it } from "vitest";
import { status, type ServiceError } from "@grpc/grpc-js";
import { callUnary, rejectionOf, userMetadata, type WatchOrderResponse } from "@seckill/sdk";
import { startTestStack, type TestStack } from "./support/stack.js";

let stack: TestStack;
beforeAll(async () => {
  stack = await startTestStack({ SHUTDOWN_GRACE_MS: "30000" });
});
afterAll(async () => {
  await stack?.stop();
});

it("ends open WatchOrder streams with UNAVAILABLE when the order service stops", async () => {
  const sale = await stack.createSale({ totalStock: 3 });
  const { order } = await callUnary(
    stack.orders,
    "placeOrder",
    { saleId: sale.saleId, quantity: 1, requestId: "watch-me", purchaseToken: "", retry: false },
    { metadata: userMetadata("watcher") },
  );
  const stream = stack.orders.watchOrder({ orderId: order!.orderId }, userMetadata("watcher"), { deadline: Date.now() + 60_000 });
  const received: WatchOrderResponse[] = [];
  const ended = new Promise<ServiceError | "end">((resolve) => {
    stream.on("data", (m: WatchOrderResponse) => received.push(m));
    stream.on("error", (e: ServiceError) => resolve(e));
    stream.on("end", () => resolve("end"));
  });
  await new Promise((r) => setTimeout(r, 300));
  expect(received.length).toBeGreaterThan(0);

  const stopping = stack.order.stop();
  const outcome = await Promise.race([ended, new Promise<"still open">((r) => setTimeout(() => r("still open"), 10_000))]);
  expect(outcome).not.toBe("still open");
  expect(outcome).not.toBe("end");
  const refusal = rejectionOf(outcome as ServiceError);
  expect(refusal.code).toBe(status.UNAVAILABLE);
  expect(refusal.reason).toBe("OVERLOADED");
  await stopping;
});
