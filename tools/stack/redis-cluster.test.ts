// The local Redis Cluster, and the stock store on it: every key a script is
// given lies on the sale's one slot, a sale sells exactly its stock through
// MOVED-following cluster connections, and a replica promoted after its master
// is killed never sells a sale loaded on the dead master; a killed master
// restarted comes back as the replica of the node that took its slots.
import { mkdtemp, rm } from "node:fs/promises";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { Redis } from "ioredis";
import { afterAll, beforeAll, describe, expect, it } from "vitest";
import { createRedis, onEveryMaster, type RedisClient } from "../../services/common/redis.js";
import { createRedisLocks } from "../../services/inventory/locks.js";
import { createRedisStockStore, saleKeys, type SaleRules, type StockStore } from "../../services/inventory/stock-store.js";
import { createRedisSweepIndex } from "../../services/inventory/sweep-index.js";
import { startRedisCluster, type RedisCluster } from "./redis-cluster.js";

const NS = "clustertest";
const rules = (overrides: Partial<SaleRules> = {}): SaleRules => ({
  startsAtMs: 0,
  endsAtMs: Date.now() + 3600_000,
  closedAtMs: 0,
  perUserLimit: 1,
  totalStock: 5,
  releasePolicy: "RESTORE",
  ...overrides,
});
const attempt = (i: number) => ({ userId: `u${i}`, requestId: `r${i}`, quantity: 1, newReservationId: `res-${i}` });

let dir: string;
let cluster: RedisCluster;
let redis: RedisClient;
let store: StockStore;
beforeAll(async () => {
  dir = await mkdtemp(join(tmpdir(), "seckill-redis-cluster-"));
  cluster = await startRedisCluster({ stateDir: dir });
  redis = createRedis({ redisUrl: "redis://127.0.0.1:6379", redisClusterNodes: cluster.nodes });
  // A killed node's connection errors are expected here; the calls' own errors are what the tests look at.
  redis.on("error", () => undefined);
  await redis.connect();
  store = createRedisStockStore(redis, NS);
}, 60_000);
afterAll(async () => {
  redis?.disconnect();
  await cluster?.stop();
  await rm(dir, { recursive: true, force: true });
});

describe("a local Redis Cluster", () => {
  it("runs three masters with a replica each, every slot served", async () => {
    expect(cluster.nodes).toHaveLength(6);
    const masters = await onEveryMaster(redis, async (node) => `${node.options.host}:${node.options.port}`);
    expect(masters).toHaveLength(3);
    for (const node of cluster.nodes) expect(cluster.pid(node)).toBeGreaterThan(0);
  });

  it("puts every key each per-sale script is given on the sale's one slot, and sales on different slots", async () => {
    const saleIds = ["01SALEA", "01SALEB", "01SALEC", "01SALED"];
    const slotsOfSales = [];
    for (const saleId of saleIds) {
      const slots = await Promise.all(Object.values(saleKeys(NS, saleId)).map((key) => cluster.slotOf(key)));
      expect(new Set(slots).size).toBe(1);
      slotsOfSales.push(slots[0]);
    }
    expect(new Set(slotsOfSales).size).toBeGreaterThan(1);
  });

  it("sells a sale exactly its stock, one unit per buyer, through the cluster", async () => {
    const saleId = "01SELLS";
    expect(await store.load(saleId, rules(), 5, [])).toEqual({ loaded: true, stockLeft: 5 });
    const answers = await store.reserve(
      saleId,
      Date.now(),
      Array.from({ length: 8 }, (_, i) => attempt(i)),
    );
    expect(answers.filter((a) => a.outcome === "OK")).toHaveLength(5);
    expect(answers.filter((a) => a.outcome === "SOLD_OUT")).toHaveLength(3);
    const again = await store.reserve(saleId, Date.now(), [attempt(0), attempt(0)]);
    expect(again.map((a) => a.outcome)).toEqual(["REPLAY", "REPLAY"]);
    const live = await store.live(saleId);
    expect(live).toMatchObject({ warm: true, stockLeft: 0, totalStock: 5 });
    const snapshot = await store.snapshot(saleId);
    expect(snapshot.reservations).toHaveLength(5);
  });

  it("keeps the global keys (sweep index, locks) working with single-key commands", async () => {
    const index = createRedisSweepIndex(redis, NS);
    await index.addSale("01SELLS");
    await index.addSale("01OTHER");
    expect((await index.sales()).sort()).toEqual(["01OTHER", "01SELLS"]);
    const locks = createRedisLocks(redis, NS);
    expect(await locks.tryLock("sweeper", "me", 10_000)).toBe(true);
    expect(await locks.tryLock("sweeper", "other", 10_000)).toBe(false);
    await locks.unlock("sweeper", "me");
    expect(await locks.tryLock("sweeper", "other", 10_000)).toBe(true);
  });

  it("never sells from the replica promoted when the master of the sale's slot dies: the sale is cold until discarded and loaded again", async () => {
    const saleId = "01FAILOVER";
    await store.load(saleId, rules({ totalStock: 10 }), 10, []);
    expect((await store.reserve(saleId, Date.now(), [attempt(1), attempt(2)])).map((a) => a.outcome)).toEqual(["OK", "OK"]);
    const slot = await cluster.slotOf(saleKeys(NS, saleId).rules);
    // Let the replica have the writes: what it holds is then exactly what the master held, and still not sold from.
    await onEveryMaster(redis, (node) => node.call("WAIT", 1, 1000));
    const { killed, promoted } = await cluster.killMasterOf(slot);
    expect(promoted).not.toBe(killed);
    failover = { slot, killed, promoted };

    // The client follows the promotion; the sale's keys are there, loaded on another server.
    const outcomes = await untilAnswered(() => store.reserve(saleId, Date.now(), [attempt(3)]));
    expect(outcomes.map((a) => a.outcome)).toEqual(["COLD"]);
    expect(await store.live(saleId)).toEqual({ warm: false });
    expect(await store.close(saleId, Date.now())).toBe(0);

    // Discarded and loaded again (as lost-sale-rebuild.ts does, from Postgres), it sells on.
    expect(await store.discard(saleId)).toBe(true);
    expect(await store.discard(saleId)).toBe(false);
    await store.load(saleId, rules({ totalStock: 10 }), 8, [
      ["u1", 1],
      ["u2", 1],
    ]);
    const after = await store.reserve(saleId, Date.now(), [attempt(1), attempt(3)]);
    expect(after.map((a) => a.outcome)).toEqual(["ALREADY_PURCHASED", "OK"]);
    expect(await store.live(saleId)).toMatchObject({ warm: true, stockLeft: 7 });
  }, 60_000);

  it("restarts a killed master as the replica of the node that took its slots, ready to take them back", async () => {
    const { slot, killed, promoted } = failover!;
    await cluster.restart(killed);
    expect(cluster.pid(killed)).toBeGreaterThan(0);
    expect(await replicationOf(killed)).toMatchObject({ role: "slave", master_port: promoted.split(":")[1], master_link_status: "up" });
    expect(await cluster.masterOf(slot)).toBe(promoted);

    // It holds the slot's data again: the next failover of the slot promotes it, and it sells on.
    expect((await store.reserve("01FAILOVER", Date.now(), [attempt(4)])).map((a) => a.outcome)).toEqual(["OK"]);
    await onEveryMaster(redis, (node) => node.call("WAIT", 1, 1000));
    expect(await cluster.killMasterOf(slot)).toEqual({ killed: promoted, promoted: killed });
    const outcomes = await untilAnswered(() => store.reserve("01FAILOVER", Date.now(), [attempt(4)]));
    expect(outcomes.map((a) => a.outcome)).toEqual(["COLD"]);
    await cluster.restart(promoted);
    expect(await replicationOf(promoted)).toMatchObject({ role: "slave", master_port: killed.split(":")[1] });
  }, 60_000);
});

let failover: { slot: number; killed: string; promoted: string } | undefined;

/** A node's INFO replication, as fields. */
async function replicationOf(node: string): Promise<Record<string, string>> {
  const [host, port] = node.split(":");
  const client = new Redis({ host, port: Number(port), lazyConnect: true });
  try {
    await client.connect();
    const info = await client.info("replication");
    return Object.fromEntries(
      info
        .split(/\r?\n/)
        .filter((line) => line.includes(":"))
        .map((line) => line.split(":", 2) as [string, string]),
    );
  } finally {
    client.disconnect();
  }
}

/** Calls fn until the cluster answers it (the client finds the promoted replica within seconds). */
async function untilAnswered<T>(fn: () => Promise<T>, timeoutMs = 15_000): Promise<T> {
  const deadline = Date.now() + timeoutMs;
  for (;;) {
    try {
      return await fn();
    } catch (error) {
      if (Date.now() > deadline) throw error;
      await new Promise((r) => setTimeout(r, 100));
    }
  }
}
