// The services on a three-node NATS cluster with JETSTREAM_REPLICAS=3: the
// stream and its consumers are kept on all three nodes, and kill -9 of the
// stream's leader in the middle of a sale loses no acknowledged reservation
// (each was acknowledged only once a majority of the nodes stored it) and
// sells no unit twice; the order writer and inventory's release consumer,
// whose consumers that node led too, go on consuming from the new leaders; the
// killed node comes back and catches up.
import { jetstreamManager, type JetStreamManager } from "@nats-io/jetstream";
import type { NatsConnection } from "@nats-io/transport-node";
import { afterAll, beforeAll, expect, it } from "vitest";
import { connectNats, deadLetterNames, eventNames } from "../services/common/event-bus.js";
import type { NatsCluster } from "../tools/stack/nats-cluster.js";
import { CLUSTERS_START_MS, startClusters, type Clusters } from "./support/clusters.js";
import { startCrowd } from "./support/crowd.js";
import { checkInvariants } from "./support/invariants.js";
import { eventually, startTestStack, type TestStack } from "./support/stack.js";

let clusters: Clusters;
let cluster: NatsCluster;
let stack: TestStack;
let nc: NatsConnection;
let jsm: JetStreamManager;
beforeAll(async () => {
  clusters = await startClusters({ nats: true });
  cluster = clusters.nats!;
  // Acks the writer sent to the dead leader may be lost: those events come back after AckWait (2 s here).
  stack = await startTestStack({ ...clusters.overrides, WRITER_ACK_WAIT_MS: "2000", SWEEP_INTERVAL_MS: "200", SWEEP_AFTER_MS: "1500" });
  nc = await connectNats(cluster.url, "jetstream-cluster-test");
  jsm = await jetstreamManager(nc);
}, CLUSTERS_START_MS);
afterAll(async () => {
  await nc?.close();
  await stack?.stop();
  await clusters?.stop();
});

it("keeps the streams and the durable consumers on three nodes", async () => {
  const names = eventNames(stack.config.namespace);
  for (const stream of [names.stream, deadLetterNames(stack.config.namespace).stream]) {
    const info = await jsm.streams.info(stream);
    expect(info.config.num_replicas).toBe(3);
    expect(info.cluster?.replicas).toHaveLength(2);
  }
  for (const consumer of [names.writerConsumer, names.inventoryReleaseConsumer]) {
    const info = await jsm.consumers.info(names.stream, consumer);
    expect(info.cluster?.replicas).toHaveLength(2);
  }
});

const consumerLeader = async (stream: string, consumer: string) => (await jsm.consumers.info(stream, consumer).catch(() => undefined))?.cluster?.leader;

/** Moves a consumer's leadership (each step-down elects another replica) until `node` leads it. */
async function leadConsumerFrom(stream: string, consumer: string, node: string): Promise<void> {
  for (let attempt = 0; attempt < 30; attempt++) {
    const leader = await consumerLeader(stream, consumer);
    if (leader === node) return;
    if (leader) await nc.request(`$JS.API.CONSUMER.LEADER.STEPDOWN.${stream}.${consumer}`, undefined, { timeout: 2000 }).catch(() => undefined);
    await eventually(async () => ![undefined, leader].includes(await consumerLeader(stream, consumer)), 10_000, `a new leader of ${consumer}`, 100);
  }
  throw new Error(`${node} did not become the leader of ${consumer}`);
}

/** Every event up to `seq` written and acked (asking again while the cluster elects leaders). */
async function writerDrained(seq: number, timeoutMs: number): Promise<void> {
  const names = eventNames(stack.config.namespace);
  await eventually(
    async () => {
      const info = await jsm.consumers.info(names.stream, names.writerConsumer).catch(() => undefined);
      return info !== undefined && info.ack_floor.stream_seq >= seq && info.num_ack_pending === 0 && info.num_pending === 0;
    },
    timeoutMs,
    `the writer to finish the events up to seq ${seq}`,
  );
}

it("loses no acknowledged reservation and oversells nothing when the stream's leader is killed mid-sale", { timeout: 60_000 }, async () => {
  const stock = 40;
  const names = eventNames(stack.config.namespace);
  // The node to be killed leads the stream and both durable consumers: their waiting pull requests die with it.
  const leader = await cluster.streamLeader(names.stream);
  await leadConsumerFrom(names.stream, names.writerConsumer, leader);
  await leadConsumerFrom(names.stream, names.inventoryReleaseConsumer, leader);
  const sale = await stack.createSale({ totalStock: stock, perUserLimit: 1 });
  const crowd = startCrowd(stack.orders, sale.saleId, { users: 200, arrivalMs: 6000 });
  await eventually(async () => crowd.progress.accepted >= 5, 20_000, "the first orders");

  await cluster.kill(leader);
  expect(cluster.pid(leader)).toBeUndefined();
  const acceptedAtKill = crowd.progress.accepted;
  expect(acceptedAtKill).toBeLessThan(stock);
  // The two nodes left elect a new leader, and the sale goes on without the dead one.
  expect(await cluster.streamLeader(names.stream)).not.toBe(leader);
  await eventually(async () => crowd.progress.accepted > acceptedAtKill, 20_000, "purchases accepted after the kill");

  const { purchases } = await crowd.done;
  expect(purchases.filter((p) => p.answer.kind === "unanswered")).toEqual([]);
  expect(purchases.filter((p) => p.answer.kind === "accepted")).toHaveLength(stock);
  // Within seconds of the new leaders' election (without re-pulling, a minute or more).
  await writerDrained((await jsm.streams.info(names.stream)).state.last_seq, 20_000);
  expect(await consumerLeader(names.stream, names.writerConsumer)).not.toBe(leader);
  const redis = { client: stack.redis, namespace: stack.config.namespace };
  await eventually(async () => (await checkInvariants(stack.db, sale.saleId, purchases, { redis })).length === 0, 15_000, "the invariants").catch(() => undefined);
  expect(await checkInvariants(stack.db, sale.saleId, purchases, { redis })).toEqual([]);

  // The killed node comes back with its store and catches up as a follower.
  await cluster.restart(leader);
  await eventually(
    async () => ((await jsm.streams.info(names.stream)).cluster?.replicas ?? []).some((r) => r.name === leader && r.current),
    20_000,
    `${leader} to be a current replica again`,
  );
});
