// placeOrder and issuePurchaseToken against a real grpc-js server on loopback
// answering from a script: what goes on the wire for a click and its retries,
// and how each answer comes back. (The retry rules call by call: retries.test.ts.)
import { afterEach, describe, expect, it } from "vitest";
import { credentials, status } from "@grpc/grpc-js";
import { AccessServiceClient, IssuePurchaseTokenResponse, OrderServiceClient, PlaceOrderResponse, issuePurchaseToken, placeOrder, type RetryOptions } from "@seckill/sdk";
import { freePort } from "../../tools/stack/ports.js";
import { NO_ANSWER, grpcError, startScriptedServer, type ScriptedServer } from "./scripted-server.js";

let server: ScriptedServer | undefined;
const closers: { close(): void }[] = [];
afterEach(async () => {
  for (const c of closers.splice(0)) c.close();
  await server?.stop();
});

async function clients(script: Parameters<typeof startScriptedServer>[0]) {
  server = await startScriptedServer(script);
  const orders = new OrderServiceClient(server.address, credentials.createInsecure());
  const access = new AccessServiceClient(server.address, credentials.createInsecure());
  closers.push(orders, access);
  return { orders, access, received: server.received };
}

/** No real waiting: the waits asked for are kept. */
function quickRetries(): RetryOptions & { slept: number[] } {
  const slept: number[] = [];
  return { slept, sleep: async (ms) => void slept.push(ms), random: () => 0 };
}

const won = PlaceOrderResponse.fromPartial({ order: { orderId: "s1-o1", saleId: "s1", userId: "alice", quantity: 1 } });
const header = (m: { get(name: string): unknown[] }, name: string) => m.get(name)[0];

describe("placeOrder", () => {
  it("sends a lost answer again with the same request id, token and sale, and retry: true, after RetryInfo's delay", async () => {
    const { orders, received } = await clients({ placeOrder: [grpcError(status.UNAVAILABLE, "redis down", "OVERLOADED", { retryDelayMs: 300 }), won] });
    const retries = quickRetries();
    const result = await placeOrder(orders, { saleId: "s1", userId: "alice", purchaseToken: "tok", requestId: "click-1", ...retries });
    expect(result).toMatchObject({ kind: "won", requestId: "click-1", calls: 2, order: { orderId: "s1-o1" } });
    expect(retries.slept).toEqual([300]);
    expect(received.map((r) => [r.request.requestId, r.request.retry, r.request.quantity])).toEqual([
      ["click-1", false, 1],
      ["click-1", true, 1],
    ]);
    for (const { metadata } of received) {
      expect([header(metadata, "x-user-id"), header(metadata, "x-sale-id"), header(metadata, "x-purchase-token")]).toEqual(["alice", "s1", "tok"]);
    }
  });

  it("makes a request id for a click that has none", async () => {
    const { orders, received } = await clients({ placeOrder: [won] });
    const result = await placeOrder(orders, { saleId: "s1", userId: "alice", purchaseToken: "tok" });
    expect(result.requestId).toMatch(/^[A-Za-z0-9._:-]{1,64}$/);
    expect(received[0].request.requestId).toBe(result.requestId);
  });

  it("returns a refusal with its reason, without a retry", async () => {
    const { orders, received } = await clients({ placeOrder: [grpcError(status.FAILED_PRECONDITION, "sold out", "SOLD_OUT")] });
    const result = await placeOrder(orders, { saleId: "s1", userId: "bob", purchaseToken: "tok", requestId: "r", ...quickRetries() });
    expect(result).toEqual({ requestId: "r", kind: "refused", code: status.FAILED_PRECONDITION, message: "sold out", reason: "SOLD_OUT", calls: 1 });
    expect(received).toHaveLength(1);
  });

  it("tells which refusal of the edge's it was", async () => {
    const limited = grpcError(status.RESOURCE_EXHAUSTED, "local_rate_limited", undefined, { headers: { "x-seckill-limited": "edge" } });
    const { orders } = await clients({ placeOrder: [limited] });
    const result = await placeOrder(orders, { saleId: "s1", userId: "carol", purchaseToken: "tok", ...quickRetries() });
    expect(result).toMatchObject({ kind: "refused", code: status.RESOURCE_EXHAUSTED, edge: "tokenBucket" });
  });

  it("gives up after the last attempt, saying the order may exist, and tells each attempt", async () => {
    const { orders } = await clients({ placeOrder: Array.from({ length: 2 }, () => grpcError(status.UNAVAILABLE, "restarting", "OVERLOADED", { retryDelayMs: 10 })) });
    const attempts: number[] = [];
    const result = await placeOrder(orders, { saleId: "s1", userId: "dan", purchaseToken: "tok", maxAttempts: 2, onAttempt: (a) => attempts.push(a.code), ...quickRetries() });
    expect(result).toMatchObject({ kind: "gaveUp", code: status.UNAVAILABLE, mayHaveBeenAccepted: true, unreachable: false, calls: 2 });
    expect(attempts).toEqual([status.UNAVAILABLE, status.UNAVAILABLE]);
  });

  it("says when nothing could be reached at all", async () => {
    const orders = new OrderServiceClient(`127.0.0.1:${await freePort()}`, credentials.createInsecure());
    closers.push(orders);
    const result = await placeOrder(orders, { saleId: "s1", userId: "dan", purchaseToken: "tok", maxAttempts: 2, ...quickRetries() });
    expect(result).toMatchObject({ kind: "gaveUp", code: status.UNAVAILABLE, unreachable: true, calls: 2 });
  });

  it("gives each attempt its deadline", async () => {
    const { orders, received } = await clients({ placeOrder: [NO_ANSWER, NO_ANSWER] });
    const result = await placeOrder(orders, { saleId: "s1", userId: "eve", purchaseToken: "tok", requestId: "r", deadlineMs: 50, maxAttempts: 2, ...quickRetries() });
    expect(result).toMatchObject({ kind: "gaveUp", code: status.DEADLINE_EXCEEDED, mayHaveBeenAccepted: true, calls: 2 });
    expect(received.map((r) => r.request.retry)).toEqual([false, true]);
  });

  it("cancels the call in flight when the signal is aborted", async () => {
    const { orders, received } = await clients({ placeOrder: [NO_ANSWER] });
    const result = await placeOrder(orders, { saleId: "s1", userId: "eve", purchaseToken: "tok", deadlineMs: 30_000, signal: AbortSignal.timeout(50) });
    expect(result).toMatchObject({ kind: "gaveUp", code: status.CANCELLED, mayHaveBeenAccepted: true, calls: 1 });
    expect(received).toHaveLength(1);
  });
});

describe("issuePurchaseToken", () => {
  it("retries a lost answer and returns the token, for the user, with the challenge's answer", async () => {
    const token = IssuePurchaseTokenResponse.fromPartial({ token: "jwt", expiresAt: new Date("2030-01-01T00:00:00Z"), keyId: "k1" });
    const { access, received } = await clients({ issuePurchaseToken: [grpcError(status.UNAVAILABLE, "gateway restarting"), token] });
    const createdAt = new Date("2020-05-01T00:00:00Z");
    const result = await issuePurchaseToken(access, { saleId: "s1", userId: "frank", challengeId: "c1", challengeAnswer: "19", accountCreatedAt: createdAt, ...quickRetries() });
    expect(result).toEqual({ kind: "issued", token: "jwt", expiresAt: new Date("2030-01-01T00:00:00Z"), calls: 2, atMs: expect.any(Number) });
    expect(received.map((r) => r.request)).toEqual([
      { saleId: "s1", challengeId: "c1", challengeAnswer: "19" },
      { saleId: "s1", challengeId: "c1", challengeAnswer: "19" },
    ]);
    expect(header(received[0].metadata, "x-user-id")).toBe("frank");
    expect(header(received[0].metadata, "x-account-created-at")).toBe(createdAt.toISOString());
  });

  it("returns the gateway's refusal", async () => {
    const { access } = await clients({ issuePurchaseToken: [grpcError(status.PERMISSION_DENIED, "not on the list", "NOT_ELIGIBLE")] });
    expect(await issuePurchaseToken(access, { saleId: "s1", userId: "gina" })).toMatchObject({ kind: "refused", reason: "NOT_ELIGIBLE", calls: 1 });
  });
});
