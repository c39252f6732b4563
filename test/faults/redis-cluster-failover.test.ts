// The services on a Redis Cluster (three masters, a replica each): kill -9 of
// the master owning a hot sale's slot in the middle of the sale, with
// acknowledged reservations still on their way to Postgres (the writer is
// stopped). Its replica is promoted, and replication is asynchronous, so it
// may lack the last reservations: the sale fails closed (REBUILDING, nothing
// sold from the promoted replica) until the writer has drained the stream, is
// then rebuilt from Postgres, and sells exactly its stock. The gateway, which
// issues the buyers' purchase tokens, runs on the same cluster.
import { status } from "@grpc/grpc-js";
import { credentials } from "@grpc/grpc-js";
import { AccessServiceClient, callUnary, purchaseMetadata, userMetadata } from "@seckill/sdk";
import { afterAll, beforeAll, expect, it } from "vitest";
import { quietLogger } from "../../services/common/log.js";
import { createRedis, type RedisClient } from "../../services/common/redis.js";
import { saleKeys } from "../../services/inventory/stock-store.js";
import { startWriter, type WriterApp } from "../../services/order/writer/app.js";
import type { RedisCluster } from "../../tools/stack/redis-cluster.js";
import { CLUSTERS_START_MS, startClusters, type Clusters } from "../support/clusters.js";
import { startCrowd } from "../support/crowd.js";
import { checkInvariants } from "../support/invariants.js";
import { eventually, refusal, startTestStack, type TestStack } from "../support/stack.js";

let clusters: Clusters;
let cluster: RedisCluster;
let stack: TestStack;
let redis: RedisClient;
let writer: WriterApp | undefined;
let access: AccessServiceClient;
beforeAll(async () => {
  clusters = await startClusters({ redis: true });
  cluster = clusters.redis!;
  stack = await startTestStack({ ...clusters.overrides, PURCHASE_TOKEN_REQUIRED: "true", SWEEP_INTERVAL_MS: "200", SWEEP_AFTER_MS: "1500" }, { gateway: true });
  access = new AccessServiceClient(stack.config.gatewayAddr, credentials.createInsecure());
  redis = createRedis(stack.config);
  // The killed master's connection errors are expected; the commands' own errors are what count.
  redis.on("error", () => undefined);
  await redis.connect();
}, CLUSTERS_START_MS);
afterAll(async () => {
  access?.close();
  await writer?.stop();
  redis?.disconnect();
  await stack?.stop();
  await clusters?.stop();
});

let probes = 0;
/** A purchase (a new buyer with a purchase token of the gateway) that must be refused: its refusal. */
async function refusedBuy(saleId: string) {
  const userId = `probe-${++probes}`;
  const { token } = await callUnary(access, "issuePurchaseToken", { saleId, challengeId: "", challengeAnswer: "" }, { metadata: userMetadata(userId) });
  return refusal(
    callUnary(
      stack.orders,
      "placeOrder",
      { saleId, quantity: 1, requestId: `${userId}-req`, purchaseToken: "", retry: false },
      { metadata: purchaseMetadata(userId, saleId, token), deadlineMs: 3000 },
    ),
  );
}

it("keeps the gateway's challenges on the cluster", async () => {
  const sale = await stack.createSale();
  const { challengeId } = await stack.gateway!.access!.service.getChallenge({ userId: "alice", accountCreatedAt: undefined }, sale.saleId);
  expect(await redis.exists(`${stack.config.namespace}:challenge:${challengeId}`)).toBe(1);
});

it("fails closed when the master of the hot sale's slot dies, rebuilds the sale once the queue drains, and sells exactly the stock", { timeout: 90_000 }, async () => {
  const stock = 40;
  const sale = await stack.createSale({ totalStock: stock, perUserLimit: 1 });
  const crowd = startCrowd(stack.orders, sale.saleId, { users: 200, arrivalMs: 8000, access });
  await eventually(async () => crowd.progress.accepted >= 5, 20_000, "the first orders");

  // Acknowledged reservations pile up in JetStream, not yet in Postgres.
  await stack.writer.writer.stop();
  const acceptedAtStop = crowd.progress.accepted;
  await eventually(async () => crowd.progress.accepted >= acceptedAtStop + 5, 20_000, "a backlog of acknowledged reservations");

  const slot = await cluster.slotOf(saleKeys(stack.config.namespace, sale.saleId).rules);
  const { killed, promoted } = await cluster.killMasterOf(slot);
  expect(promoted).not.toBe(killed);
  expect(cluster.pid(killed)).toBeUndefined();

  // The promoted replica holds the sale's keys loaded on the dead master: the sale answers REBUILDING, and sells nothing.
  await eventually(async () => (await refusedBuy(sale.saleId)).reason === "OVERLOADED", 15_000, "the sale to fail closed");
  const acceptedClosed = crowd.progress.accepted;
  expect(acceptedClosed).toBeLessThan(stock);
  await new Promise((r) => setTimeout(r, 1000));
  expect(await refusedBuy(sale.saleId)).toMatchObject({ code: status.UNAVAILABLE, reason: "OVERLOADED" });
  expect(crowd.progress.accepted).toBe(acceptedClosed);

  // The writer comes back (a new one on the same durable consumer) and drains the backlog: the sale is rebuilt and sells on.
  writer = await startWriter(stack.config, quietLogger());
  const { purchases, failedCalls } = await crowd.done;
  expect(failedCalls.some((f) => f.code === status.UNAVAILABLE && f.reason === "OVERLOADED")).toBe(true);
  expect(purchases.filter((p) => p.answer.kind === "unanswered")).toEqual([]);
  // A redirection or a failover in progress is an answer to retry, never a final INTERNAL.
  expect(purchases.filter((p) => p.answer.kind === "refused" && p.answer.code === status.INTERNAL)).toEqual([]);
  expect(crowd.progress.accepted).toBeGreaterThan(acceptedClosed);
  await eventually(async () => (await soldOf(sale.saleId)) === stock, 20_000, "every unit in Postgres");
  await eventually(
    async () => (await checkInvariants(stack.db, sale.saleId, purchases, { redis: { client: redis, namespace: stack.config.namespace } })).length === 0,
    15_000,
    "the invariants",
  ).catch(() => undefined);
  expect(await checkInvariants(stack.db, sale.saleId, purchases, { redis: { client: redis, namespace: stack.config.namespace } })).toEqual([]);
  expect(purchases.filter((p) => p.answer.kind === "accepted")).toHaveLength(stock);
});

const soldOf = async (saleId: string) => ((await stack.db("sales").where({ id: saleId }).first()) as { sold: number }).sold;
