import { describe, expect, it } from "vitest";
import { Metadata, status } from "@grpc/grpc-js";
import { rejectionMetadata } from "@seckill/sdk";
import { mapBounded, semaphore } from "./pool.js";
import type { CallRecord } from "./stats.js";
import { MAX_EDGE_HELD_RETRIES, clickBuy, placeWithRetries, runBuyer, type BuyerPort, type Clock } from "./user.js";

const refusal = (code: status, message: string, reason?: string, retryDelayMs?: number) =>
  Object.assign(new Error(message), { code, details: message, metadata: reason ? rejectionMetadata(code, message, reason, { retryDelayMs }) : new Metadata() });

function fakeClock(): Clock & { slept: number[] } {
  let now = 0;
  const slept: number[] = [];
  return {
    slept,
    now: () => now,
    sleep: async (ms) => {
      slept.push(ms);
      now += ms;
    },
  };
}

/** A port answering PlaceOrder from `answers` and IssuePurchaseToken from `tokens` (by default a new token each time). */
function fakePort(answers: (() => Promise<{ orderId: string; quantity: number }>)[], tokens?: (() => Promise<string>)[]) {
  const sent: { userId: string; requestId: string; retry: boolean; token: string }[] = [];
  const issued: string[] = [];
  const port: BuyerPort = {
    saleStatus: async () => ({}),
    purchaseToken: (userId) => {
      issued.push(userId);
      return tokens ? tokens.shift()!() : Promise.resolve(`token-${issued.length}`);
    },
    placeOrder: (userId, r) => {
      sent.push({ userId, requestId: r.requestId, retry: r.retry, token: r.token });
      return answers.shift()!();
    },
  };
  return { port, sent, issued };
}

describe("placeWithRetries", () => {
  it("retries a lost answer with the same request id and retry: true, after the RetryInfo delay", async () => {
    const { port, sent } = fakePort([
      () => Promise.reject(refusal(status.UNAVAILABLE, "redis down", "OVERLOADED", 300)),
      () => Promise.reject(refusal(status.DEADLINE_EXCEEDED, "Deadline exceeded")),
      () => Promise.resolve({ orderId: "o1", quantity: 1 }),
    ]);
    const clock = fakeClock();
    const calls: CallRecord[] = [];
    const result = await placeWithRetries("alice", "req-1", "t1", port, { quantity: 1, maxAttempts: 4 }, clock, () => 0, (c: CallRecord) => calls.push(c));
    expect(sent).toEqual([
      { userId: "alice", requestId: "req-1", retry: false, token: "t1" },
      { userId: "alice", requestId: "req-1", retry: true, token: "t1" },
      { userId: "alice", requestId: "req-1", retry: true, token: "t1" },
    ]);
    expect(clock.slept).toEqual([300, 50]); // the server's delay, then the backoff for the second retry
    expect(result).toMatchObject({ calls: 3, outcome: { kind: "won", orderId: "o1" } });
    expect(calls.map((c) => c.code)).toEqual([status.UNAVAILABLE, status.DEADLINE_EXCEEDED, status.OK]);
  });

  it("gives up after the last attempt and reports the error", async () => {
    const { port, sent } = fakePort(Array.from({ length: 3 }, () => () => Promise.reject(refusal(status.UNAVAILABLE, "no connection"))));
    const result = await placeWithRetries("bob", "r", "t", port, { quantity: 1, maxAttempts: 3 }, fakeClock(), () => 0.5, () => {});
    expect(sent).toHaveLength(3);
    expect(result.outcome).toEqual({ kind: "error", code: status.UNAVAILABLE, message: "no connection" });
  });

  it("takes a refusal as the answer: no retry", async () => {
    const { port, sent } = fakePort([() => Promise.reject(refusal(status.FAILED_PRECONDITION, "sold out", "SOLD_OUT"))]);
    const result = await placeWithRetries("carol", "r", "t", port, { quantity: 1, maxAttempts: 4 }, fakeClock(), () => 0, () => {});
    expect(sent).toHaveLength(1);
    expect(result.outcome).toEqual({ kind: "refused", code: status.FAILED_PRECONDITION, reason: "SOLD_OUT" });
  });
});

describe("clickBuy", () => {
  it("gets a purchase token, retrying a lost answer, and places the order with it", async () => {
    const { port, sent, issued } = fakePort([() => Promise.resolve({ orderId: "o1", quantity: 1 })], [
      () => Promise.reject(refusal(status.UNAVAILABLE, "gateway restarting")),
      () => Promise.resolve("tok"),
    ]);
    const calls: CallRecord[] = [];
    const result = await clickBuy("erin", "req-9", port, { quantity: 1, maxAttempts: 3 }, fakeClock(), () => 0, (c) => calls.push(c));
    expect(issued).toEqual(["erin", "erin"]);
    expect(sent).toEqual([{ userId: "erin", requestId: "req-9", retry: false, token: "tok" }]);
    expect(result).toMatchObject({ tokenCalls: 2, calls: 1, outcome: { kind: "won", orderId: "o1" } });
    expect(calls.map((c) => c.code)).toEqual([status.OK]); // only PlaceOrder calls are recorded
  });

  it("stops at a refused token: no PlaceOrder, the refusal kept apart from PlaceOrder's", async () => {
    const { port, sent } = fakePort([], [() => Promise.reject(refusal(status.FAILED_PRECONDITION, "the sale is sold out", "SOLD_OUT"))]);
    const result = await clickBuy("fred", "r", port, { quantity: 1, maxAttempts: 3 }, fakeClock(), () => 0, () => {});
    expect(sent).toEqual([]);
    expect(result).toEqual({ userId: "fred", requestId: "r", tokenCalls: 1, calls: 0, outcome: { kind: "tokenRefused", code: status.FAILED_PRECONDITION, reason: "SOLD_OUT" } });
  });

  it("gives up when the gateway never answers", async () => {
    const { port, sent } = fakePort([], Array.from({ length: 2 }, () => () => Promise.reject(refusal(status.UNAVAILABLE, "no connection"))));
    const result = await clickBuy("gina", "r", port, { quantity: 1, maxAttempts: 2 }, fakeClock(), () => 0, () => {});
    expect(sent).toEqual([]);
    expect(result).toMatchObject({ tokenCalls: 2, calls: 0, outcome: { kind: "error", code: status.UNAVAILABLE } });
  });
});

describe("runBuyer", () => {
  it("reads the status once, then clicks each planned click even when the status read failed", async () => {
    const { port, sent } = fakePort([() => Promise.resolve({ orderId: "o1", quantity: 1 }), () => Promise.reject(refusal(status.ALREADY_EXISTS, "limit", "ALREADY_PURCHASED"))]);
    port.saleStatus = () => Promise.reject(new Error("down"));
    const clock = fakeClock();
    const user = { index: 0, userId: "dave", arrivalMs: 0, clicks: [{ requestId: "a", thinkMs: 0 }, { requestId: "b", thinkMs: 120 }] };
    const { clicks, statusFailed } = await runBuyer(user, port, { quantity: 1, maxAttempts: 2 }, clock, () => 0, () => {});
    expect(statusFailed).toBe(true);
    expect(sent.map((s) => s.requestId)).toEqual(["a", "b"]);
    expect(sent.map((s) => s.token)).toEqual(["token-1", "token-2"]); // a token per click: each serves one request id
    expect(clock.slept).toEqual([120]);
    expect(clicks.map((c) => c.outcome.kind)).toEqual(["won", "refused"]);
  });
});

describe("through the edge", () => {
  // Envoy's own answers, as a grpc-js client receives them (see cli/src/edge.test.ts).
  const envoy = (code: status, details: string, headers: Record<string, string>) => {
    const metadata = new Metadata();
    for (const [k, v] of Object.entries({ "content-type": "application/grpc", server: "seckill-edge", ...headers })) metadata.set(k, v);
    return Object.assign(new Error(details), { code, details, metadata });
  };
  const tokenBucket = () => envoy(status.RESOURCE_EXHAUSTED, "local_rate_limited", { "x-seckill-limited": "edge" });
  const globalLimit = () => envoy(status.RESOURCE_EXHAUSTED, "", { "x-envoy-ratelimited": "true", "ratelimit-remaining": "0" });
  const noConnection = () => Object.assign(new Error("No connection established"), { code: status.UNAVAILABLE, details: "No connection established", metadata: new Metadata() });
  const edge = { quantity: 1, maxAttempts: 3, throughEdge: true };

  it("takes the token bucket's refusal as the answer, and tells it", async () => {
    const { port, sent } = fakePort([() => Promise.reject(tokenBucket())]);
    const calls: CallRecord[] = [];
    const told: string[] = [];
    const result = await placeWithRetries("hal", "r", "t", port, edge, fakeClock(), () => 0, (c) => calls.push(c), (call, kind) => told.push(`${call} ${kind}`));
    expect(sent).toHaveLength(1);
    expect(result.outcome).toEqual({ kind: "refused", code: status.RESOURCE_EXHAUSTED, edge: "tokenBucket" });
    expect(calls).toEqual([{ startMs: 0, endMs: 0, code: status.RESOURCE_EXHAUSTED, reason: undefined, edge: "tokenBucket" }]);
    expect(told).toEqual(["PlaceOrder tokenBucket"]);
  });

  it("retries a connection the edge refused, counting each refused attempt", async () => {
    const { port } = fakePort([() => Promise.reject(noConnection()), () => Promise.resolve({ orderId: "o1", quantity: 1 })]);
    const told: string[] = [];
    const result = await placeWithRetries("ivy", "r", "t", port, edge, fakeClock(), () => 0, () => {}, (call, kind) => told.push(`${call} ${kind}`));
    expect(result.outcome).toMatchObject({ kind: "won" });
    expect(told).toEqual(["PlaceOrder connection"]);
  });

  it("counts the edge's refusals of the status read and of IssuePurchaseToken apart", async () => {
    const { port, sent } = fakePort([], [() => Promise.reject(globalLimit())]);
    port.saleStatus = () => Promise.reject(globalLimit());
    const told: string[] = [];
    const user = { index: 0, userId: "jon", arrivalMs: 0, clicks: [{ requestId: "a", thinkMs: 0 }] };
    const { clicks, statusFailed } = await runBuyer(user, port, edge, fakeClock(), () => 0, () => {}, (call, kind) => told.push(`${call} ${kind}`));
    expect(statusFailed).toBe(true);
    expect(sent).toEqual([]);
    expect(clicks[0].outcome).toEqual({ kind: "tokenRefused", code: status.RESOURCE_EXHAUSTED, edge: "globalLimit" });
    expect(told).toEqual(["GetSaleStatus globalLimit", "IssuePurchaseToken globalLimit"]);
  });

  it("sends a retry the edge's limits refused again: only the service can tell whether the lost attempt was accepted", async () => {
    const lost = () => Object.assign(new Error("Deadline exceeded"), { code: status.DEADLINE_EXCEEDED, details: "Deadline exceeded", metadata: new Metadata() });
    const { port, sent } = fakePort([
      () => Promise.reject(lost()),
      () => Promise.reject(tokenBucket()),
      () => Promise.reject(globalLimit()),
      () => Promise.resolve({ orderId: "o1", quantity: 1 }),
    ]);
    const calls: CallRecord[] = [];
    // Two attempts only: the refused retries do not spend one.
    const result = await placeWithRetries("lou", "r", "t", port, { ...edge, maxAttempts: 2 }, fakeClock(), () => 0, (c) => calls.push(c));
    expect(sent.map((s) => s.retry)).toEqual([false, true, true, true]);
    expect(sent.every((s) => s.requestId === "r")).toBe(true);
    expect(result).toMatchObject({ calls: 4, outcome: { kind: "won", orderId: "o1" } });
    expect(calls.map((c) => c.edge)).toEqual([undefined, "tokenBucket", "globalLimit", undefined]);
  });

  it("ends a click unanswered, not refused, when the edge keeps refusing the retries of a lost answer", async () => {
    const lost = () => Object.assign(new Error("Deadline exceeded"), { code: status.DEADLINE_EXCEEDED, details: "Deadline exceeded", metadata: new Metadata() });
    const held = await placeWithRetries("max", "r", "t", fakePort([() => Promise.reject(lost()), ...Array.from({ length: MAX_EDGE_HELD_RETRIES + 1 }, () => () => Promise.reject(tokenBucket()))]).port, edge, fakeClock(), () => 0, () => {});
    expect(held).toMatchObject({ calls: MAX_EDGE_HELD_RETRIES + 2, outcome: { kind: "error", code: status.RESOURCE_EXHAUSTED } });
    const jwt = envoy(status.UNAUTHENTICATED, "Jwt is expired", { "www-authenticate": 'Bearer realm="x", error="invalid_token"' });
    const expired = await placeWithRetries("ned", "r", "t", fakePort([() => Promise.reject(lost()), () => Promise.reject(jwt)]).port, edge, fakeClock(), () => 0, () => {});
    expect(expired).toMatchObject({ calls: 2, outcome: { kind: "error", code: status.UNAUTHENTICATED } });
  });

  it("reads no edge refusals when the calls go direct", async () => {
    const { port } = fakePort([() => Promise.reject(tokenBucket())]);
    const told: string[] = [];
    const result = await placeWithRetries("kim", "r", "t", port, { quantity: 1, maxAttempts: 3 }, fakeClock(), () => 0, () => {}, (call, kind) => told.push(`${call} ${kind}`));
    expect(result.outcome).toEqual({ kind: "error", code: status.RESOURCE_EXHAUSTED, message: "local_rate_limited" });
    expect(told).toEqual([]);
  });
});

describe("pool", () => {
  it("never runs more than the bound at once", async () => {
    const s = semaphore(3);
    let running = 0;
    let peak = 0;
    await Promise.all(
      Array.from({ length: 20 }, () =>
        s.run(async () => {
          peak = Math.max(peak, ++running);
          await new Promise((r) => setTimeout(r, 1));
          running--;
        }),
      ),
    );
    expect(peak).toBe(3);
    expect(s.active).toBe(0);
    expect(await mapBounded([3, 1, 2], 2, async (n) => n * 2)).toEqual([6, 2, 4]);
  });
});
