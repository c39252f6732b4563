import { describe, expect, it } from "vitest";
import { status } from "@grpc/grpc-js";
import { cleanRun } from "./fixtures.test-support.js";
import { exitCodeOf, renderSummary, summarize } from "./summary.js";

describe("summarize", () => {
  it("passes a clean sale and counts what happened", () => {
    const s = summarize(cleanRun(3, 10));
    expect(s).toMatchObject({
      users: 10,
      attempts: 10,
      retries: 0,
      successes: 3,
      unitsWon: 3,
      soldOut: 7,
      rateLimited: 0,
      rejectedByReason: { SOLD_OUT: 7 },
      errorsByCode: {},
      oversold: 0,
      overLimitUsers: { fromAnswers: 0, fromPostgres: 0 },
      lostUnits: 0,
      ok: true,
    });
    expect(s.postgres).toMatchObject({ unitsSold: 3, ordersListed: 3, missingOrders: 0, allPersistedAtMs: 200, afterLastWinMs: 200 - 27 });
    // 10 calls between 0 ms and 104 ms.
    expect(s.buyingWindowMs).toBe(104);
    expect(s.throughputPerSec).toBe(96);
    expect(s.latencyMs).toMatchObject({ p50: 9, p99: 14, max: 14 });
    expect(exitCodeOf(s)).toBe(0);
    expect(renderSummary(s)).toMatch(/PASS/);
  });

  it("fails on oversold units, by the answers or by Postgres", () => {
    const d = cleanRun(3, 10);
    d.persist.finalSold = 4;
    const s = summarize(d);
    expect(s.oversold).toBe(1);
    expect(s.ok).toBe(false);
    expect(exitCodeOf(s)).toBe(2);
    expect(s.checks.find((c) => c.name === "no unit oversold")?.ok).toBe(false);

    const answers = cleanRun(3, 10);
    answers.clicks[5].outcome = { kind: "won", orderId: "extra", quantity: 1, atMs: 60 };
    expect(summarize(answers).oversold).toBe(1);
  });

  it("fails when a user holds more than the limit", () => {
    const d = cleanRun(3, 10);
    d.clicks.push({ userId: "u0", requestId: "again", tokenCalls: 1, calls: 1, outcome: { kind: "won", orderId: "o0b", quantity: 1, atMs: 70 } });
    d.verification.unitsPerUser.set("u0", 2);
    const s = summarize(d);
    expect(s.overLimitUsers).toEqual({ fromAnswers: 1, fromPostgres: 1 });
    expect(s.ok).toBe(false);
  });

  it("fails when Postgres does not hold every unit won, or holds orders nobody was told about", () => {
    const d = cleanRun(3, 10);
    d.persist.finalSold = 2;
    d.verification.orderIds.delete("o2");
    const s = summarize(d);
    expect(s.postgres.missingOrders).toBe(1);
    expect(s.checks.filter((c) => !c.ok).map((c) => c.name)).toEqual(["units in Postgres = units won", "orders listed back = orders won"]);

    const extra = cleanRun(3, 10);
    extra.verification.orderIds.add("ghost");
    expect(summarize(extra).postgres.unexpectedOrders).toBe(1);
    expect(summarize(extra).ok).toBe(false);
  });

  it("fails when buyers were told SOLD_OUT while units were left", () => {
    const d = cleanRun(3, 10);
    d.sale.totalStock = 5;
    const s = summarize(d);
    expect(s.lostUnits).toBe(2);
    expect(s.ok).toBe(false);
  });

  it("counts retries, rate limiting and errors by code", () => {
    const d = cleanRun(3, 10);
    d.calls.push({ startMs: 1, endMs: 3, code: status.UNAVAILABLE, reason: "OVERLOADED" }, { startMs: 2, endMs: 4, code: status.DEADLINE_EXCEEDED });
    d.clicks[9].outcome = { kind: "refused", code: status.RESOURCE_EXHAUSTED, reason: "RATE_LIMITED" };
    d.clicks[8].outcome = { kind: "error", code: status.UNAVAILABLE, message: "down" };
    const s = summarize(d);
    expect(s).toMatchObject({ attempts: 12, retries: 2, rateLimited: 1, gaveUp: 1, errorsByCode: { DEADLINE_EXCEEDED: 1, UNAVAILABLE: 1 } });
    expect(s.rejectedByReason).toEqual({ SOLD_OUT: 5, RATE_LIMITED: 1 });
  });

  it("counts purchase tokens, and token refusals by reason apart from PlaceOrder's", () => {
    const d = cleanRun(3, 10);
    d.clicks[9] = { userId: "u9", requestId: "r9", tokenCalls: 2, calls: 0, outcome: { kind: "tokenRefused", code: status.FAILED_PRECONDITION, reason: "SOLD_OUT" } };
    d.clicks[8] = { userId: "u8", requestId: "r8", tokenCalls: 1, calls: 0, outcome: { kind: "tokenRefused", code: status.PERMISSION_DENIED, reason: "NOT_ELIGIBLE" } };
    d.calls.splice(8, 2);
    const s = summarize(d);
    expect(s.tokens).toEqual({ calls: 11, issued: 8, refusedByReason: { NOT_ELIGIBLE: 1, SOLD_OUT: 1 } });
    expect(s).toMatchObject({ attempts: 8, retries: 0, soldOut: 6, rejectedByReason: { SOLD_OUT: 5 } });
    expect(s.ok).toBe(true);
    expect(renderSummary(s)).toMatch(/^token refusals by reason\s+NOT_ELIGIBLE 1, SOLD_OUT 1$/m);
  });

  it("counts the edge's refusals by kind and by call, apart from the services' refusals", () => {
    const d = cleanRun(3, 10);
    d.clicks[9].outcome = { kind: "refused", code: status.RESOURCE_EXHAUSTED, edge: "tokenBucket" };
    d.calls[9] = { ...d.calls[9], code: status.RESOURCE_EXHAUSTED, reason: undefined, edge: "tokenBucket" };
    d.clicks[8] = { userId: "u8", requestId: "r8", tokenCalls: 1, calls: 0, outcome: { kind: "tokenRefused", code: status.RESOURCE_EXHAUSTED, edge: "globalLimit" } };
    d.calls.splice(8, 1);
    d.edge = {
      address: "127.0.0.1:8080",
      refusals: [
        { call: "PlaceOrder", kind: "tokenBucket" },
        { call: "IssuePurchaseToken", kind: "globalLimit" },
        { call: "GetSaleStatus", kind: "globalLimit" },
        { call: "WatchOrder", kind: "globalLimit" },
        { call: "PlaceOrder", kind: "connection", cause: "upstream connect error or disconnect/reset before headers. reset reason: overflow" },
      ],
    };
    const s = summarize(d);
    expect(s.edge).toEqual({
      route: "edge",
      address: "127.0.0.1:8080",
      refused: 5,
      byKind: { tokenBucket: 1, globalLimit: 3, tokenCheck: 0, connection: 1 },
      byCall: { PlaceOrder: 2, IssuePurchaseToken: 1, GetSaleStatus: 1, WatchOrder: 1, GetOrder: 0 },
      connectionCauses: { "upstream connect error or disconnect/reset before headers. reset reason: overflow": 1 },
    });
    // Envoy's refusals are answers: counted as rate limited, not as errors, and not under the services' reasons.
    expect(s).toMatchObject({ rateLimited: 2, gaveUp: 0, errorsByCode: {}, rejectedByReason: { SOLD_OUT: 5 }, tokens: { refusedByReason: {} } });
    const text = renderSummary(s);
    expect(text).toMatch(/^buyers' calls\s+through the edge at 127\.0\.0\.1:8080$/m);
    expect(text).toMatch(/^edge refusals \(calls\)\s+5: token bucket 1 · global limit 3 · token check 0 · connection 1$/m);
    expect(text).toMatch(/^edge refusals by call\s+PlaceOrder 2, IssuePurchaseToken 1, GetSaleStatus 1, WatchOrder 1, GetOrder 0$/m);
    expect(text).toMatch(/^connection refusals by cause\s+upstream connect error or disconnect\/reset before headers\. reset reason: overflow 1$/m);
  });

  it("says when the calls went direct", () => {
    const s = summarize(cleanRun(3, 10));
    expect(s.edge).toMatchObject({ route: "direct", address: null, refused: 0 });
    expect(renderSummary(s)).toMatch(/^buyers' calls\s+direct to the services \(--direct\)$/m);
    expect(renderSummary(s)).toMatch(/^edge refusals\s+none: not through the edge$/m);
    expect(renderSummary(s)).not.toMatch(/connection refusals by cause/);
  });
});
