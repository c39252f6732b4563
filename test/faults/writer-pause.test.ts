// SIGSTOP of the order writer for longer than its consumer's AckWait, then
// SIGCONT: while it is paused JetStream redelivers the events it holds unacked,
// so once it runs again it sees them twice (the old deliveries and the
// redeliveries). Orders are keyed by the reservation id: nothing is doubled,
// and nothing is lost.
import { afterAll, beforeAll, expect, it } from "vitest";
import { jetstreamManager } from "@nats-io/jetstream";
import { connectNats, eventNames } from "../../services/common/event-bus.js";
import { startCrowd } from "../support/crowd.js";
import { startFaultStack, type FaultStack } from "../support/fault-stack.js";
import { checkInvariants } from "../support/invariants.js";
import { eventually } from "../support/stack.js";

const ACK_WAIT_MS = 2000;

let stack: FaultStack;
beforeAll(async () => {
  stack = await startFaultStack({ env: { WRITER_ACK_WAIT_MS: String(ACK_WAIT_MS) } });
});
afterAll(async () => {
  await stack?.stop();
});

it("doubles no order when the writer is paused past AckWait and resumed", { timeout: 50_000 }, async () => {
  const nc = await connectNats(stack.config.natsUrl, "fault-test");
  try {
    const jsm = await jetstreamManager(nc);
    const names = eventNames(stack.config.namespace);
    const consumer = () => jsm.consumers.info(names.stream, names.writerConsumer);

    const stock = 40;
    const sale = await stack.createSale({ totalStock: stock, perUserLimit: 1 });
    const crowd = startCrowd(stack.orders, sale.saleId, { users: 200, arrivalMs: 8000 });
    await eventually(async () => crowd.progress.accepted >= 5, 20_000, "the first orders");

    await stack.kill("writer", "SIGSTOP");
    const pausedAt = Date.now();
    expect(stack.state("writer")).toBe("stopped");
    const soldAtPause = await stack.sold(sale.saleId);
    // Events delivered to the paused writer are redelivered once AckWait is over.
    await eventually(async () => (await consumer()).num_redelivered > 0, 20_000, "JetStream to redeliver to the paused writer");
    // Paused for longer than AckWait in any case.
    await new Promise((r) => setTimeout(r, Math.max(0, pausedAt + 2 * ACK_WAIT_MS - Date.now())));
    expect(stack.state("writer")).toBe("stopped");
    expect(await stack.sold(sale.saleId)).toBe(soldAtPause);
    expect(crowd.progress.accepted).toBeGreaterThan(soldAtPause);

    await stack.kill("writer", "SIGCONT");
    expect(stack.state("writer")).toBe("running");
    const { purchases } = await crowd.done;
    await stack.drained();
    expect(purchases.filter((p) => p.answer.kind === "unanswered")).toEqual([]);
    expect(await checkInvariants(stack.db, sale.saleId, purchases, { redis: { client: stack.redis, namespace: stack.config.namespace } })).toEqual([]);
    expect(await stack.sold(sale.saleId)).toBe(stock);
  } finally {
    await nc.close();
  }
});
