// kill -9 of NATS (a private nats-server with its JetStream store on disk) in
// the middle of a sale, then a restart on the same port and store: publishes
// fail while it is down (the buyers retry with the same request id), the
// services reconnect, the writer drains what the stream kept, and no
// acknowledged reservation is lost or doubled.
import { status } from "@grpc/grpc-js";
import { afterAll, beforeAll, expect, it } from "vitest";
import { startCrowd } from "../support/crowd.js";
import { startFaultStack, type FaultStack } from "../support/fault-stack.js";
import { checkInvariants } from "../support/invariants.js";
import { eventually } from "../support/stack.js";

let stack: FaultStack;
beforeAll(async () => {
  stack = await startFaultStack({
    privateDependencies: ["nats"],
    // Acks the writer sent while NATS was down are lost: those events come back after AckWait (2 s here, not 30).
    env: { WRITER_ACK_WAIT_MS: "2000", SWEEP_INTERVAL_MS: "200", SWEEP_AFTER_MS: "1500" },
  });
});
afterAll(async () => {
  await stack?.stop();
});

it("loses no acknowledged reservation when NATS is killed mid-sale and restarted with its store", { timeout: 50_000 }, async () => {
  const stock = 40;
  const sale = await stack.createSale({ totalStock: stock, perUserLimit: 1 });
  const crowd = startCrowd(stack.orders, sale.saleId, { users: 200, arrivalMs: 8000 });
  await eventually(async () => crowd.progress.accepted >= 5, 20_000, "the first orders");

  await stack.kill("nats");
  expect(stack.state("nats")).toBe("dead");
  const failedAtKill = crowd.progress.failedCalls;
  await eventually(async () => crowd.progress.failedCalls >= failedAtKill + 5, 20_000, "purchases failing while NATS is down");

  await stack.restart("nats");
  await stack.waitServing();
  const { purchases, failedCalls } = await crowd.done;
  expect(failedCalls.some((f) => f.code === status.UNAVAILABLE)).toBe(true);
  expect(purchases.filter((p) => p.answer.kind === "unanswered")).toEqual([]);

  await stack.drained();
  const redis = { client: stack.redis, namespace: stack.config.namespace };
  await eventually(async () => (await checkInvariants(stack.db, sale.saleId, purchases, { redis })).length === 0, 15_000, "the invariants").catch(() => undefined);
  expect(await checkInvariants(stack.db, sale.saleId, purchases, { redis })).toEqual([]);
  expect(await stack.sold(sale.saleId)).toBe(stock);
});
