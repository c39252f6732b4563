// The retry rules of the purchase protocol, call by call: answers are scripted
// as grpc-js delivers them (a service's refusals with their details trailer,
// Envoy's own answers with its headers), time and jitter are injected.
import { describe, expect, it } from "vitest";
import { Metadata, status } from "@grpc/grpc-js";
import { MAX_EDGE_HELD_RETRIES, callWithRetries, rejectionMetadata, retryDelayMs, type AttemptRecord, type RetryOptions } from "@seckill/sdk";

const refusal = (code: status, message: string, reason?: string, retryDelayMs?: number) =>
  Object.assign(new Error(message), { code, details: message, metadata: reason ? rejectionMetadata(code, message, reason, { retryDelayMs }) : new Metadata() });
const lost = () => Object.assign(new Error("Deadline exceeded"), { code: status.DEADLINE_EXCEEDED, details: "Deadline exceeded", metadata: new Metadata() });

// Envoy's own answers, as a grpc-js client receives them (see cli/src/edge.test.ts, checked against a real Envoy in cli/test/edge.test.ts).
const envoy = (code: status, details: string, headers: Record<string, string>) => {
  const metadata = new Metadata();
  for (const [k, v] of Object.entries({ "content-type": "application/grpc", server: "seckill-edge", ...headers })) metadata.set(k, v);
  return Object.assign(new Error(details), { code, details, metadata });
};
const tokenBucket = () => envoy(status.RESOURCE_EXHAUSTED, "local_rate_limited", { "x-seckill-limited": "edge" });
const globalLimit = () => envoy(status.RESOURCE_EXHAUSTED, "", { "x-envoy-ratelimited": "true", "ratelimit-remaining": "0" });
const noConnection = () => Object.assign(new Error("No connection established"), { code: status.UNAVAILABLE, details: "No connection established", metadata: new Metadata() });

/** A send answering from `answers` in turn, remembering each call's retry flag; a clock that moves only when slept. */
function scripted<T>(answers: (() => Promise<T>)[]) {
  const retries: boolean[] = [];
  const slept: number[] = [];
  const attempts: AttemptRecord[] = [];
  let now = 0;
  const send = (retry: boolean) => {
    retries.push(retry);
    return answers.shift()!();
  };
  const options = (extra: RetryOptions = {}): RetryOptions => ({
    now: () => now,
    sleep: async (ms) => {
      slept.push(ms);
      now += ms;
    },
    random: () => 0,
    onAttempt: (a) => attempts.push(a),
    ...extra,
  });
  return { send, options, retries, slept, attempts };
}

describe("callWithRetries", () => {
  it("sends a lost answer again with retry: true, after the RetryInfo delay, then a backoff", async () => {
    const s = scripted([() => Promise.reject(refusal(status.UNAVAILABLE, "redis down", "OVERLOADED", 300)), () => Promise.reject(lost()), () => Promise.resolve("o1")]);
    const result = await callWithRetries(s.send, s.options({ maxAttempts: 4, throughEdge: false }));
    expect(s.retries).toEqual([false, true, true]);
    expect(s.slept).toEqual([300, 50]); // the server's delay, then the backoff for the second retry
    expect(result).toEqual({ ok: true, value: "o1", calls: 3, atMs: 350 });
    expect(s.attempts.map((a) => [a.call, a.retry, a.code])).toEqual([
      [1, false, status.UNAVAILABLE],
      [2, true, status.DEADLINE_EXCEEDED],
      [3, true, status.OK],
    ]);
    expect(s.attempts[0]).toMatchObject({ startMs: 0, endMs: 0, reason: "OVERLOADED", message: "redis down" });
  });

  it("gives up after the last attempt: the call may have been carried out", async () => {
    const s = scripted(Array.from({ length: 3 }, () => () => Promise.reject(refusal(status.UNAVAILABLE, "no connection"))));
    const result = await callWithRetries(s.send, s.options({ maxAttempts: 3, throughEdge: false, random: () => 0.5 }));
    expect(s.retries).toHaveLength(3);
    expect(result).toMatchObject({
      ok: false,
      calls: 3,
      refused: false,
      mayHaveBeenAccepted: true,
      unreachable: true,
      error: { code: status.UNAVAILABLE, message: "no connection" },
    });
  });

  it("takes a refusal as the answer: no retry", async () => {
    const s = scripted([() => Promise.reject(refusal(status.FAILED_PRECONDITION, "sold out", "SOLD_OUT"))]);
    const result = await callWithRetries(s.send, s.options());
    expect(s.retries).toHaveLength(1);
    expect(result).toMatchObject({ ok: false, calls: 1, refused: true, mayHaveBeenAccepted: false, error: { code: status.FAILED_PRECONDITION, reason: "SOLD_OUT" } });
  });

  it("takes a service's refusal of a retry as the answer: a winner's retry would have got its order", async () => {
    const s = scripted([() => Promise.reject(lost()), () => Promise.reject(refusal(status.FAILED_PRECONDITION, "sold out", "SOLD_OUT"))]);
    expect(await callWithRetries(s.send, s.options())).toMatchObject({ ok: false, calls: 2, refused: true, error: { reason: "SOLD_OUT" } });
  });

  it("stops when the signal is aborted, without another call", async () => {
    const controller = new AbortController();
    const s = scripted([() => Promise.reject(lost()), () => Promise.resolve("o1")]);
    const result = await callWithRetries(s.send, s.options({ signal: controller.signal, sleep: async () => controller.abort() }));
    expect(s.retries).toEqual([false]);
    expect(result).toMatchObject({ ok: false, calls: 1, refused: false, mayHaveBeenAccepted: true, error: { code: status.CANCELLED } });
  });
});

describe("callWithRetries through the edge", () => {
  it("takes the token bucket's refusal of a first call as the answer", async () => {
    const s = scripted([() => Promise.reject(tokenBucket())]);
    const result = await callWithRetries(s.send, s.options());
    expect(s.retries).toHaveLength(1);
    expect(result).toMatchObject({ ok: false, refused: true, error: { code: status.RESOURCE_EXHAUSTED, edge: "tokenBucket" } });
    expect(s.attempts).toEqual([
      { call: 1, retry: false, startMs: 0, endMs: 0, code: status.RESOURCE_EXHAUSTED, reason: undefined, edge: "tokenBucket", message: "local_rate_limited" },
    ]);
  });

  it("retries a connection the edge refused, telling each refused call", async () => {
    const s = scripted([() => Promise.reject(noConnection()), () => Promise.resolve("o1")]);
    expect(await callWithRetries(s.send, s.options())).toMatchObject({ ok: true, calls: 2 });
    expect(s.attempts.map((a) => a.edge)).toEqual(["connection", undefined]);
  });

  it("sends a retry the edge's limits refused again: only the service can tell whether the lost attempt was accepted", async () => {
    const s = scripted([() => Promise.reject(lost()), () => Promise.reject(tokenBucket()), () => Promise.reject(globalLimit()), () => Promise.resolve("o1")]);
    // Two attempts only: the refused retries do not spend one.
    const result = await callWithRetries(s.send, s.options({ maxAttempts: 2 }));
    expect(s.retries).toEqual([false, true, true, true]);
    expect(result).toMatchObject({ ok: true, value: "o1", calls: 4 });
    expect(s.attempts.map((a) => a.edge)).toEqual([undefined, "tokenBucket", "globalLimit", undefined]);
  });

  it("ends unanswered, not refused, when the edge keeps refusing the retries of a lost answer", async () => {
    const held = scripted([() => Promise.reject(lost()), ...Array.from({ length: MAX_EDGE_HELD_RETRIES + 1 }, () => () => Promise.reject(tokenBucket()))]);
    expect(await callWithRetries(held.send, held.options({ maxAttempts: 3 }))).toMatchObject({
      ok: false,
      calls: MAX_EDGE_HELD_RETRIES + 2,
      refused: false,
      mayHaveBeenAccepted: true,
      error: { code: status.RESOURCE_EXHAUSTED },
    });
    const jwt = envoy(status.UNAUTHENTICATED, "Jwt is expired", { "www-authenticate": 'Bearer realm="x", error="invalid_token"' });
    const expired = scripted([() => Promise.reject(lost()), () => Promise.reject(jwt)]);
    expect(await callWithRetries(expired.send, expired.options({ maxAttempts: 3 }))).toMatchObject({
      ok: false,
      calls: 2,
      refused: false,
      mayHaveBeenAccepted: true,
      error: { code: status.UNAUTHENTICATED },
    });
  });

  it("reads no edge refusals when the calls go direct", async () => {
    const s = scripted([() => Promise.reject(tokenBucket())]);
    const result = await callWithRetries(s.send, s.options({ throughEdge: false }));
    expect(result).toMatchObject({ ok: false, refused: false, mayHaveBeenAccepted: false, error: { code: status.RESOURCE_EXHAUSTED, message: "local_rate_limited" } });
    expect(s.attempts[0].edge).toBeUndefined();
  });
});

describe("retryDelayMs", () => {
  it("waits the server's delay, stretched by up to half at random", () => {
    for (const r of [0, 0.3, 0.999]) {
      const d = retryDelayMs(1, 200, () => r);
      expect(d).toBeGreaterThanOrEqual(200);
      expect(d).toBeLessThanOrEqual(300);
    }
  });

  it("backs off exponentially without a hint, capped at 2 s before jitter", () => {
    expect(retryDelayMs(1, undefined, () => 0.5)).toBe(50);
    expect(retryDelayMs(3, undefined, () => 0.5)).toBe(200);
    expect(retryDelayMs(20, undefined, () => 0.5)).toBe(2000);
  });
});
