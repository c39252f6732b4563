// One simulated buyer: looks at the sale once (like loading the page), then
// clicks "buy". A click is what a BFF does for it: IssuePurchaseToken, then one
// PlaceOrder with the click's own request id and that token; when an answer is
// lost (UNAVAILABLE, DEADLINE_EXCEEDED) the same call is sent again (PlaceOrder:
// same request id and token, retry: true), after the server's RetryInfo delay
// or a backoff.
import { status } from "@grpc/grpc-js";
import { rejectionOf } from "@seckill/sdk";
import type { PlannedUser } from "./plan.js";
import { retryDelayMs } from "./plan.js";
import type { CallRecord, ClickResult } from "./stats.js";

/** What a buyer does against the backend (the SDK in real runs, fakes in tests). */
export interface BuyerPort {
  saleStatus(): Promise<unknown>;
  /** Resolves with a purchase token for the user and the sale; rejects with the grpc-js ServiceError. */
  purchaseToken(userId: string): Promise<string>;
  /** Resolves with the accepted order; rejects with the grpc-js ServiceError. */
  placeOrder(userId: string, request: { requestId: string; quantity: number; retry: boolean; token: string }): Promise<{ orderId: string; quantity: number }>;
}

export interface Clock {
  /** Milliseconds after the opening (monotonic). */
  now(): number;
  sleep(ms: number): Promise<void>;
}

export interface BuyerSettings {
  quantity: number;
  maxAttempts: number;
}

export const isRetryable = (code: number): boolean => code === status.UNAVAILABLE || code === status.DEADLINE_EXCEEDED;

interface ErrorLike {
  code: number;
  details: string;
  metadata?: unknown;
}

interface ReadError {
  code: number;
  reason?: string;
  message: string;
  retryDelayMs?: number;
}

function readError(error: unknown): ReadError {
  if (typeof error === "object" && error !== null && typeof (error as ErrorLike).code === "number") {
    const r = rejectionOf(error as Parameters<typeof rejectionOf>[0]);
    return { code: r.code, reason: r.reason, message: r.message, retryDelayMs: r.retryDelayMs };
  }
  return { code: status.UNKNOWN, message: error instanceof Error ? error.message : String(error) };
}

/** One user's visit: a status read, then each planned click in turn. */
export async function runBuyer(
  user: PlannedUser,
  port: BuyerPort,
  settings: BuyerSettings,
  clock: Clock,
  random: () => number,
  record: (call: CallRecord) => void,
): Promise<{ clicks: ClickResult[]; statusFailed: boolean }> {
  // A failed page load does not stop a determined buyer.
  const statusFailed = await port.saleStatus().then(
    () => false,
    () => true,
  );
  const clicks: ClickResult[] = [];
  for (const click of user.clicks) {
    if (click.thinkMs > 0) await clock.sleep(click.thinkMs);
    clicks.push(await clickBuy(user.userId, click.requestId, port, settings, clock, random, record));
  }
  return { clicks, statusFailed };
}

/** One click: a purchase token (each click its own: a token serves one request id), then PlaceOrder with it. */
export async function clickBuy(
  userId: string,
  requestId: string,
  port: BuyerPort,
  settings: BuyerSettings,
  clock: Clock,
  random: () => number,
  record: (call: CallRecord) => void,
): Promise<ClickResult> {
  const issued = await withRetries(() => port.purchaseToken(userId), settings, clock, random);
  const tokenCalls = issued.calls;
  if (!issued.ok) {
    const e = issued.error;
    const outcome = isRefusal(e) ? { kind: "tokenRefused" as const, code: e.code, reason: e.reason } : { kind: "error" as const, code: e.code, message: e.message };
    return { userId, requestId, tokenCalls, calls: 0, outcome };
  }
  const placed = await placeWithRetries(userId, requestId, issued.value, port, settings, clock, random, record);
  return { ...placed, tokenCalls };
}

/** PlaceOrder until it is answered: every attempt with the same request id and token, retries with retry: true. */
export async function placeWithRetries(
  userId: string,
  requestId: string,
  token: string,
  port: BuyerPort,
  settings: BuyerSettings,
  clock: Clock,
  random: () => number,
  record: (call: CallRecord) => void,
): Promise<Omit<ClickResult, "tokenCalls">> {
  const placed = await withRetries((retry) => port.placeOrder(userId, { requestId, quantity: settings.quantity, retry, token }), settings, clock, random, record);
  const { calls } = placed;
  if (placed.ok) return { userId, requestId, calls, outcome: { kind: "won", orderId: placed.value.orderId, quantity: placed.value.quantity, atMs: placed.atMs } };
  const e = placed.error;
  return { userId, requestId, calls, outcome: isRefusal(e) ? { kind: "refused", code: e.code, reason: e.reason } : { kind: "error", code: e.code, message: e.message } };
}

/** A refusal is an answer: it names its reason and is not worth retrying. */
const isRefusal = (e: ReadError) => e.reason !== undefined && !isRetryable(e.code);

type Attempted<T> = { ok: true; value: T; calls: number; atMs: number } | { ok: false; error: ReadError; calls: number };

/** Sends until answered or out of attempts, sleeping RetryInfo's delay (or a backoff) before each retry; each attempt recorded. */
async function withRetries<T>(
  send: (retry: boolean) => Promise<T>,
  settings: BuyerSettings,
  clock: Clock,
  random: () => number,
  record?: (call: CallRecord) => void,
): Promise<Attempted<T>> {
  for (let attempt = 1; ; attempt++) {
    const startMs = clock.now();
    try {
      const value = await send(attempt > 1);
      const endMs = clock.now();
      record?.({ startMs, endMs, code: status.OK });
      return { ok: true, value, calls: attempt, atMs: endMs };
    } catch (error) {
      const e = readError(error);
      record?.({ startMs, endMs: clock.now(), code: e.code, reason: e.reason });
      if (isRetryable(e.code) && attempt < settings.maxAttempts) {
        await clock.sleep(retryDelayMs(attempt, e.retryDelayMs, random));
        continue;
      }
      return { ok: false, error: e, calls: attempt };
    }
  }
}
