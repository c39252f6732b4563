import { describe, expect, it } from "vitest";
import { planUsers } from "./plan.js";

describe("planUsers", () => {
  const plan = planUsers({ users: 2000, rampMs: 1000, impatient: 0.1, seed: 7 });

  it("replays the same crowd for the same seed", () => {
    expect(planUsers({ users: 2000, rampMs: 1000, impatient: 0.1, seed: 7 })).toEqual(plan);
    expect(planUsers({ users: 2000, rampMs: 1000, impatient: 0.1, seed: 8 })).not.toEqual(plan);
  });

  it("sorts arrivals within the ramp, most of them early", () => {
    const arrivals = plan.map((u) => u.arrivalMs);
    expect(arrivals).toEqual([...arrivals].sort((a, b) => a - b));
    expect(Math.min(...arrivals)).toBeGreaterThanOrEqual(0);
    expect(Math.max(...arrivals)).toBeLessThanOrEqual(1000);
    expect(arrivals.filter((a) => a < 250).length).toBeGreaterThan(arrivals.filter((a) => a >= 750).length * 2);
  });

  it("gives every click a unique, valid request id; about the impatient share click twice", () => {
    const ids = plan.flatMap((u) => u.clicks.map((c) => c.requestId));
    expect(new Set(ids).size).toBe(ids.length);
    for (const id of ids) expect(id).toMatch(/^[A-Za-z0-9._:-]{1,64}$/);
    const twice = plan.filter((u) => u.clicks.length === 2).length;
    expect(twice).toBeGreaterThan(120);
    expect(twice).toBeLessThan(280);
    expect(new Set(plan.map((u) => u.userId)).size).toBe(2000);
  });
});
