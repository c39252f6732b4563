// kill -9 of Redis (a private instance; it keeps nothing on disk) in the middle
// of a sale, with acknowledged reservations still on their way to Postgres (the
// writer is paused), then a restart: Redis comes back empty. The sale fails
// closed (UNAVAILABLE) instead of selling from an empty Redis, until the writer
// has drained the stream; it is then rebuilt from Postgres and sells exactly
// its stock, the invariants holding.
import { status } from "@grpc/grpc-js";
import { callUnary, userMetadata } from "@seckill/sdk";
import { afterAll, beforeAll, expect, it } from "vitest";
import { saleKeys } from "../../services/inventory/stock-store.js";
import { startCrowd } from "../support/crowd.js";
import { startFaultStack, type FaultStack } from "../support/fault-stack.js";
import { checkInvariants } from "../support/invariants.js";
import { eventually, refusal } from "../support/stack.js";

let stack: FaultStack;
beforeAll(async () => {
  stack = await startFaultStack({ privateDependencies: ["redis"] });
});
afterAll(async () => {
  await stack?.stop();
});

it("fails closed after Redis restarts empty, rebuilds from Postgres once the queue drains, and sells exactly the stock", { timeout: 50_000 }, async () => {
  const stock = 40;
  const sale = await stack.createSale({ totalStock: stock, perUserLimit: 1 });
  const crowd = startCrowd(stack.orders, sale.saleId, { users: 200, arrivalMs: 8000 });
  await eventually(async () => crowd.progress.accepted >= 5, 20_000, "the first orders");

  // Acknowledged reservations pile up in JetStream, not yet in Postgres.
  await stack.kill("writer", "SIGSTOP");
  const acceptedAtPause = crowd.progress.accepted;
  await eventually(async () => crowd.progress.accepted >= acceptedAtPause + 5, 20_000, "a backlog of acknowledged reservations");

  await stack.kill("redis");
  expect(stack.state("redis")).toBe("dead");
  const failedAtKill = crowd.progress.failedCalls;
  await eventually(async () => crowd.progress.failedCalls >= failedAtKill + 5, 20_000, "purchases failing while Redis is down");

  await stack.restart("redis");
  // Empty: the sale's reservations are gone (only a rebuild from Postgres writes them back).
  const reservationsKey = saleKeys(stack.config.namespace, sale.saleId).reservations;
  await eventually(async () => (await stack.redis.exists(reservationsKey).catch(() => -1)) === 0, 5000, "the empty Redis");
  // Empty Redis, backlog not in Postgres: the sale must not sell (nor say SOLD_OUT).
  const probe = () =>
    callUnary(
      stack.orders,
      "placeOrder",
      { saleId: sale.saleId, quantity: 1, requestId: "probe-req", purchaseToken: "", retry: true },
      { metadata: userMetadata("probe-user"), deadlineMs: 3000 },
    );
  expect((await refusal(probe())).code).toBe(status.UNAVAILABLE);
  const acceptedClosed = crowd.progress.accepted;
  await new Promise((r) => setTimeout(r, 1000));
  expect((await refusal(probe())).code).toBe(status.UNAVAILABLE);
  expect(crowd.progress.accepted).toBe(acceptedClosed);
  expect(stack.state("writer")).toBe("stopped");

  await stack.kill("writer", "SIGCONT");
  const { purchases, failedCalls } = await crowd.done;
  expect(failedCalls.some((f) => f.code === status.UNAVAILABLE)).toBe(true);
  expect(purchases.filter((p) => p.answer.kind === "unanswered")).toEqual([]);
  await stack.drained();
  expect(crowd.progress.accepted).toBeGreaterThan(acceptedClosed); // it sold again after the rebuild
  expect(await checkInvariants(stack.db, sale.saleId, purchases, { redis: { client: stack.redis, namespace: stack.config.namespace } })).toEqual([]);
  expect(await stack.sold(sale.saleId)).toBe(stock);
});

it("never sells from a Redis that restarts from an old snapshot: the sale is rebuilt from Postgres and sells exactly the stock", { timeout: 50_000 }, async () => {
  const stock = 40;
  const sale = await stack.createSale({ totalStock: stock, perUserLimit: 1 });
  const crowd = startCrowd(stack.orders, sale.saleId, { users: 200, arrivalMs: 8000 });
  await eventually(async () => crowd.progress.accepted >= 8, 20_000, "the first orders");
  // A snapshot now (as RDB persistence or a lagging replica would keep), then more sales it will not have.
  await stack.redis.save();
  const atSnapshot = crowd.progress.accepted;
  await eventually(async () => crowd.progress.accepted >= atSnapshot + 8, 20_000, "sales after the snapshot");

  await stack.kill("redis");
  await stack.restart("redis");
  // It really came back with the old data.
  const persistence = await stack.redis.info("persistence");
  expect(Number(/rdb_last_load_keys_loaded:(\d+)/.exec(persistence)?.[1] ?? 0)).toBeGreaterThan(0);

  const { purchases } = await crowd.done;
  expect(purchases.filter((p) => p.answer.kind === "unanswered")).toEqual([]);
  await stack.drained();
  // The stale stock would have sold the post-snapshot units again: the writer would
  // have refused those orders and acknowledged buyers would have no order.
  expect(await checkInvariants(stack.db, sale.saleId, purchases, { redis: { client: stack.redis, namespace: stack.config.namespace } })).toEqual([]);
  expect(await stack.sold(sale.saleId)).toBe(stock);
});
