// The order life cycle after CREATED on real servers: cancel and expiry release
// the unit through the outbox (Postgres, then StockReleased on JetStream,
// applied to Redis once by inventory's durable consumer), payment after expiry
// is refused, expiry runs once across replicas, and the relay publishes a
// release left unpublished. On one Redis and NATS server, then on a Redis
// Cluster and a NATS cluster.
import { afterAll, beforeAll, describe, expect, it } from "vitest";
import { status } from "@grpc/grpc-js";
import { jetstream, jetstreamManager, type JetStreamManager } from "@nats-io/jetstream";
import type { NatsConnection } from "@nats-io/transport-node";
import { callUnary, OrderStatus, OrderServiceClient, StockReleased, userMetadata, type Order } from "@seckill/sdk";
import { credentials } from "@grpc/grpc-js";
import { connectNats, eventNames } from "../services/common/event-bus.js";
import { quietLogger } from "../services/common/log.js";
import { startInventory } from "../services/inventory/app.js";
import { startOrder } from "../services/order/app.js";
import { STACK_START_MS, stackEnvironments } from "./support/environments.js";
import { eventually, refusal, type TestStack } from "./support/stack.js";

const { ORDER_STATUS_PENDING: PENDING, ORDER_STATUS_CREATED: CREATED, ORDER_STATUS_PAID: PAID, ORDER_STATUS_EXPIRED: EXPIRED } = OrderStatus;

let stack: TestStack;
let nc: NatsConnection;
let jsm: JetStreamManager;

let requests = 0;
const nextRequestId = () => `lc-${++requests}`;
const names = () => eventNames(stack.config.namespace);

function api(client: OrderServiceClient = stack.orders) {
  return {
    place: async (saleId: string, userId: string, retry = false) =>
      (await callUnary(client, "placeOrder", { saleId, quantity: 1, requestId: nextRequestId(), purchaseToken: "", retry }, { metadata: userMetadata(userId) })).order!,
    get: async (orderId: string, userId: string) => (await callUnary(client, "getOrder", { orderId }, { metadata: userMetadata(userId) })).order!,
    pay: async (orderId: string, userId: string) =>
      (await callUnary(client, "payOrder", { orderId, paymentReference: `ref-${orderId.slice(-6)}`, requestId: nextRequestId() }, { metadata: userMetadata(userId) })).order!,
    cancel: async (orderId: string, userId: string) => (await callUnary(client, "cancelOrder", { orderId, requestId: nextRequestId() }, { metadata: userMetadata(userId) })).order!,
  };
}

async function created(orderId: string, userId: string): Promise<Order> {
  let order: Order | undefined;
  const persisted = async () => {
    order = await api().get(orderId, userId);
    return order.status !== PENDING;
  };
  await eventually(persisted, 10_000, `order ${orderId} persisted`);
  return order!;
}

const stockLeft = async (saleId: string) => (await callUnary(stack.inventoryClient, "getStock", { saleId })).stockLeft;
const redisBuyerUnits = async (saleId: string, userId: string) => Number((await stack.redis.hget(`${stack.config.namespace}:{sale:${saleId}}:buyers`, userId)) ?? 0);
const saleRow = (saleId: string) => stack.db("sales").where({ id: saleId }).first();
const orderRow = (orderId: string) => stack.db("orders").where({ id: orderId }).first();

/** Waits until inventory's release consumer has acked everything published so far. */
async function releasesDrained(): Promise<void> {
  await eventually(
    async () => {
      const info = await jsm.consumers.info(names().stream, names().inventoryReleaseConsumer);
      return info.num_pending === 0 && info.num_ack_pending === 0;
    },
    10_000,
    "the release consumer drained",
  );
}

/** Counts StockReleased publishes per order (core NATS sees every publish, duplicates included). */
function countReleases(saleId: string) {
  const counts = new Map<string, number>();
  const sub = nc.subscribe(names().releaseSubject(saleId), {
    callback: (error, msg) => {
      if (error) return;
      const id = StockReleased.decode(msg.data).reservationId;
      counts.set(id, (counts.get(id) ?? 0) + 1);
    },
  });
  return { counts, stop: () => sub.unsubscribe() };
}

for (const environment of stackEnvironments()) {
  describe(`on ${environment.name}`, () => {
    beforeAll(async () => {
      stack = await environment.startStack({ EXPIRY_INTERVAL_MS: "200", RELEASE_RELAY_AFTER_MS: "1000" });
      nc = await connectNats(stack.config.natsUrl, "lifecycle-test");
      jsm = await jetstreamManager(nc);
    }, STACK_START_MS);
    afterAll(async () => {
      await nc?.close();
      await environment.stop();
    });

    describe("cancel", () => {
      it("returns the unit to Redis exactly once through JetStream, even when the release event is published twice", async () => {
        const sale = await stack.createSale({ totalStock: 1, perUserLimit: 1 });
        const placed = await api().place(sale.saleId, "alice");
        await created(placed.orderId, "alice");
        expect(await stockLeft(sale.saleId)).toBe(0);
        expect(await redisBuyerUnits(sale.saleId, "alice")).toBe(1);

        const cancelled = await api().cancel(placed.orderId, "alice");
        expect(cancelled.status).toBe(OrderStatus.ORDER_STATUS_CANCELLED);
        await eventually(async () => (await stockLeft(sale.saleId)) === 1, 10_000, "stock back in Redis");
        await eventually(async () => (await orderRow(placed.orderId)).release_published_at !== null, 5000, "release recorded as published");
        expect(await redisBuyerUnits(sale.saleId, "alice")).toBe(0);

        // The same event again: once with its own message id (JetStream drops it),
        // once with another (stored and delivered: the release script ignores it).
        const row = await orderRow(placed.orderId);
        const event = StockReleased.encode({
          reservationId: placed.orderId,
          saleId: sale.saleId,
          userId: "alice",
          quantity: 1,
          cause: "CANCELLED",
          releasedAt: row.released_at,
        }).finish();
        const js = jetstream(nc);
        const dup = await js.publish(names().releaseSubject(sale.saleId), event, { msgID: `release-${placed.orderId}` });
        expect(dup.duplicate).toBe(true);
        await js.publish(names().releaseSubject(sale.saleId), event, { msgID: `replay-${placed.orderId}` });
        await releasesDrained();
        expect(await stockLeft(sale.saleId)).toBe(1);
        expect(await redisBuyerUnits(sale.saleId, "alice")).toBe(0);
        expect((await saleRow(sale.saleId)).sold).toBe(0);

        // The buyer (limit 1) buys the unit again; then it is sold out for others.
        const again = await api().place(sale.saleId, "alice");
        expect((await created(again.orderId, "alice")).status).toBe(CREATED);
        expect(await stockLeft(sale.saleId)).toBe(0);
        expect(await refusal(api().place(sale.saleId, "bob", true))).toMatchObject({ code: status.FAILED_PRECONDITION, reason: "SOLD_OUT" });
      }, 20_000);
    });

    describe("several inventory replicas", () => {
      it("share the durable release consumer: every cancelled unit goes back to Redis once", async () => {
        const second = await startInventory({ ...stack.config, inventoryAddr: "127.0.0.1:0" }, quietLogger());
        try {
          const total = 12;
          const sale = await stack.createSale({ totalStock: total, perUserLimit: 1 });
          const placed = await Promise.all(Array.from({ length: total }, (_, k) => api().place(sale.saleId, `replica-buyer-${k}`)));
          await eventually(async () => (await saleRow(sale.saleId)).sold === total, 10_000, "all orders persisted");
          expect(await stockLeft(sale.saleId)).toBe(0);
          await Promise.all(placed.map((o, k) => api().cancel(o.orderId, `replica-buyer-${k}`)));
          await eventually(async () => (await stockLeft(sale.saleId)) === total, 10_000, "stock back in Redis");
          await releasesDrained();
          expect(await stockLeft(sale.saleId)).toBe(total);
          expect((await saleRow(sale.saleId)).sold).toBe(0);
          for (let k = 0; k < total; k++) expect(await redisBuyerUnits(sale.saleId, `replica-buyer-${k}`)).toBe(0);
        } finally {
          await second.stop();
        }
      }, 20_000);
    });

    describe("expiry", () => {
      it("expires an unpaid order after pay_by, returns its unit, refuses the late payment and leaves the resold unit with its new buyer", async () => {
        const sale = await stack.createSale({ totalStock: 1, perUserLimit: 1 });
        const placed = await api().place(sale.saleId, "late-payer");
        await created(placed.orderId, "late-payer");
        expect(await stockLeft(sale.saleId)).toBe(0);

        await stack.db.raw(`UPDATE orders SET pay_by = now() - interval '1 second' WHERE id = ?`, [placed.orderId]);
        await eventually(async () => (await api().get(placed.orderId, "late-payer")).status === EXPIRED, 10_000, "order EXPIRED");
        await eventually(async () => (await stockLeft(sale.saleId)) === 1, 10_000, "stock back in Redis");
        expect((await saleRow(sale.saleId)).sold).toBe(0);
        expect(await redisBuyerUnits(sale.saleId, "late-payer")).toBe(0);
        const expiredRow = await orderRow(placed.orderId);
        expect(expiredRow).toMatchObject({ status: "EXPIRED" });
        expect(expiredRow.released_at).not.toBeNull();

        // Another buyer takes the returned unit.
        const resold = await api().place(sale.saleId, "new-buyer");
        expect((await created(resold.orderId, "new-buyer")).status).toBe(CREATED);

        // The late payment fails and takes nothing from the new buyer.
        expect(await refusal(api().pay(placed.orderId, "late-payer"))).toMatchObject({
          code: status.FAILED_PRECONDITION,
          reason: "ORDER_NOT_PAYABLE",
        });
        expect((await api().get(placed.orderId, "late-payer")).status).toBe(EXPIRED);
        expect((await saleRow(sale.saleId)).sold).toBe(1);
        expect(await stockLeft(sale.saleId)).toBe(0);
        expect((await api().pay(resold.orderId, "new-buyer")).status).toBe(PAID);
        expect((await saleRow(sale.saleId)).sold).toBe(1);
      }, 20_000);

      it("expires a batch once across two order services: each order EXPIRED once, stock restored by exactly the count", async () => {
        const second = await startOrder(stack.config, quietLogger());
        const secondClient = new OrderServiceClient(second.address, credentials.createInsecure());
        try {
          const total = 40;
          const sale = await stack.createSale({ totalStock: total, perUserLimit: 1 });
          const placed = await Promise.all(Array.from({ length: total }, (_, k) => api(k % 2 === 0 ? stack.orders : secondClient).place(sale.saleId, `buyer-${k}`)));
          await eventually(async () => (await saleRow(sale.saleId)).sold === total, 10_000, "all orders persisted");
          expect(await stockLeft(sale.saleId)).toBe(0);

          const releases = countReleases(sale.saleId);
          try {
            await stack.db.raw(`UPDATE orders SET pay_by = now() - interval '1 second' WHERE sale_id = ?`, [sale.saleId]);
            await eventually(
              async () => Number((await stack.db("orders").where({ sale_id: sale.saleId, status: "EXPIRED" }).count({ n: "*" }))[0].n) === total,
              10_000,
              "all orders EXPIRED",
            );
            await eventually(async () => (await stockLeft(sale.saleId)) === total, 10_000, "stock back in Redis");
            await releasesDrained();
            // Let any late second expiry or relay show itself.
            await new Promise((r) => setTimeout(r, 500));

            expect(await stockLeft(sale.saleId)).toBe(total);
            expect((await saleRow(sale.saleId)).sold).toBe(0);
            const buyers = await stack.db("sale_buyers").where({ sale_id: sale.saleId }).select("units");
            expect(buyers.every((b: { units: number }) => b.units === 0)).toBe(true);
            const rows = await stack.db("orders").where({ sale_id: sale.saleId }).select("id", "status", "release_published_at");
            expect(rows).toHaveLength(total);
            expect(rows.every((r: { status: string; release_published_at: Date | null }) => r.status === "EXPIRED" && r.release_published_at)).toBe(true);
            // Each order was expired (and so announced) by exactly one transaction.
            expect(releases.counts.size).toBe(total);
            expect([...releases.counts.values()].every((n) => n === 1)).toBe(true);
            for (let k = 0; k < total; k++) expect(await redisBuyerUnits(sale.saleId, `buyer-${k}`)).toBe(0);
            expect(new Set(placed.map((o) => o.orderId)).size).toBe(total);
          } finally {
            releases.stop();
          }
        } finally {
          secondClient.close();
          await second.stop();
        }
      }, 20_000);
    });

    describe("the release outbox relay", () => {
      it("publishes a release committed without its event (a crash between commit and publish) and inventory applies it", async () => {
        const sale = await stack.createSale({ totalStock: 1, perUserLimit: 1 });
        const placed = await api().place(sale.saleId, "crashed");
        await created(placed.orderId, "crashed");
        expect(await stockLeft(sale.saleId)).toBe(0);

        // What markReleased commits, with the process gone before the publish.
        await stack.db.transaction(async (trx) => {
          await trx.raw(`UPDATE orders SET status = 'CANCELLED', released_at = now() - interval '2 seconds', updated_at = now(), release_published_at = NULL WHERE id = ?`, [
            placed.orderId,
          ]);
          await trx("sales").where({ id: sale.saleId }).decrement("sold", 1);
          await trx("sale_buyers").where({ sale_id: sale.saleId, user_id: "crashed" }).decrement("units", 1);
        });

        await eventually(async () => (await orderRow(placed.orderId)).release_published_at !== null, 10_000, "the relay published the release");
        await eventually(async () => (await stockLeft(sale.saleId)) === 1, 10_000, "stock back in Redis");
        expect(await redisBuyerUnits(sale.saleId, "crashed")).toBe(0);
        const again = await api().place(sale.saleId, "crashed", true);
        expect((await created(again.orderId, "crashed")).status).toBe(CREATED);
      }, 20_000);
    });
  });
}
