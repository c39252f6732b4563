// The nemesis's plans: a seed replays the same faults at the same offsets, and
// every plan keeps its bounds (window, durations, faults at a time, one per target).
import fs from "node:fs";
import { fileURLToPath } from "node:url";
import { expect, it } from "vitest";
import { CAMPAIGN_LINKS, CAMPAIGN_TARGETS, runPlan } from "./campaign.js";
import { FAULT_KINDS, HOT_SALE_REDIS_MASTER, NATS_STREAM_LEADER, planFaults, type NemesisPlanOptions, type PlannedFault } from "./nemesis.js";
import { mulberry32, runSeed } from "./prng.js";

const options = (seed: number, o: Partial<NemesisPlanOptions> = {}): NemesisPlanOptions => ({
  seed,
  windowMs: 20_000,
  kinds: FAULT_KINDS,
  targets: CAMPAIGN_TARGETS,
  links: CAMPAIGN_LINKS,
  ...o,
});

it("draws the same numbers for the same seed, and others for another", () => {
  const a = mulberry32(42);
  const b = mulberry32(42);
  const draws = Array.from({ length: 5 }, () => a());
  expect(Array.from({ length: 5 }, () => b())).toEqual(draws);
  expect(draws.every((x) => x >= 0 && x < 1)).toBe(true);
  expect(mulberry32(43)()).not.toBe(draws[0]);
  expect(runSeed(42, 0)).not.toBe(runSeed(42, 1));
});

it("plans the same faults at the same offsets for the same seed, and another plan for another seed", () => {
  const plan = planFaults(options(1234));
  expect(plan.length).toBeGreaterThan(5);
  expect(planFaults(options(1234))).toEqual(plan);
  expect(planFaults(options(1235))).not.toEqual(plan);
  // A campaign's runs: each its own plan, the same again for the same campaign seed.
  const campaign = { seed: 99, durationMs: 10_000, kinds: FAULT_KINDS, maxConcurrent: 1 };
  expect(runPlan(campaign, 3)).toEqual(runPlan({ ...campaign }, 3));
  expect(runPlan(campaign, 3)).not.toEqual(runPlan(campaign, 4));
});

const activeAt = (plan: PlannedFault[], t: number) => plan.filter((f) => f.atMs <= t && t < f.atMs + f.durationMs);

it("keeps every plan within its bounds", () => {
  for (let seed = 0; seed < 200; seed++) {
    const maxConcurrent = 1 + (seed % 3);
    const plan = planFaults(options(seed, { maxConcurrent, durationMs: [100, 3000] }));
    for (const f of plan) {
      expect(f.atMs).toBeLessThan(20_000);
      expect(f.durationMs).toBeLessThanOrEqual(3000);
      if (f.kind === "drop") expect(f.durationMs).toBe(0);
      else expect(f.durationMs).toBeGreaterThanOrEqual(100);
      if (f.kind === "kill" || f.kind === "pause") expect(CAMPAIGN_TARGETS).toContain(f.target);
      else expect(CAMPAIGN_LINKS.map((l) => `${l.service}->${l.dependency}`)).toContain(f.target);
      if (f.kind === "latency") expect(f.latencyMs).toBeGreaterThan(0);
      const active = activeAt(plan, f.atMs);
      expect(active.length).toBeLessThanOrEqual(maxConcurrent);
      expect(new Set(active.map((a) => a.target)).size).toBe(active.length);
    }
  }
});

it("plans only the kinds it is given, and nothing when no target fits them", () => {
  const plan = planFaults(options(5, { kinds: ["pause"] }));
  expect(new Set(plan.map((f) => f.kind))).toEqual(new Set(["pause"]));
  expect(planFaults(options(5, { kinds: ["latency"], links: [] }))).toEqual([]);
});

it("uses no Math.random anywhere in the campaign (a seed must replay it)", () => {
  const dir = fileURLToPath(new URL(".", import.meta.url));
  const sources = fs.readdirSync(dir).filter((f) => f.endsWith(".ts") && !f.endsWith(".test.ts"));
  expect(sources).toContain("crowd.ts");
  for (const file of sources) expect(fs.readFileSync(`${dir}/${file}`, "utf8"), file).not.toMatch(/Math\.random/);
});

it("plans the NATS cluster faults only on a cluster: the stream's leader, or one of its nodes cut off", () => {
  const kinds = ["kill-nats-leader", "cut-nats-node"] as const;
  expect(planFaults(options(7, { kinds }))).toEqual([]);
  const plan = runPlan({ seed: 7, durationMs: 20_000, kinds, maxConcurrent: 1, natsCluster: true }, 0);
  expect(new Set(plan.map((f) => f.kind))).toEqual(new Set(kinds));
  for (const f of plan) {
    if (f.kind === "kill-nats-leader") expect(f.target).toBe(NATS_STREAM_LEADER);
    else expect(["nats-1", "nats-2", "nats-3"]).toContain(f.target);
  }
  // On a cluster, the single NATS process and the links to it are not targets.
  const all = runPlan({ seed: 7, durationMs: 60_000, kinds: FAULT_KINDS, maxConcurrent: 1, natsCluster: true }, 0);
  expect(all.filter((f) => f.target === "nats" || f.target.endsWith("->nats"))).toEqual([]);
});

it("plans kill-redis-master only on a Redis Cluster, at the master of the hot sale's slot, and no fault on the single Redis there", () => {
  expect(planFaults(options(11, { kinds: ["kill-redis-master"] }))).toEqual([]);
  const plan = runPlan({ seed: 11, durationMs: 20_000, kinds: ["kill-redis-master"], maxConcurrent: 2, redisCluster: true }, 0);
  expect(plan.length).toBeGreaterThan(0);
  for (const f of plan) expect(f).toMatchObject({ kind: "kill-redis-master", target: HOT_SALE_REDIS_MASTER });
  // One target: never two masters killed at once, which could take a slot's master and its only replica.
  for (const f of plan) expect(activeAt(plan, f.atMs)).toHaveLength(1);
  // On a cluster, the single Redis process and the links to it are not targets; on both clusters, neither single server is.
  const all = runPlan({ seed: 11, durationMs: 60_000, kinds: FAULT_KINDS, maxConcurrent: 1, redisCluster: true }, 0);
  expect(all.some((f) => f.kind === "kill-redis-master")).toBe(true);
  expect(all.filter((f) => f.target === "redis" || f.target.endsWith("->redis"))).toEqual([]);
  const both = runPlan({ seed: 11, durationMs: 60_000, kinds: FAULT_KINDS, maxConcurrent: 2, redisCluster: true, natsCluster: true }, 0);
  expect(new Set(both.map((f) => f.kind))).toEqual(new Set(FAULT_KINDS));
  expect(both.filter((f) => ["redis", "nats"].includes(f.target) || /->(redis|nats)$/.test(f.target))).toEqual([]);
  // Without a cluster, the kinds drawn from are those of before: recorded seeds replay the same faults.
  expect(runPlan({ seed: 11, durationMs: 20_000, kinds: FAULT_KINDS, maxConcurrent: 1 }, 0)).toEqual(
    runPlan({ seed: 11, durationMs: 20_000, kinds: FAULT_KINDS.filter((k) => k !== "kill-redis-master"), maxConcurrent: 1 }, 0),
  );
});
