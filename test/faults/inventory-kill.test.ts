// kill -9 of the inventory service in the middle of a sale: purchases fail with
// UNAVAILABLE while it is dead and the clients retry with the same request id;
// the restarted inventory answers each retry with its first reservation (or
// makes it now). A reservation made but never published (inventory died
// waiting for the PubAck) whose buyer gave up is republished by the sweeper.
// Nothing acknowledged is lost, nothing is doubled, nothing stays in Redis only.
import { status } from "@grpc/grpc-js";
import { afterAll, beforeAll, expect, it } from "vitest";
import { startCrowd } from "../support/crowd.js";
import { startFaultStack, type FaultStack } from "../support/fault-stack.js";
import { checkInvariants } from "../support/invariants.js";
import { eventually } from "../support/stack.js";

/** Long enough that the restarted inventory is up before the sweeper republishes anything. */
const SWEEP_AFTER_MS = 12_000;

let stack: FaultStack;
beforeAll(async () => {
  // A private NATS, so that the second test can pause it and lose what it had not stored.
  stack = await startFaultStack({
    privateDependencies: ["nats"],
    // Acks lost with the killed NATS come back after AckWait: 2 s here, not 30.
    env: { WRITER_ACK_WAIT_MS: "2000", SWEEP_INTERVAL_MS: "200", SWEEP_AFTER_MS: String(SWEEP_AFTER_MS) },
  });
});
afterAll(async () => {
  await stack?.stop();
});

const redis = () => ({ client: stack.redis, namespace: stack.config.namespace });

it("loses no acknowledged reservation when inventory is killed mid-sale and restarted", { timeout: 50_000 }, async () => {
  const stock = 40;
  const sale = await stack.createSale({ totalStock: stock, perUserLimit: 2 });
  // A second click per buyer, with a new request id, for the per-user limit.
  const crowd = startCrowd(stack.orders, sale.saleId, { users: 200, clicksPerUser: 2, arrivalMs: 8000 });
  await eventually(async () => crowd.progress.accepted >= 5, 20_000, "the first orders");

  await stack.kill("inventory");
  expect(stack.state("inventory")).toBe("dead");
  const failedAtKill = crowd.progress.failedCalls;
  await eventually(async () => crowd.progress.failedCalls >= failedAtKill + 10, 20_000, "purchases failing while inventory is dead");

  await stack.restart("inventory");
  const { purchases, failedCalls } = await crowd.done;
  expect(failedCalls.some((f) => f.code === status.UNAVAILABLE)).toBe(true);
  expect(purchases.filter((p) => p.answer.kind === "unanswered")).toEqual([]);
  await stack.drained();
  expect(await checkInvariants(stack.db, sale.saleId, purchases, { redis: redis() })).toEqual([]);
  expect(await stack.sold(sale.saleId)).toBe(stock);
});

it("sweeps the reservations inventory made but never published when it was killed", { timeout: 50_000 }, async () => {
  const stock = 40;
  const sale = await stack.createSale({ totalStock: stock, perUserLimit: 1 });
  // Buyers who never retry: a reservation whose publish died has nobody to publish it again.
  const crowd = startCrowd(stack.orders, sale.saleId, { users: 150, arrivalMs: 4000, giveUpAfterMs: 0 });
  await eventually(async () => crowd.progress.accepted >= 5, 20_000, "the first orders");

  // NATS stops answering: reservations are made in Redis, their publishes wait for a PubAck.
  await stack.kill("nats", "SIGSTOP");
  await new Promise((r) => setTimeout(r, 1000));
  await stack.kill("inventory");
  await stack.kill("nats"); // what it had received but not stored is gone
  expect(stack.state("inventory")).toBe("dead");
  await stack.restart("nats");
  await stack.restart("inventory");
  await stack.waitServing();
  const { purchases } = await crowd.done;
  await stack.drained();

  // The fault left reservations in Redis that no event carries...
  const stuck = (await checkInvariants(stack.db, sale.saleId, purchases, { redis: redis() })).filter((a) => a.kind === "stuck");
  expect(stuck).toHaveLength(1);
  // ...until the sweeper republishes them.
  await eventually(
    async () => (await checkInvariants(stack.db, sale.saleId, purchases, { redis: redis() })).length === 0,
    SWEEP_AFTER_MS + 15_000,
    "the sweeper to republish the reservations without an event",
  ).catch(() => undefined);
  expect(await checkInvariants(stack.db, sale.saleId, purchases, { redis: redis() })).toEqual([]);
});
