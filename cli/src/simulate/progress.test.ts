import { describe, expect, it } from "vitest";
import { progressLine, rateTracker } from "./progress.js";

describe("progress", () => {
  it("shows users done, wins, sold out and the call rate", () => {
    const line = progressLine({ done: 500, total: 1000, successes: 20, soldOut: 400, calls: 600 }, 1234.4, 120, false);
    expect(line).toMatch(/^\[#+-+\] 500\/1000 users · 20 won · 400 sold out · 1234 calls\/s$/);
    const bar = /\[(.*)\]/.exec(line)![1];
    expect(bar.split("#").length - 1).toBe(bar.length / 2);
  });

  it("measures calls per second over the last second", () => {
    const rate = rateTracker(1000);
    expect(rate(0, 0)).toBe(0);
    expect(rate(500, 100)).toBe(200);
    expect(rate(1000, 300)).toBe(300);
    expect(rate(2000, 300)).toBe(0);
  });
});
