import { describe, expect, it } from "vitest";
import { status } from "@grpc/grpc-js";
import { bucketize, kindOf, latencyStats, oversold, percentile, tally, unitsPerUser, usersOverLimit, type ClickResult } from "./stats.js";

describe("percentile", () => {
  const sorted = Array.from({ length: 100 }, (_, i) => i + 1);
  it("uses the nearest rank", () => {
    expect(percentile(sorted, 50)).toBe(50);
    expect(percentile(sorted, 95)).toBe(95);
    expect(percentile(sorted, 99)).toBe(99);
    expect(percentile(sorted, 100)).toBe(100);
    expect(percentile([7], 99)).toBe(7);
    expect(percentile([], 50)).toBeNaN();
  });
  it("summarizes unsorted latencies", () => {
    expect(latencyStats([30, 10, 20, 40])).toEqual({ count: 4, p50: 20, p95: 40, p99: 40, max: 40, mean: 25 });
  });
});

describe("bucketize", () => {
  it("counts answers by kind per 100 ms and latency by start", () => {
    const buckets = bucketize([
      { startMs: 5, endMs: 20, code: status.OK },
      { startMs: 10, endMs: 150, code: status.FAILED_PRECONDITION, reason: "SOLD_OUT" },
      { startMs: 120, endMs: 130, code: status.ALREADY_EXISTS, reason: "ALREADY_PURCHASED" },
      { startMs: 140, endMs: 260, code: status.UNAVAILABLE, reason: "OVERLOADED" },
    ]);
    expect(buckets.map((b) => b.atMs)).toEqual([0, 100, 200]);
    expect(buckets.map((b) => [b.won, b.soldOut, b.refused, b.error])).toEqual([
      [1, 0, 0, 0],
      [0, 1, 1, 0],
      [0, 0, 0, 1],
    ]);
    expect(buckets[0].p50).toBe(15);
    expect(buckets[0].p99).toBe(140);
    expect(buckets[1].p50).toBe(10);
    expect(buckets[2].p50).toBeNaN();
    expect(bucketize([])).toEqual([]);
  });

  it("classifies calls", () => {
    expect(kindOf({ code: status.RESOURCE_EXHAUSTED, reason: "RATE_LIMITED" })).toBe("refused");
    expect(kindOf({ code: status.DEADLINE_EXCEEDED })).toBe("error");
    expect(kindOf({ code: status.INTERNAL })).toBe("error");
    // The edge's own answers: its limits and token check are refusals, a connection it refused is no answer.
    expect(kindOf({ code: status.RESOURCE_EXHAUSTED, edge: "tokenBucket" })).toBe("refused");
    expect(kindOf({ code: status.UNAUTHENTICATED, edge: "tokenCheck" })).toBe("refused");
    expect(kindOf({ code: status.UNAVAILABLE, edge: "connection" })).toBe("error");
  });
});

describe("oversold and per-user limits", () => {
  it("finds units beyond the stock, by the answers or by Postgres", () => {
    expect(oversold(100, 100, 100)).toBe(0);
    expect(oversold(100, 101, 100)).toBe(1);
    expect(oversold(100, 100, 103)).toBe(3);
    expect(oversold(100, 40, 40)).toBe(0);
  });

  it("sums units per user from the wins", () => {
    const won = (userId: string, quantity: number): ClickResult => ({
      userId,
      requestId: `${userId}-${quantity}`,
      tokenCalls: 1,
      calls: 1,
      outcome: { kind: "won", orderId: `o-${userId}-${quantity}`, quantity, atMs: 1 },
    });
    const clicks: ClickResult[] = [
      won("a", 1),
      won("a", 2),
      won("b", 1),
      { userId: "c", requestId: "c1", tokenCalls: 1, calls: 1, outcome: { kind: "refused", code: 9, reason: "SOLD_OUT" } },
    ];
    const units = unitsPerUser(clicks);
    expect([...units]).toEqual([
      ["a", 3],
      ["b", 1],
    ]);
    expect(usersOverLimit(units, 2)).toEqual(["a"]);
    expect(usersOverLimit(units, 3)).toEqual([]);
  });

  it("tallies by key, most frequent first", () => {
    expect(tally(["x", "y", "y", undefined], (v) => v)).toEqual({ y: 2, x: 1 });
  });
});
