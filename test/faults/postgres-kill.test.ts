// kill -9 of Postgres (a private instance: the postmaster and its backends) in
// the middle of a sale, then a start on the same data directory (crash
// recovery): purchase tokens are still issued (the gateway's last read of the
// sale) and purchases acknowledged (Redis and JetStream), the writer
// stops acking and retries while the backlog waits in JetStream (the events it
// holds are not redelivered: it reports them in progress), and it drains once
// Postgres is back. Nothing lost, nothing doubled.
import { afterAll, beforeAll, expect, it } from "vitest";
import { jetstreamManager } from "@nats-io/jetstream";
import { connectNats, eventNames } from "../../services/common/event-bus.js";
import { startCrowd } from "../support/crowd.js";
import { startFaultStack, type FaultStack } from "../support/fault-stack.js";
import { checkInvariants } from "../support/invariants.js";
import { eventually } from "../support/stack.js";
import { checkHealth } from "../../tools/stack/health.js";
import { POSTGRES_PING_MS } from "../../services/common/dependency-health.js";

let stack: FaultStack;
beforeAll(async () => {
  // Buyers get purchase tokens from the gateway, which reads the sale from Postgres too.
  stack = await startFaultStack({ privateDependencies: ["postgres"], gateway: true, env: { PURCHASE_TOKEN_REQUIRED: "true" } });
});
afterAll(async () => {
  await stack?.stop();
});

async function writerConsumerInfo() {
  const nc = await connectNats(stack.config.natsUrl, "fault-test");
  try {
    const names = eventNames(stack.config.namespace);
    return await (await jetstreamManager(nc)).consumers.info(names.stream, names.writerConsumer);
  } finally {
    await nc.close();
  }
}

it("loses and doubles no order when Postgres dies mid-sale and comes back", { timeout: 50_000 }, async () => {
  const stock = 120;
  const sale = await stack.createSale({ totalStock: stock, perUserLimit: 1 });
  const crowd = startCrowd(stack.orders, sale.saleId, { users: 200, arrivalMs: 8000, access: stack.access });
  await eventually(async () => crowd.progress.accepted >= 5, 20_000, "the first orders");
  const soldBefore = await stack.sold(sale.saleId);

  await stack.kill("postgres");
  const killedAt = Date.now();
  expect(stack.state("postgres")).toBe("dead");
  // The purchase path does not need Postgres for a loaded sale, nor does token
  // issuance for a sale the gateway has read: past its one-second sale cache,
  // buyers still get tokens (from its last read) and orders.
  await new Promise((r) => setTimeout(r, 1500));
  const acceptedAfterCache = crowd.progress.accepted;
  await eventually(async () => crowd.progress.accepted >= acceptedAfterCache + 10, 20_000, "purchases while Postgres is down");
  // Health: the writer, whose work is Postgres, reports NOT_SERVING; the services
  // whose main path does without it stay SERVING (readiness keeps them in).
  await eventually(async () => (await checkHealth(stack.config.writerAddr)) === "NOT_SERVING", 15_000, "the writer to report Postgres lost");
  // Every service pings Postgres once per POSTGRES_PING_MS: watch them for longer than that.
  const seen = new Set<string>();
  for (const until = Date.now() + POSTGRES_PING_MS + 1000; Date.now() < until; await new Promise((r) => setTimeout(r, 250))) {
    for (const address of [stack.config.inventoryAddr, stack.config.orderAddr, stack.config.gatewayAddr]) seen.add(await checkHealth(address));
  }
  expect([...seen]).toEqual(["SERVING"]);
  expect(stack.state("postgres")).toBe("dead");
  // The writer has been retrying for longer than its AckWait: the events it
  // holds are still its own (none pending redelivered).
  expect(Date.now() - killedAt).toBeGreaterThan(stack.config.writerAckWaitMs + 1000);
  const writerConsumer = await writerConsumerInfo();
  expect(writerConsumer.num_ack_pending).toBeGreaterThan(0);
  expect(writerConsumer.num_redelivered).toBe(0);

  await stack.restart("postgres");
  const { purchases } = await crowd.done;
  await stack.drained();
  expect(purchases.filter((p) => p.answer.kind === "unanswered")).toEqual([]);
  expect(await stack.sold(sale.saleId)).toBeGreaterThan(soldBefore);
  expect(await checkInvariants(stack.db, sale.saleId, purchases, { redis: { client: stack.redis, namespace: stack.config.namespace } })).toEqual([]);
  expect(await stack.sold(sale.saleId)).toBe(stock);
});
