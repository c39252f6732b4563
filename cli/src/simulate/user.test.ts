// A simulated buyer against a real grpc-js server on loopback answering from a
// script (the SDK's test server): what a click sends, what simulate records of
// it, and how its answers become a click's outcome. The retry rules themselves
// are the SDK's (sdk/test/retries.test.ts).
import { afterEach, describe, expect, it } from "vitest";
import { credentials, status } from "@grpc/grpc-js";
import { AccessServiceClient, IssuePurchaseTokenResponse, OrderServiceClient, PlaceOrderResponse, SaleServiceClient, callUnary } from "@seckill/sdk";
import { grpcError, startScriptedServer, type Answer, type ScriptedServer } from "../../../sdk/test/scripted-server.js";
import { mapBounded, semaphore } from "./pool.js";
import type { CallRecord } from "./stats.js";
import { clickBuy, runBuyer, type BuyerPort, type Clock } from "./user.js";

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

let server: ScriptedServer | undefined;
const closers: { close(): void }[] = [];
afterEach(async () => {
  for (const c of closers.splice(0)) c.close();
  await server?.stop();
});

/** A buyer's port to a server answering IssuePurchaseToken from `tokens` (by default a new token each time), PlaceOrder from `orders`. */
async function scriptedPort(script: { tokens?: Answer[]; orders?: Answer[]; status?: Answer[] }) {
  const tokens = script.tokens ?? Array.from({ length: 10 }, (_, i) => IssuePurchaseTokenResponse.fromPartial({ token: `token-${i + 1}` }));
  server = await startScriptedServer({ issuePurchaseToken: tokens, placeOrder: script.orders ?? [], getSaleStatus: script.status ?? [] });
  const [sales, access, orders] = [SaleServiceClient, AccessServiceClient, OrderServiceClient].map((C) => new C(server!.address, credentials.createInsecure()));
  closers.push(sales, access, orders);
  const port: BuyerPort = {
    saleId: "s1",
    deadlineMs: 2000,
    saleStatus: () => callUnary(sales as SaleServiceClient, "getSaleStatus", { saleId: "s1" }),
    access: access as AccessServiceClient,
    orders: orders as OrderServiceClient,
  };
  const received = server.received;
  const sent = () =>
    received
      .filter((r) => r.method === "placeOrder")
      .map((r) => ({ requestId: r.request.requestId, retry: r.request.retry, token: String(r.metadata.get("x-purchase-token")[0]) }));
  const issued = () => received.filter((r) => r.method === "issuePurchaseToken").map((r) => String(r.metadata.get("x-user-id")[0]));
  return { port, sent, issued };
}

const won = (orderId: string) => PlaceOrderResponse.fromPartial({ order: { orderId, quantity: 1 } });

describe("clickBuy", () => {
  it("gets a purchase token, retrying a lost answer, and places the order with it", async () => {
    const { port, sent, issued } = await scriptedPort({
      tokens: [grpcError(status.UNAVAILABLE, "gateway restarting"), IssuePurchaseTokenResponse.fromPartial({ token: "tok" })],
      orders: [won("o1")],
    });
    const calls: CallRecord[] = [];
    const clock = fakeClock();
    const result = await clickBuy(
      "erin",
      "req-9",
      port,
      { quantity: 1, maxAttempts: 3 },
      clock,
      () => 0,
      (c) => calls.push(c),
    );
    expect(issued()).toEqual(["erin", "erin"]);
    expect(sent()).toEqual([{ requestId: "req-9", retry: false, token: "tok" }]);
    expect(result).toEqual({ userId: "erin", requestId: "req-9", tokenCalls: 2, calls: 1, outcome: { kind: "won", orderId: "o1", quantity: 1, atMs: 25 } });
    expect(clock.slept).toEqual([25]); // the backoff before the token's retry, half of 50 ms at random 0
    expect(calls).toEqual([{ startMs: 25, endMs: 25, code: status.OK }]); // only PlaceOrder calls are recorded
  });

  it("retries PlaceOrder's lost answer with the same request id and token, recording each call", async () => {
    const { port, sent } = await scriptedPort({ orders: [grpcError(status.UNAVAILABLE, "redis down", "OVERLOADED", { retryDelayMs: 300 }), won("o1")] });
    const calls: CallRecord[] = [];
    const result = await clickBuy(
      "alice",
      "req-1",
      port,
      { quantity: 1, maxAttempts: 4 },
      fakeClock(),
      () => 0,
      (c) => calls.push(c),
    );
    expect(sent()).toEqual([
      { requestId: "req-1", retry: false, token: "token-1" },
      { requestId: "req-1", retry: true, token: "token-1" },
    ]);
    expect(result).toMatchObject({ tokenCalls: 1, calls: 2, outcome: { kind: "won", orderId: "o1" } });
    expect(calls).toEqual([
      { startMs: 0, endMs: 0, code: status.UNAVAILABLE, reason: "OVERLOADED" },
      { startMs: 300, endMs: 300, code: status.OK },
    ]);
  });

  it("stops at a refused token: no PlaceOrder, the refusal kept apart from PlaceOrder's", async () => {
    const { port, sent } = await scriptedPort({ tokens: [grpcError(status.FAILED_PRECONDITION, "the sale is sold out", "SOLD_OUT")] });
    const result = await clickBuy(
      "fred",
      "r",
      port,
      { quantity: 1, maxAttempts: 3 },
      fakeClock(),
      () => 0,
      () => {},
    );
    expect(sent()).toEqual([]);
    expect(result).toEqual({ userId: "fred", requestId: "r", tokenCalls: 1, calls: 0, outcome: { kind: "tokenRefused", code: status.FAILED_PRECONDITION, reason: "SOLD_OUT" } });
  });

  it("gives up when the gateway never answers", async () => {
    const { port, sent } = await scriptedPort({ tokens: Array.from({ length: 2 }, () => grpcError(status.UNAVAILABLE, "no connection")) });
    const result = await clickBuy(
      "gina",
      "r",
      port,
      { quantity: 1, maxAttempts: 2 },
      fakeClock(),
      () => 0,
      () => {},
    );
    expect(sent()).toEqual([]);
    expect(result).toEqual({ userId: "gina", requestId: "r", tokenCalls: 2, calls: 0, outcome: { kind: "error", code: status.UNAVAILABLE, message: "no connection" } });
  });

  it("reports a refused PlaceOrder with its reason, and one that gave up with its error", async () => {
    const { port } = await scriptedPort({
      orders: [grpcError(status.ALREADY_EXISTS, "limit", "ALREADY_PURCHASED"), grpcError(status.UNAVAILABLE, "down"), grpcError(status.UNAVAILABLE, "down")],
    });
    const settings = { quantity: 1, maxAttempts: 2 };
    expect(
      (
        await clickBuy(
          "hal",
          "a",
          port,
          settings,
          fakeClock(),
          () => 0,
          () => {},
        )
      ).outcome,
    ).toEqual({ kind: "refused", code: status.ALREADY_EXISTS, reason: "ALREADY_PURCHASED" });
    expect(
      (
        await clickBuy(
          "hal",
          "b",
          port,
          settings,
          fakeClock(),
          () => 0,
          () => {},
        )
      ).outcome,
    ).toEqual({ kind: "error", code: status.UNAVAILABLE, message: "down" });
  });
});

describe("runBuyer", () => {
  it("reads the status once, then clicks each planned click even when the status read failed", async () => {
    const { port, sent } = await scriptedPort({
      status: [grpcError(status.INTERNAL, "down")],
      orders: [won("o1"), grpcError(status.ALREADY_EXISTS, "limit", "ALREADY_PURCHASED")],
    });
    const clock = fakeClock();
    const user = {
      index: 0,
      userId: "dave",
      arrivalMs: 0,
      clicks: [
        { requestId: "a", thinkMs: 0 },
        { requestId: "b", thinkMs: 120 },
      ],
    };
    const { clicks, statusFailed } = await runBuyer(
      user,
      port,
      { quantity: 1, maxAttempts: 2 },
      clock,
      () => 0,
      () => {},
    );
    expect(statusFailed).toBe(true);
    expect(sent().map((s) => s.requestId)).toEqual(["a", "b"]);
    expect(sent().map((s) => s.token)).toEqual(["token-1", "token-2"]); // a token per click: each serves one request id
    expect(clock.slept).toEqual([120]);
    expect(clicks.map((c) => c.outcome.kind)).toEqual(["won", "refused"]);
  });
});

describe("through the edge", () => {
  // Envoy's own answers, as a grpc-js client receives them (see cli/src/edge.test.ts).
  const envoy = { "content-type": "application/grpc", server: "seckill-edge" };
  const tokenBucket = () => grpcError(status.RESOURCE_EXHAUSTED, "local_rate_limited", undefined, { headers: { ...envoy, "x-seckill-limited": "edge" } });
  const globalLimit = () => grpcError(status.RESOURCE_EXHAUSTED, "", undefined, { headers: { ...envoy, "x-envoy-ratelimited": "true", "ratelimit-remaining": "0" } });
  const edge = { quantity: 1, maxAttempts: 3, throughEdge: true };

  it("takes the token bucket's refusal as the answer, records it and tells it", async () => {
    const { port, sent } = await scriptedPort({ orders: [tokenBucket()] });
    const calls: CallRecord[] = [];
    const told: string[] = [];
    const result = await clickBuy(
      "hal",
      "r",
      port,
      edge,
      fakeClock(),
      () => 0,
      (c) => calls.push(c),
      (call, kind) => told.push(`${call} ${kind}`),
    );
    expect(sent()).toHaveLength(1);
    expect(result.outcome).toEqual({ kind: "refused", code: status.RESOURCE_EXHAUSTED, edge: "tokenBucket" });
    expect(calls).toEqual([{ startMs: 0, endMs: 0, code: status.RESOURCE_EXHAUSTED, reason: undefined, edge: "tokenBucket" }]);
    expect(told).toEqual(["PlaceOrder tokenBucket"]);
  });

  it("counts the edge's refusals of the status read and of IssuePurchaseToken apart", async () => {
    const { port, sent } = await scriptedPort({ status: [globalLimit()], tokens: [globalLimit()] });
    const told: string[] = [];
    const user = { index: 0, userId: "jon", arrivalMs: 0, clicks: [{ requestId: "a", thinkMs: 0 }] };
    const { clicks, statusFailed } = await runBuyer(
      user,
      port,
      edge,
      fakeClock(),
      () => 0,
      () => {},
      (call, kind) => told.push(`${call} ${kind}`),
    );
    expect(statusFailed).toBe(true);
    expect(sent()).toEqual([]);
    expect(clicks[0].outcome).toEqual({ kind: "tokenRefused", code: status.RESOURCE_EXHAUSTED, edge: "globalLimit" });
    expect(told).toEqual(["GetSaleStatus globalLimit", "IssuePurchaseToken globalLimit"]);
  });

  it("reads no edge refusals when the calls go direct", async () => {
    const { port } = await scriptedPort({ orders: [tokenBucket()] });
    const told: string[] = [];
    const result = await clickBuy(
      "kim",
      "r",
      port,
      { quantity: 1, maxAttempts: 3 },
      fakeClock(),
      () => 0,
      () => {},
      (call, kind) => told.push(`${call} ${kind}`),
    );
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
