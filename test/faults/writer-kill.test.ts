// kill -9 of the order writer in the middle of a sale: purchases go on (they
// wait in JetStream), the restarted writer drains the backlog, including the
// events the dead one had taken but not acked, and no order is lost or doubled.
import { afterAll, beforeAll, expect, it } from "vitest";
import { startCrowd } from "../support/crowd.js";
import { startFaultStack, type FaultStack } from "../support/fault-stack.js";
import { checkInvariants } from "../support/invariants.js";
import { eventually } from "../support/stack.js";

let stack: FaultStack;
beforeAll(async () => {
  // A short AckWait: the events the killed writer held come back in seconds, not 30.
  stack = await startFaultStack({ env: { WRITER_ACK_WAIT_MS: "2000" } });
});
afterAll(async () => {
  await stack?.stop();
});

it("loses and doubles no order when the writer is killed mid-sale and restarted", { timeout: 50_000 }, async () => {
  const stock = 40;
  const sale = await stack.createSale({ totalStock: stock, perUserLimit: 1 });
  const crowd = startCrowd(stack.orders, sale.saleId, { users: 200, arrivalMs: 8000 });
  await eventually(async () => crowd.progress.accepted >= 5, 20_000, "the first orders");

  await stack.kill("writer");
  expect(stack.state("writer")).toBe("dead");
  // Purchases are still acknowledged (after their PubAck); Postgres does not move.
  const soldAtKill = await stack.sold(sale.saleId);
  await eventually(async () => crowd.progress.accepted >= soldAtKill + 10, 20_000, "purchases while the writer is dead");
  expect(await stack.sold(sale.saleId)).toBe(soldAtKill);
  expect(crowd.progress.accepted).toBeGreaterThan(soldAtKill);

  await stack.restart("writer");
  const { purchases } = await crowd.done;
  await stack.drained();
  expect(purchases.filter((p) => p.answer.kind === "unanswered")).toEqual([]);
  expect(purchases.filter((p) => p.answer.kind === "accepted")).toHaveLength(stock);
  expect(await checkInvariants(stack.db, sale.saleId, purchases, { redis: { client: stack.redis, namespace: stack.config.namespace } })).toEqual([]);
  expect(await stack.sold(sale.saleId)).toBe(stock);
});
