// Reconciling a sale on demand (SaleService.ReconcileSale and `seckill sale
// reconcile`): a healthy sale reports no difference; each kind of damage to its
// Redis state is reported; repair rebuilds it from Postgres; nothing is
// compared (or repaired) while the writer still has events to write.
import { afterAll, beforeAll, expect, it } from "vitest";
import { status } from "@grpc/grpc-js";
import { jetstreamManager } from "@nats-io/jetstream";
import { callUnary, userMetadata, type ReconcileSaleResponse } from "@seckill/sdk";
import { saleKeys } from "../services/inventory/stock-store.js";
import { connectNats, eventNames } from "../services/common/event-bus.js";
import { runCli } from "../cli/src/program.js";
import type { Io } from "../cli/src/context.js";
import { eventually, refusal, startTestStack, writerDrained, type TestStack } from "./support/stack.js";

let stack: TestStack;
beforeAll(async () => {
  // The watcher would repair a lost sale before the test looks at it.
  stack = await startTestStack({ REDIS_CHECK_INTERVAL_MS: "60000" });
});
afterAll(async () => {
  await stack?.stop();
});

const buy = (saleId: string, user: string, requestId = `req-${user}`) =>
  callUnary(stack.orders, "placeOrder", { saleId, quantity: 1, requestId, purchaseToken: "", retry: false }, { metadata: userMetadata(user) });

const reconcile = (saleId: string, repair = false) => callUnary(stack.sales, "reconcileSale", { saleId, repair });
const kinds = (r: ReconcileSaleResponse) => r.differences.map((d) => d.kind).sort();

/** A sale with `sold` orders, all of them in Postgres and the writer idle. */
async function saleWithOrders(sold: number, totalStock = 10) {
  const sale = await stack.createSale({ totalStock });
  const orders = await Promise.all(Array.from({ length: sold }, (_, i) => buy(sale.saleId, `u${i}`)));
  await eventually(async () => (await reconcile(sale.saleId)).queue!.drained && (await stack.db("orders").where({ sale_id: sale.saleId })).length === sold, 10_000, "the orders");
  return { sale, orderIds: orders.map((o) => o.order!.orderId) };
}

async function cli(...args: string[]) {
  const out: string[] = [];
  const io: Io = { out: (t) => out.push(t), err: (t) => out.push(t), stderr: { write: () => true, isTTY: false } };
  const code = await runCli(["--inventory", stack.inventory.address, "--order", stack.order.address, ...args], io);
  return { code, stdout: out.join("\n") };
}

it("reports no difference for a healthy sale, with the three views", async () => {
  const { sale } = await saleWithOrders(3);
  const report = await reconcile(sale.saleId);
  expect(report.differences).toEqual([]);
  expect(report.redis).toMatchObject({ loaded: true, stockLeft: 7, reservations: 3, reservedUnits: 3, released: 0, buyerUnits: 3 });
  expect(report.postgres).toMatchObject({ totalStock: 10, sold: 3, orders: 3, liveUnits: 3, released: 0, usersOverLimit: 0 });
  expect(report.repaired).toBe(false);

  const { code, stdout } = await cli("sale", "reconcile", sale.saleId);
  expect(code).toBe(0);
  expect(stdout).toContain("no differences");
});

it("reports each kind of damage to the Redis state, and repair rebuilds it from Postgres", async () => {
  const { sale, orderIds } = await saleWithOrders(3);
  const keys = saleKeys(stack.config.namespace, sale.saleId);
  await stack.redis
    .multi()
    .incrby(keys.stock, 2) // two units that Postgres does not know are free
    .hdel(keys.reservations, orderIds[0]) // an order Redis forgot
    .hset(keys.reservations, `${sale.saleId}-01M00000000000000000000000`, `1|${Date.now()}|ghost|ghost-req`) // a reservation Postgres never saw
    .hset(keys.buyers, "u1", 0) // a buyer Redis lets buy again
    .exec();

  const damaged = await reconcile(sale.saleId);
  expect(kinds(damaged)).toEqual(["BUYER_MISMATCH", "MISSING_IN_POSTGRES", "MISSING_IN_REDIS", "STOCK_MISMATCH"]);
  expect(damaged.differences.find((d) => d.kind === "MISSING_IN_REDIS")!.examples).toEqual([orderIds[0]]);
  expect(damaged.differences.find((d) => d.kind === "BUYER_MISMATCH")!.examples).toEqual(["u1"]);
  expect(damaged.repaired).toBe(false);

  const { code, stdout } = await cli("sale", "reconcile", sale.saleId);
  expect(code).toBe(1);
  expect(stdout).toContain("STOCK_MISMATCH");

  const repaired = await reconcile(sale.saleId, true);
  expect(repaired.repaired).toBe(true);
  expect(repaired.differences).toEqual([]);
  expect(repaired.redis).toMatchObject({ loaded: true, stockLeft: 7, reservations: 3 });
  expect((await refusal(buy(sale.saleId, "u1", "another-request"))).reason).toBe("ALREADY_PURCHASED");
});

it("reports a lost sale, and a cancelled order whose release Redis has not applied", async () => {
  const { sale, orderIds } = await saleWithOrders(2);
  // The release reaches Postgres and Redis; then Redis is made to have missed it.
  await callUnary(stack.orders, "cancelOrder", { orderId: orderIds[0], requestId: "cancel-1" }, { metadata: userMetadata("u0") });
  const keys = saleKeys(stack.config.namespace, sale.saleId);
  await eventually(async () => (await stack.redis.sismember(keys.released, orderIds[0])) === 1, 10_000, "the release in Redis");
  await stack.redis.multi().srem(keys.released, orderIds[0]).decr(keys.stock).hincrby(keys.buyers, "u0", 1).exec();
  expect(kinds(await reconcile(sale.saleId))).toEqual(["RELEASE_NOT_APPLIED", "STOCK_MISMATCH", "BUYER_MISMATCH"].sort());

  await stack.redis.del(...Object.values(keys));
  expect(kinds(await reconcile(sale.saleId))).toEqual(["REDIS_NOT_LOADED"]);
  const repaired = await reconcile(sale.saleId, true);
  expect(repaired.differences).toEqual([]);
  expect(repaired.redis).toMatchObject({ loaded: true, stockLeft: 9, released: 1 });
});

it("compares nothing and repairs nothing while the writer has events to write", async () => {
  const { sale } = await saleWithOrders(1);
  await stack.writer.writer.stop();
  await buy(sale.saleId, "late");
  const report = await reconcile(sale.saleId);
  expect(kinds(report)).toEqual(["QUEUE_NOT_DRAINED"]);
  expect(report.queue!.drained).toBe(false);
  await stack.redis.incrby(saleKeys(stack.config.namespace, sale.saleId).stock, 1);
  const refused = await refusal(reconcile(sale.saleId, true));
  expect(refused).toMatchObject({ code: status.UNAVAILABLE, reason: "OVERLOADED" });
  // Untouched: the sale still sells from its Redis state.
  expect((await callUnary(stack.inventoryClient, "getStock", { saleId: sale.saleId })).stockLeft).toBe(9);

  const { startWriter } = await import("../services/order/writer/app.js");
  const { quietLogger } = await import("../services/common/log.js");
  const writer = await startWriter(stack.config, quietLogger());
  try {
    const nc = await connectNats(stack.config.natsUrl, "test");
    const jsm = await jetstreamManager(nc);
    const info = await jsm.streams.info(eventNames(stack.config.namespace).stream);
    await writerDrained(jsm, stack.config.namespace, info.state.last_seq);
    await nc.close();
    expect(kinds(await reconcile(sale.saleId))).toEqual(["STOCK_MISMATCH"]);
    expect((await reconcile(sale.saleId, true)).differences).toEqual([]);
  } finally {
    await writer.stop();
  }
});

it("refuses a malformed or unknown sale id", async () => {
  expect((await refusal(reconcile("nope"))).code).toBe(status.INVALID_ARGUMENT);
  expect((await refusal(reconcile("01M00000000000000000000000"))).code).toBe(status.NOT_FOUND);
});
