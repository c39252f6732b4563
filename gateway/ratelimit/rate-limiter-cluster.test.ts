// The rate limiter on a real Redis Cluster of three masters: the counters of
// one call hash to different slots, on different nodes, and the sale's rules
// to another; every check must still be answered (no CROSSSLOT) and counted.
import { type ChildProcess, execFile, spawn } from "node:child_process";
import { mkdtempSync, rmSync } from "node:fs";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { setTimeout as sleep } from "node:timers/promises";
import { promisify } from "node:util";
import { Cluster } from "ioredis";
import { afterAll, beforeAll, describe, expect, it } from "vitest";
import { saleRulesKey } from "../../services/common/sale-rules.js";
import { freePorts } from "../../tools/stack/ports.js";
import { parseRateLimitConfig } from "./limits-file.js";
import { createOverLimitCache } from "./over-limit-cache.js";
import { counterKey, createRateLimiter, type DescriptorInput, type RateLimiter } from "./rate-limiter.js";

const run = promisify(execFile);

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

let dir: string;
const servers: ChildProcess[] = [];
let cluster: Cluster;
let limiter: RateLimiter;

beforeAll(async () => {
  dir = mkdtempSync(join(tmpdir(), "seckill-rl-cluster-"));
  const ports = await freePorts(6);
  const nodes = ports.slice(0, 3);
  for (const [i, port] of nodes.entries()) {
    const args = ["--port", String(port), "--cluster-port", String(ports[3 + i]), "--bind", "127.0.0.1", "--cluster-enabled", "yes"];
    args.push("--cluster-config-file", `nodes-${port}.conf`, "--dir", dir, "--save", "", "--appendonly", "no");
    servers.push(spawn("redis-server", args, { stdio: "ignore" }));
  }
  for (const port of nodes) await waitFor(async () => (await run("redis-cli", ["-p", String(port), "ping"])).stdout.includes("PONG"));
  await run("redis-cli", ["--cluster", "create", ...nodes.map((p) => `127.0.0.1:${p}`), "--cluster-replicas", "0", "--cluster-yes"]);
  await waitFor(async () => (await run("redis-cli", ["-p", String(nodes[0]), "cluster", "info"])).stdout.includes("cluster_state:ok"));
  cluster = new Cluster(
    nodes.map((port) => ({ host: "127.0.0.1", port })),
    { enableAutoPipelining: true },
  );
  limiter = createRateLimiter({ redis: cluster, namespace: NS, rules: RULES, clock: () => NOW, overLimit: createOverLimitCache(100) });
}, 30_000);

afterAll(async () => {
  cluster?.disconnect();
  for (const server of servers) server.kill("SIGKILL");
  if (dir) rmSync(dir, { recursive: true, force: true });
});

async function waitFor(check: () => Promise<boolean>): Promise<void> {
  const deadline = Date.now() + 15_000;
  for (;;) {
    try {
      if (await check()) return;
    } catch {
      // not up yet
    }
    if (Date.now() > deadline) throw new Error("the Redis Cluster did not come up");
    await sleep(100);
  }
}

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
