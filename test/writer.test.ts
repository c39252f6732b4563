// The order writer against real JetStream and Postgres: events published
// straight to the stream (as a redelivery, a buggy or hostile publisher, or an
// inventory that lost its Redis state would) must never make Postgres hold a
// duplicate order, an oversold sale or a buyer over the limit, and one bad
// event must not hold back the good ones around it.
import { randomBytes } from "node:crypto";
import { afterAll, beforeAll, describe, expect, it } from "vitest";
import { jetstream, jetstreamManager, type JetStreamClient, type JetStreamManager } from "@nats-io/jetstream";
import type { NatsConnection } from "@nats-io/transport-node";
import { callUnary, ReservationBatch, userMetadata, type ReservationMade } from "@seckill/sdk";
import { connectNats, ensureWriterConsumer, eventNames } from "../services/common/event-bus.js";
import { quietLogger } from "../services/common/log.js";
import { startWriter } from "../services/order/writer/app.js";
import { newOrderId, ulid } from "../services/common/ids.js";
import { eventually, startTestStack, writerDrained, type TestStack } from "./support/stack.js";

let stack: TestStack;
let nc: NatsConnection;
let js: JetStreamClient;
let jsm: JetStreamManager;
beforeAll(async () => {
  stack = await startTestStack();
  nc = await connectNats(stack.config.natsUrl, "writer-test");
  js = jetstream(nc);
  jsm = await jetstreamManager(nc);
});
afterAll(async () => {
  await nc?.close();
  await stack?.stop();
});

const names = () => eventNames(stack.config.namespace);
const stats = () => ({ ...stack.writer.writer.stats });

/** Publishes raw bytes on the sale's reservation subject; returns the stream sequence. */
async function publishRaw(saleId: string, data: Uint8Array, msgID = `test-${ulid()}`): Promise<number> {
  const ack = await js.publish(names().reservationSubject(saleId), data, { msgID, timeout: 5000 });
  expect(ack.duplicate).toBe(false);
  return ack.seq;
}

function event(saleId: string, userId: string, o: Partial<ReservationMade> = {}): ReservationMade {
  return {
    reservationId: newOrderId(saleId),
    saleId,
    userId,
    requestId: `direct-${randomBytes(4).toString("hex")}`,
    quantity: 1,
    reservedAt: new Date(),
    ...o,
  };
}

/** Publishes reservations of one sale as one message, as inventory does. */
const publishBatch = (events: ReservationMade[], msgID?: string) => publishRaw(events[0].saleId, ReservationBatch.encode({ reservations: events }).finish(), msgID);
const publish = (e: ReservationMade, msgID?: string) => publishBatch([e], msgID);

const drained = (seq: number) => writerDrained(jsm, stack.config.namespace, seq);

const ordersOf = (saleId: string) => stack.db("orders").where({ sale_id: saleId }).select("id", "user_id", "quantity", "status");
const soldOf = async (saleId: string) => ((await stack.db("sales").where({ id: saleId }).first()) as { sold: number }).sold;
const buyersOf = (saleId: string) => stack.db("sale_buyers").where({ sale_id: saleId }).select("user_id", "units");

describe("the order writer", () => {
  it("treats a redelivered reservation as a no-op: one order, counted once", async () => {
    const sale = await stack.createSale({ totalStock: 5, perUserLimit: 2 });
    const { order } = await callUnary(
      stack.orders,
      "placeOrder",
      { saleId: sale.saleId, quantity: 2, requestId: "buy-once", purchaseToken: "", retry: false },
      { metadata: userMetadata("redelivered") },
    );
    const orderId = order!.orderId;
    await eventually(async () => (await ordersOf(sale.saleId)).length === 1, 10_000, "the order");
    const reservation = await callUnary(stack.inventoryClient, "getReservation", { reservationId: orderId });
    const original: ReservationMade = {
      reservationId: orderId,
      saleId: sale.saleId,
      userId: "redelivered",
      requestId: "buy-once",
      quantity: 2,
      reservedAt: reservation.reservedAt,
    };
    const before = stats();

    // Different Nats-Msg-Ids, so JetStream's deduplication does not catch them: the writer must.
    const seqs = [await publish(original, `${orderId}-again-1`), await publish(original, `${orderId}-again-2`)];
    await drained(Math.max(...seqs));

    expect(await ordersOf(sale.saleId)).toEqual([{ id: orderId, user_id: "redelivered", quantity: 2, status: "CREATED" }]);
    expect(await soldOf(sale.saleId)).toBe(2);
    expect(await buyersOf(sale.saleId)).toEqual([{ user_id: "redelivered", units: 2 }]);
    const after = stats();
    expect(after.persisted).toBe(before.persisted);
    expect(after.poison).toBe(before.poison);
    expect(after.duplicates).toBeGreaterThan(before.duplicates);
  });

  it("terminates poison events and still persists the rest of the burst", async () => {
    const sale = await stack.createSale({ totalStock: 10 });
    const unknownSale = ulid();
    const good = [event(sale.saleId, "good-1"), event(sale.saleId, "good-2"), event(sale.saleId, "good-3")];
    const before = stats();

    const seqs = await Promise.all([
      publish(good[0]),
      // Not a protobuf: field 1 with the invalid wire type 7.
      publishRaw(sale.saleId, Buffer.concat([Buffer.from([0x0f]), randomBytes(32)])),
      publish(event(unknownSale, "ghost")),
      publish(good[1]),
      // Decodes, but names no sale, user or time.
      publish(event(sale.saleId, "", { reservedAt: undefined })),
      publish(good[2]),
    ]);
    await drained(Math.max(...seqs));

    const rows = await ordersOf(sale.saleId);
    expect(new Set(rows.map((r) => r.id))).toEqual(new Set(good.map((e) => e.reservationId)));
    expect(await soldOf(sale.saleId)).toBe(3);
    expect(await stack.db("orders").where({ sale_id: unknownSale })).toEqual([]);
    const after = stats();
    expect(after.poison - before.poison).toBe(3);
    expect(after.persisted - before.persisted).toBe(3);
    expect(after.failures).toBe(before.failures);
  });

  it("lets Postgres refuse oversell: more events than stock persist only the stock, the excess is terminated", async () => {
    const stock = 3;
    const sale = await stack.createSale({ totalStock: stock });
    const events = Array.from({ length: 8 }, (_, i) => event(sale.saleId, `flood-${i}`));
    const before = stats();

    const seqs = await Promise.all(events.map((e) => publish(e)));
    await drained(Math.max(...seqs));

    const rows = await ordersOf(sale.saleId);
    expect(rows).toHaveLength(stock);
    for (const r of rows) expect(events.map((e) => e.reservationId)).toContain(r.id);
    expect(await soldOf(sale.saleId)).toBe(stock);
    const units = (await buyersOf(sale.saleId)).reduce((n, b: { units: number }) => n + b.units, 0);
    expect(units).toBe(stock);
    const after = stats();
    expect(after.poison - before.poison).toBe(events.length - stock);
    expect(after.persisted - before.persisted).toBe(stock);
  });

  it("lets Postgres hold the per-user limit: two reservations of one user in a limit-1 sale make one order", async () => {
    const sale = await stack.createSale({ totalStock: 10, perUserLimit: 1 });
    const events = [event(sale.saleId, "greedy"), event(sale.saleId, "greedy"), event(sale.saleId, "modest")];
    const before = stats();

    const seqs = await Promise.all(events.map((e) => publish(e)));
    await drained(Math.max(...seqs));

    const rows = await ordersOf(sale.saleId);
    expect(rows.filter((r) => r.user_id === "greedy")).toHaveLength(1);
    expect(rows.filter((r) => r.user_id === "modest")).toHaveLength(1);
    expect(await soldOf(sale.saleId)).toBe(2);
    expect(await buyersOf(sale.saleId)).toEqual(
      expect.arrayContaining([
        { user_id: "greedy", units: 1 },
        { user_id: "modest", units: 1 },
      ]),
    );
    expect(stats().poison - before.poison).toBe(1);

    // A quantity above the limit in a single event is refused the same way.
    const tooMany = event(sale.saleId, "bulk", { quantity: 2 });
    await drained(await publish(tooMany));
    expect(await stack.db("orders").where({ id: tooMany.reservationId })).toEqual([]);
    expect(await soldOf(sale.saleId)).toBe(2);
    expect(stats().poison - before.poison).toBe(2);
  });
});

describe("a message carrying several reservations", () => {
  it("writes the good ones, refuses only the bad one, and acks the message", async () => {
    const sale = await stack.createSale({ totalStock: 10, perUserLimit: 1 });
    const events = [event(sale.saleId, "m-1"), event(sale.saleId, "m-2"), event(sale.saleId, "m-1"), event(sale.saleId, "m-3")];
    const before = stats();
    await drained(await publishBatch(events));
    const rows = await ordersOf(sale.saleId);
    expect(rows.map((r) => r.user_id).sort()).toEqual(["m-1", "m-2", "m-3"]);
    expect(await soldOf(sale.saleId)).toBe(3);
    expect(stats().poison - before.poison).toBe(1);
    expect(stats().persisted - before.persisted).toBe(3);
  });
});

describe("the order writer while Postgres refuses its writes", () => {
  it("keeps the batch past its AckWait, retries without spending deliveries or letting JetStream redeliver, and writes it once Postgres accepts again", async () => {
    const role = decodeURIComponent(new URL(stack.config.databaseUrl).username);
    const sale = await stack.createSale({ totalStock: 20 });
    const failuresBefore = stats().failures;
    // The writer's role loses INSERT on orders: every batch fails as an outage would.
    await stack.db.raw(`REVOKE INSERT ON orders FROM "${role}"`);
    let restored = false;
    try {
      const placed = await Promise.all(
        Array.from({ length: 5 }, (_, i) =>
          callUnary(
            stack.orders,
            "placeOrder",
            { saleId: sale.saleId, quantity: 1, requestId: `outage-${i}`, purchaseToken: "", retry: false },
            { metadata: userMetadata(`outage-user-${i}`) },
          ),
        ),
      );
      expect(placed).toHaveLength(5);
      const outageFrom = Date.now();
      await eventually(async () => stats().failures >= failuresBefore + 3, 15_000, "the writer to fail a few times");
      // Twice the AckWait, while the retries back off past it: the writer's
      // in-progress reports keep the events with it.
      const { writerAckWaitMs } = stack.config;
      expect(writerAckWaitMs).toBeLessThanOrEqual(5000);
      await new Promise((r) => setTimeout(r, Math.max(0, outageFrom + 2 * writerAckWaitMs + 500 - Date.now())));
      expect(await ordersOf(sale.saleId)).toHaveLength(0);
      const info = await jsm.consumers.info(names().stream, names().writerConsumer);
      expect(info.num_redelivered).toBe(0);
      expect(info.num_ack_pending).toBeGreaterThan(0);
      await stack.db.raw(`GRANT INSERT ON orders TO "${role}"`);
      restored = true;
      await eventually(async () => (await ordersOf(sale.saleId)).length === 5, 15_000, "the orders after the outage");
      expect(await soldOf(sale.saleId)).toBe(5);
    } finally {
      if (!restored) await stack.db.raw(`GRANT INSERT ON orders TO "${role}"`);
    }
  });
});

describe("the writer's consumer on a deployment that already has one", () => {
  it("takes the configured AckWait when a writer starts, and keeps its place in the stream", async () => {
    const info = () => jsm.consumers.info(names().stream, names().writerConsumer);
    // As an earlier release left it: a 30 s AckWait.
    await ensureWriterConsumer(jsm, names(), { ackWaitMs: 30_000, maxDeliver: stack.config.writerMaxDeliver, maxAckPending: 4000 });
    const before = await info();
    expect(before.config.ack_wait).toBe(30_000 * 1_000_000);

    const second = await startWriter({ ...stack.config, writerAddr: "127.0.0.1:0" }, quietLogger());
    try {
      const after = await info();
      expect(after.config.ack_wait).toBe(stack.config.writerAckWaitMs * 1_000_000);
      expect(after.created).toEqual(before.created);
      expect(after.delivered.stream_seq).toBeGreaterThanOrEqual(before.delivered.stream_seq);
    } finally {
      await second.stop();
    }
  });
});
