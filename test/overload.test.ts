// Load shedding: past MAX_IN_FLIGHT unary calls in progress, a server refuses
// new ones at once with UNAVAILABLE (OVERLOADED, retry hint) instead of
// queueing them; what it admitted is served normally and nothing refused
// leaves a trace.
import { afterAll, beforeAll, expect, it } from "vitest";
import { credentials, status, type ServiceError } from "@grpc/grpc-js";
import { callUnary, OrderServiceClient, rejectionOf, userMetadata } from "@seckill/sdk";
import { eventually, startTestStack, type TestStack } from "./support/stack.js";

let stack: TestStack;
beforeAll(async () => {
  stack = await startTestStack({ MAX_IN_FLIGHT: "8" });
});
afterAll(async () => {
  await stack?.stop();
});

it("refuses calls beyond the in-flight limit with OVERLOADED and a retry hint, and persists exactly what it admitted", async () => {
  const sale = await stack.createSale({ totalStock: 1000 });
  // HTTP/2 lets one connection open only twice MAX_IN_FLIGHT streams (the client
  // queues the rest): the flood comes over several connections, as from many clients.
  const clients = Array.from({ length: 6 }, () => new OrderServiceClient(stack.order.address, credentials.createInsecure(), { "grpc.use_local_subchannel_pool": 1 }));
  const outcomes = await Promise.all(
    Array.from({ length: 300 }, (_, i) =>
      callUnary(
        clients[i % clients.length],
        "placeOrder",
        { saleId: sale.saleId, quantity: 1, requestId: `flood-${i}`, purchaseToken: "", retry: false },
        { metadata: userMetadata(`flood-user-${i}`) },
      ).then(
        () => "ok" as const,
        (error: ServiceError) => rejectionOf(error),
      ),
    ),
  );
  for (const client of clients) client.close();
  const admitted = outcomes.filter((o) => o === "ok").length;
  const shed = outcomes.filter((o) => o !== "ok");
  expect(admitted).toBeGreaterThan(0);
  expect(shed.length).toBeGreaterThan(0);
  for (const refusal of shed) {
    expect(refusal).toMatchObject({ code: status.UNAVAILABLE, reason: "OVERLOADED" });
    expect(refusal.retryDelayMs).toBeGreaterThan(0);
  }
  await eventually(async () => ((await stack.db("sales").where({ id: sale.saleId }).first()).sold as number) === admitted, 10_000, "the admitted orders");
  await new Promise((r) => setTimeout(r, 300));
  expect(await stack.db("orders").where({ sale_id: sale.saleId }).count({ n: "*" })).toEqual([{ n: admitted }]);
  const stock = await callUnary(stack.inventoryClient, "getStock", { saleId: sale.saleId });
  expect(stock.stockLeft).toBe(1000 - admitted);
});
