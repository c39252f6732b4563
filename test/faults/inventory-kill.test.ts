// kill -9 of the inventory service in the middle of a sale: purchases fail with
// UNAVAILABLE while it is dead and the clients retry with the same request id;
// the restarted inventory answers each retry with its first reservation (or
// makes it now), and the sweeper republishes any reservation made before the
// kill whose event never reached JetStream (its buyer gave up). Nothing
// acknowledged is lost, nothing is doubled, nothing stays in Redis only.
import { status } from "@grpc/grpc-js";
import { afterAll, beforeAll, expect, it } from "vitest";
import { startCrowd } from "../support/crowd.js";
import { startFaultStack, type FaultStack } from "../support/fault-stack.js";
import { checkInvariants } from "../support/invariants.js";
import { eventually } from "../support/stack.js";

const SWEEP_AFTER_MS = 1500;

let stack: FaultStack;
beforeAll(async () => {
  stack = await startFaultStack({ env: { SWEEP_INTERVAL_MS: "200", SWEEP_AFTER_MS: String(SWEEP_AFTER_MS) } });
});
afterAll(async () => {
  await stack?.stop();
});

it("loses no acknowledged reservation when inventory is killed mid-sale and restarted", { timeout: 50_000 }, async () => {
  const stock = 40;
  const sale = await stack.createSale({ totalStock: stock, perUserLimit: 2 });
  // Patient buyers retry (a second click each, for the per-user limit); impatient ones never retry.
  const patient = startCrowd(stack.orders, sale.saleId, { users: 150, clicksPerUser: 2, arrivalMs: 8000, prefix: "patient" });
  const impatient = startCrowd(stack.orders, sale.saleId, { users: 50, arrivalMs: 8000, giveUpAfterMs: 0, prefix: "impatient" });
  await eventually(async () => patient.progress.accepted >= 5, 20_000, "the first orders");

  await stack.kill("inventory");
  expect(stack.state("inventory")).toBe("dead");
  const failedAtKill = patient.progress.failedCalls;
  await eventually(async () => patient.progress.failedCalls >= failedAtKill + 10, 20_000, "purchases failing while inventory is dead");

  await stack.restart("inventory");
  const [{ purchases: patientPurchases, failedCalls }, { purchases: impatientPurchases }] = await Promise.all([patient.done, impatient.done]);
  expect(failedCalls.some((f) => f.code === status.UNAVAILABLE)).toBe(true);
  expect(patientPurchases.filter((p) => p.answer.kind === "unanswered")).toEqual([]);

  await stack.drained();
  const purchases = [...patientPurchases, ...impatientPurchases];
  const redis = { client: stack.redis, namespace: stack.config.namespace };
  // Reservations whose buyers gave up during the kill reach Postgres through the sweeper.
  await eventually(
    async () => (await checkInvariants(stack.db, sale.saleId, purchases, { redis })).length === 0,
    SWEEP_AFTER_MS * 2 + 15_000,
    "the sweeper to republish reservations without an event",
  ).catch(() => undefined);
  expect(await checkInvariants(stack.db, sale.saleId, purchases, { redis })).toEqual([]);
  expect(await stack.sold(sale.saleId)).toBe(stock);
});
