// A sale whose Redis state is lost (a Redis restart without persistence) is
// never reloaded blindly: it fails closed with UNAVAILABLE until every
// reservation acknowledged before the loss is in Postgres, is then rebuilt
// from Postgres (stock, buyers, request ids), and sells on without overselling.
// On one Redis and NATS server, then on a Redis Cluster and a NATS cluster,
// where the lost server is the master of the sale's slot.
import { afterAll, beforeAll, describe, expect, it } from "vitest";
import { status } from "@grpc/grpc-js";
import { callUnary, Reason, userMetadata } from "@seckill/sdk";
import { readJetStreamProgress, openEventBus } from "../services/common/event-bus.js";
import { ulid } from "../services/common/ids.js";
import { createRedis } from "../services/common/redis.js";
import { quietLogger } from "../services/common/log.js";
import type { Refusal } from "../services/common/refusal.js";
import { createSaleService } from "../services/inventory/sales.js";
import { createSaleWarmer, REBUILD_RECHECK_MS } from "../services/inventory/sale-warmer.js";
import { createRedisStockStore, saleKeys } from "../services/inventory/stock-store.js";
import { createRedisSweepIndex, sweepIndexing } from "../services/inventory/sweep-index.js";
import { STACK_START_MS, stackEnvironments } from "./support/environments.js";
import { eventually, refusal, type TestStack } from "./support/stack.js";

let stack: TestStack;

const buy = (saleId: string, user: string, requestId: string, retry = false) =>
  callUnary(stack.orders, "placeOrder", { saleId, quantity: 1, requestId, purchaseToken: "", retry }, { metadata: userMetadata(user) });

/** What a Redis restart without persistence does to one sale, the others kept. */
async function loseRedisState(saleId: string): Promise<void> {
  await stack.redis.del(...Object.values(saleKeys(stack.config.namespace, saleId)));
}

/** A writer of its own (the stack's was stopped by the tests above): on the same durable consumer. */
async function runWriter() {
  const { startWriter } = await import("../services/order/writer/app.js");
  return startWriter(stack.config, quietLogger());
}

const soldOf = async (saleId: string) => ((await stack.db("sales").where({ id: saleId }).first()) as { sold: number }).sold;
const rulesOf = (saleId: string) => stack.redis.hgetall(saleKeys(stack.config.namespace, saleId).rules);

for (const environment of stackEnvironments()) {
  describe(`on ${environment.name}`, () => {
    beforeAll(async () => {
      stack = await environment.startStack();
    }, STACK_START_MS);
    afterAll(() => environment.stop());

    it("fails closed while acknowledged reservations are still on their way to Postgres, then rebuilds and sells exactly the stock", async () => {
      const sale = await stack.createSale({ totalStock: 10, perUserLimit: 1 });
      // Three reservations are acknowledged while the writer is stopped: they sit in JetStream.
      await stack.writer.writer.stop();
      const early = await Promise.all([0, 1, 2].map((i) => buy(sale.saleId, `early-${i}`, `early-req-${i}`)));
      await environment.loseRedisServerOf(stack, sale.saleId);

      const closed = await refusal(buy(sale.saleId, "during-loss", "loss-req"));
      expect(closed).toMatchObject({ code: status.UNAVAILABLE, reason: "OVERLOADED" });
      expect((await refusal(callUnary(stack.sales, "getSaleStatus", { saleId: sale.saleId }))).code).toBe(status.UNAVAILABLE);

      // The writer comes back (a new one on the same durable consumer) and drains the backlog.
      const writer = await runWriter();
      try {
        await eventually(async () => ((await stack.db("sales").where({ id: sale.saleId }).first()).sold as number) === 3, 10_000, "the backlog");
        // Rebuilt from Postgres: 7 left, the early buyers still at their limit, their request ids remembered.
        await eventually(
          async () => {
            try {
              await buy(sale.saleId, "after-loss", "after-req");
              return true;
            } catch {
              return false;
            }
          },
          10_000,
          "the sale to be rebuilt",
        );
        expect((await callUnary(stack.inventoryClient, "getStock", { saleId: sale.saleId })).stockLeft).toBe(6);
        expect((await refusal(buy(sale.saleId, "early-0", "early-again"))).reason).toBe("ALREADY_PURCHASED");
        const replay = await buy(sale.saleId, "early-1", "early-req-1", true);
        expect(replay.order!.orderId).toBe(early[1].order!.orderId);

        // The rest of the stock sells to a crowd; nothing more.
        const crowd = await Promise.allSettled(Array.from({ length: 30 }, (_, i) => buy(sale.saleId, `crowd-${i}`, `crowd-req-${i}`)));
        expect(crowd.filter((r) => r.status === "fulfilled")).toHaveLength(6);
        await eventually(async () => ((await stack.db("sales").where({ id: sale.saleId }).first()).sold as number) === 10, 10_000, "all ten orders");
        await new Promise((r) => setTimeout(r, 300));
        expect(await stack.db("orders").where({ sale_id: sale.saleId }).count({ n: "*" })).toEqual([{ n: 10 }]);
      } finally {
        await writer.stop();
      }
    });

    it("refuses only the lost sale's items in a Reserve batch; the other sale's items are reserved", async () => {
      const lost = await stack.createSale({ totalStock: 5 });
      const healthy = await stack.createSale({ totalStock: 5 });
      await buy(lost.saleId, "before", "before-req");
      await stack.writer.writer.stop(); // keeps the lost sale's rebuild waiting
      await buy(lost.saleId, "pending", "pending-req");
      await loseRedisState(lost.saleId);
      const { results } = await callUnary(stack.inventoryClient, "reserve", {
        items: [
          { saleId: lost.saleId, userId: "a", requestId: "batch-a", quantity: 1 },
          { saleId: healthy.saleId, userId: "b", requestId: "batch-b", quantity: 1 },
        ],
      });
      expect(results.map((r) => r.reason)).toEqual([Reason.REASON_OVERLOADED, Reason.REASON_UNSPECIFIED]);
      expect(results[1].reservationId.startsWith(healthy.saleId)).toBe(true);
    });

    it("while a lost sale waits for its rebuild, concurrent purchases and polls share one look at the queue, and the verdict holds for a moment", async () => {
      const sale = await stack.createSale({ totalStock: 5 });
      await stack.writer.writer.stop(); // keeps the rebuild waiting
      await buy(sale.saleId, "h-0", "h-req-0"); // waits in JetStream
      await loseRedisState(sale.saleId);
      // A sale service of its own over the stack's Postgres, Redis and JetStream, counting its looks at the queue.
      const bus = await openEventBus(stack.config.natsUrl, stack.config.namespace, "rebuild-test", 2000);
      const redis = createRedis(stack.config);
      await redis.connect();
      const stock = createRedisStockStore(redis, stack.config.namespace);
      let nowMs = Date.now();
      let looks = 0;
      const warmer = createSaleWarmer({
        db: stack.db,
        stock,
        sweepIndexing: sweepIndexing(createRedisSweepIndex(redis, stack.config.namespace), quietLogger()),
        now: () => new Date(nowMs),
        jetstreamProgress: () => {
          looks++;
          return readJetStreamProgress(bus.jsm, bus.names);
        },
      });
      const sales = createSaleService({ db: stack.db, stock, warmer, now: () => new Date(nowMs), newSaleId: () => ulid(nowMs) });
      const reasons = async (calls: Promise<unknown>[]) => (await Promise.allSettled(calls)).map((r) => (r.status === "rejected" ? (r.reason as Refusal).reason : "answered"));
      try {
        expect(new Set(await reasons(Array.from({ length: 40 }, () => warmer.warmOnDemand(sale.saleId))))).toEqual(new Set(["OVERLOADED"]));
        expect(looks).toBe(1);
        expect(await reasons([warmer.warmOnDemand(sale.saleId), sales.status(sale.saleId)])).toEqual(["OVERLOADED", "OVERLOADED"]);
        expect(looks).toBe(1);
        nowMs += REBUILD_RECHECK_MS;
        expect(await reasons([warmer.warmOnDemand(sale.saleId), sales.status(sale.saleId)])).toEqual(["OVERLOADED", "OVERLOADED"]);
        expect(looks).toBe(2);
        // A sale that does not exist is still told apart.
        expect(await reasons([sales.status(ulid(nowMs))])).toEqual(["NOT_FOUND"]);
      } finally {
        redis.disconnect();
        await bus.close();
      }
    });

    it("notices a lost sale within a second without any purchase, keeps it closed while the queue drains, then rebuilds it", async () => {
      const sale = await stack.createSale({ totalStock: 6 });
      // The writer is stopped (above): two acknowledged reservations wait in JetStream.
      await buy(sale.saleId, "w-0", "w-req-0");
      await buy(sale.saleId, "w-1", "w-req-1");
      await environment.loseRedisServerOf(stack, sale.saleId);

      // No request touches the sale: the watcher finds it lost by itself, and does not rebuild it yet.
      await eventually(async () => stack.inventory.redisLossWatch.lost.has(sale.saleId), 1000, "the loss to be noticed");
      await new Promise((r) => setTimeout(r, 600));
      expect(await rulesOf(sale.saleId)).toEqual({});

      const writer = await runWriter();
      try {
        // Still no request: once the backlog is in Postgres the sale is rebuilt with its two buyers.
        await eventually(async () => (await rulesOf(sale.saleId)).total === "6", 10_000, "the rebuild");
        expect(stack.inventory.redisLossWatch.lost.has(sale.saleId)).toBe(false);
        expect(await soldOf(sale.saleId)).toBe(2);
        expect((await callUnary(stack.inventoryClient, "getStock", { saleId: sale.saleId })).stockLeft).toBe(4);
        expect((await refusal(buy(sale.saleId, "w-0", "w-again"))).reason).toBe("ALREADY_PURCHASED");
      } finally {
        await writer.stop();
      }
    });

    it("never sells from a sale restored from another Redis server (a snapshot or a replica), and rebuilds it from Postgres", async () => {
      const writer = await runWriter();
      try {
        const sale = await stack.createSale({ totalStock: 5 });
        for (let i = 0; i < 3; i++) await buy(sale.saleId, `s-${i}`, `s-req-${i}`);
        await eventually(async () => (await soldOf(sale.saleId)) === 3, 10_000, "three orders");

        // What a restart from an old snapshot looks like: the sale as it was before
        // the three purchases, loaded on a server with another run id.
        const keys = saleKeys(stack.config.namespace, sale.saleId);
        await stack.inventory.redisLossWatch.stop(); // so that the purchases below meet the stale state
        await stack.redis.multi().hset(keys.rules, "epoch", "0123456789abcdef").set(keys.stock, 5).del(keys.buyers, keys.requests, keys.reservations).exec();

        // s-0 already holds the limit: the stale state would let it buy again; it must not.
        expect((await refusal(buy(sale.saleId, "s-0", "s-again"))).reason).toBe("ALREADY_PURCHASED");
        const crowd = await Promise.allSettled(Array.from({ length: 12 }, (_, i) => buy(sale.saleId, `c-${i}`, `c-req-${i}`)));
        expect(crowd.filter((r) => r.status === "fulfilled")).toHaveLength(2);
        await eventually(async () => (await soldOf(sale.saleId)) === 5, 10_000, "five orders");
        expect(await stack.db("orders").where({ sale_id: sale.saleId }).count({ n: "*" })).toEqual([{ n: 5 }]);
        // The replayed request ids survived the rebuild.
        expect((await buy(sale.saleId, "s-1", "s-req-1", true)).order!.orderId.startsWith(sale.saleId)).toBe(true);
      } finally {
        await writer.stop();
      }
    });
  });
}
