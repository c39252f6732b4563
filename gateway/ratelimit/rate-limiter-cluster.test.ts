// The rate limiter on a real Redis Cluster of three masters (a replica each): the counters of
// one call hash to different slots, on different nodes, and the sale's rules
// to another; every check must still be answered (no CROSSSLOT) and counted.
import { Cluster } from "ioredis";
import { afterAll, beforeAll, describe, expect, it } from "vitest";
import { saleRulesKey } from "../../services/common/sale-rules.js";
import { CLUSTERS_START_MS, startClusters, type Clusters } from "../../test/support/clusters.js";
import { parseRateLimitConfig } from "./limits-file.js";
import { createOverLimitCache } from "./over-limit-cache.js";
import { counterKey, createRateLimiter, type DescriptorInput, type RateLimiter } from "./rate-limiter.js";

const RULES = parseRateLimitConfig(`
domain: seckill
descriptors:
  - key: user_id
    rate_limit: { unit: minute, requests_per_unit: 2 }
  - key: remote_address
    rate_limit: { unit: minute, requests_per_unit: 100 }
  - key: sale_id
    descriptors:
      - key: user_id
        rate_limit: { unit: minute, requests_per_unit: 5 }
`);
const NOW = Date.UTC(2030, 0, 1, 12, 0, 30);
const MINUTE = Date.UTC(2030, 0, 1, 12, 0, 0);
const SALE = "01KC5ED0000000000000000SAE";
const NS = "tcluster";

const user = (id: string): DescriptorInput => ({ entries: [{ key: "user_id", value: id }] });
const address = (ip: string): DescriptorInput => ({ entries: [{ key: "remote_address", value: ip }] });
const saleUser = (id: string): DescriptorInput => ({
  entries: [
    { key: "sale_id", value: SALE },
    { key: "user_id", value: id },
  ],
});

let clusters: Clusters;
let cluster: Cluster;
let limiter: RateLimiter;

beforeAll(async () => {
  clusters = await startClusters({ redis: true });
  cluster = new Cluster(clusters.redis!.nodes, { enableAutoPipelining: true });
  limiter = createRateLimiter({ redis: cluster, namespace: NS, rules: RULES, clock: () => NOW, overLimit: createOverLimitCache(100) });
}, CLUSTERS_START_MS);

afterAll(async () => {
  cluster?.disconnect();
  await clusters?.stop();
});

describe("the rate limiter on a Redis Cluster", () => {
  it("counts every descriptor of a call whose counters live on different nodes", async () => {
    const descriptors = [user("ann"), address("10.1.2.3"), saleUser("ann")];
    const keys = descriptors.map((d) => counterKey(NS, "seckill", d.entries, MINUTE));
    // The nodes serving the counters' slots: more than one, so no single command or script could touch them all.
    const slots = await Promise.all(keys.map(async (k) => Number(await cluster.call("CLUSTER", "KEYSLOT", k))));
    expect(new Set(slots.map((slot) => cluster.slots[slot]?.[0])).size).toBeGreaterThan(1);

    const first = await limiter.check({ domain: "seckill", descriptors, hitsAddend: 2 });
    expect(first.map((r) => r.limited && [r.overLimit, r.remaining])).toEqual([
      [false, 0],
      [false, 98],
      [false, 3],
    ]);
    expect(await Promise.all(keys.map((k) => cluster.get(k)))).toEqual(["2", "2", "2"]);
    const ttl = await cluster.pttl(keys[0]!);
    expect(ttl).toBeGreaterThan(30_000);
    expect(ttl).toBeLessThanOrEqual(31_000);
  });

  it("stops a closed sale's descriptors, reading its rules on their own node", async () => {
    await cluster.hset(saleRulesKey(NS, SALE), "ends", NOW + 3600_000, "closed", NOW - 1);
    const [sale, own] = await limiter.check({ domain: "seckill", descriptors: [saleUser("bea"), user("bea")], hitsAddend: 1 });
    expect(sale).toMatchObject({ limited: true, overLimit: true, limit: { name: "sale_closed" } });
    expect(own).toMatchObject({ limited: true, overLimit: false, remaining: 1 });
  });
});
