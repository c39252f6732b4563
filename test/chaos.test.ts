// A short seeded fault campaign (the one `npm run chaos` runs at length): one
// run of two sales, each with a crowd ten times its stock, under faults of
// several kinds must end without an anomaly, and injects exactly the faults its seed plans. And the
// campaign can fail: an order row deleted after a run is reported as lost.
import { afterAll, beforeAll, expect, it } from "vitest";
import { CAMPAIGN_TARGETS, faultRows, formatSummary, runCampaign, startCampaignStack, type CampaignOptions } from "../tools/chaos/campaign.js";
import type { FaultStack } from "../tools/chaos/fault-stack.js";
import { FAULT_KINDS } from "../tools/chaos/nemesis.js";

// A seed whose first run pauses Postgres, drops a link, kills Redis, slows a link and kills Postgres.
const SEED = 1059;

let stack: FaultStack;
beforeAll(async () => {
  stack = await startCampaignStack(SEED);
});
afterAll(async () => {
  await stack?.stop();
});

const campaign = (o: Partial<CampaignOptions> = {}): CampaignOptions => ({
  seed: SEED,
  runs: 1,
  sales: 2,
  users: 100,
  stock: 10,
  durationMs: 6000,
  kinds: FAULT_KINDS,
  maxConcurrent: 1,
  settleTimeoutMs: 20_000,
  stack,
  ...o,
});

it("finds no anomaly in a short seeded campaign, and injects the faults its seed plans", { timeout: 50_000 }, async () => {
  expect(stack.services).toEqual(expect.arrayContaining(CAMPAIGN_TARGETS.filter((t) => !["redis", "nats", "postgres"].includes(t))));
  const result = await runCampaign(campaign());
  const summary = formatSummary(result);
  expect(result.runs[0].anomalies, summary).toEqual([]);
  expect(result.ok).toBe(true);
  expect(summary).toContain("PASS: no anomaly");
  expect(summary).toContain(`seed ${SEED}`);

  const [run] = result.runs;
  // The seed's plan, every fault of it injected and healed: none before its planned offset, none healed before its duration.
  expect(run.faults.map((f) => `${f.kind} ${f.target}`)).toEqual(["pause postgres", "drop inventory->nats", "kill redis", "latency writer->postgres", "kill postgres"]);
  expect(run.faults.filter((f) => f.injectedAtMs === undefined || f.healedAtMs === undefined || f.error)).toEqual([]);
  for (const f of run.faults) {
    expect(f.injectedAtMs!, `${f.kind} ${f.target}`).toBeGreaterThanOrEqual(f.atMs - 5);
    expect(f.healedAtMs!, `${f.kind} ${f.target}`).toBeGreaterThanOrEqual(f.injectedAtMs! + f.durationMs - 5);
  }
  expect(faultRows(result).reduce((n, r) => n + r.injected, 0)).toBe(run.faults.length);
  // Crowds ten times the stock: every sale's stock sold, nobody left without an answer.
  expect(run.saleIds).toHaveLength(2);
  expect(run.sold).toBe(20);
  expect(run.purchases.accepted).toBe(20);
  expect(run.purchases.unanswered).toBe(0);
});

it("reports a lost order (and fails) when an acknowledged order's row is deleted after the run", { timeout: 40_000 }, async () => {
  const result = await runCampaign(
    campaign({
      seed: SEED + 1,
      sales: 1,
      users: 60,
      stock: 6,
      durationMs: 2000,
      kinds: ["drop"],
      settleTimeoutMs: 5000,
      async beforeCheck({ stack: s, sales: [{ saleId, purchases }] }) {
        const won = purchases.find((p) => p.answer.kind === "accepted")!;
        expect(
          await s
            .db("orders")
            .where({ sale_id: saleId, id: won.answer.kind === "accepted" ? won.answer.orderId : "" })
            .delete(),
        ).toBe(1);
      },
    }),
  );
  expect(result.ok).toBe(false);
  expect(result.runs[0].anomalies.map((a) => a.kind)).toContain("lost");
  const summary = formatSummary(result);
  expect(summary).toMatch(/FAIL: \d+ anomal/);
  expect(summary).toMatch(/drop \(all\)\s+1\s+\d+\s+0\s+.*lost 1/);
});
