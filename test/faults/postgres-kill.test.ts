// kill -9 of Postgres (a private instance: the postmaster and its backends) in
// the middle of a sale, then a start on the same data directory (crash
// recovery): purchases are still acknowledged (Redis and JetStream), the writer
// stops acking and retries while the backlog waits in JetStream, and it drains
// once Postgres is back. Nothing lost, nothing doubled.
import { afterAll, beforeAll, expect, it } from "vitest";
import { startCrowd } from "../support/crowd.js";
import { startFaultStack, type FaultStack } from "../support/fault-stack.js";
import { checkInvariants } from "../support/invariants.js";
import { eventually } from "../support/stack.js";

let stack: FaultStack;
beforeAll(async () => {
  stack = await startFaultStack({ privateDependencies: ["postgres"] });
});
afterAll(async () => {
  await stack?.stop();
});

it("loses and doubles no order when Postgres dies mid-sale and comes back", { timeout: 50_000 }, async () => {
  const stock = 40;
  const sale = await stack.createSale({ totalStock: stock, perUserLimit: 1 });
  const crowd = startCrowd(stack.orders, sale.saleId, { users: 200, arrivalMs: 8000 });
  await eventually(async () => crowd.progress.accepted >= 5, 20_000, "the first orders");
  const soldBefore = await stack.sold(sale.saleId);

  await stack.kill("postgres");
  expect(stack.state("postgres")).toBe("dead");
  // The purchase path does not need Postgres for a loaded sale: buyers are still answered.
  const acceptedAtKill = crowd.progress.accepted;
  await eventually(async () => crowd.progress.accepted >= acceptedAtKill + 10, 20_000, "purchases while Postgres is down");
  expect(stack.state("postgres")).toBe("dead");

  await stack.restart("postgres");
  const { purchases } = await crowd.done;
  await stack.drained();
  expect(purchases.filter((p) => p.answer.kind === "unanswered")).toEqual([]);
  expect(await stack.sold(sale.saleId)).toBeGreaterThan(soldBefore);
  expect(await checkInvariants(stack.db, sale.saleId, purchases, { redis: { client: stack.redis, namespace: stack.config.namespace } })).toEqual([]);
  expect(await stack.sold(sale.saleId)).toBe(stock);
});
