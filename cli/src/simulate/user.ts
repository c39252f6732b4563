// One simulated buyer: looks at the sale once (like loading the page), then
// clicks "buy". A click is what a BFF does for it: IssuePurchaseToken, then one
// PlaceOrder with the click's own request id and that token; when an answer is
// lost (UNAVAILABLE, DEADLINE_EXCEEDED) the same call is sent again (PlaceOrder:
// same request id and token, retry: true), after the server's RetryInfo delay
// or a backoff. Through the edge, Envoy's own refusals are read apart: its
// limits and token check are answers to a first attempt, but never to a retry
// after a lost answer (see withRetries).
import { status } from "@grpc/grpc-js";
import { rejectionOf } from "@seckill/sdk";
import { edgeRefusalOf, type EdgeRefusal } from "../edge.js";
import type { PlannedUser } from "./plan.js";
import { retryDelayMs } from "./plan.js";
import type { BuyerCall, CallRecord, ClickResult } from "./stats.js";

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
  /** The port's calls go through the edge: read Envoy's own refusals apart from the services'. */
  throughEdge?: boolean;
}

/** Told of each call the edge refused (retries included), with the refusal's message. */
export type EdgeRefusalListener = (call: BuyerCall, kind: EdgeRefusal, message: string) => void;

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
  /** Which refusal of the edge's it was (only read through the edge). */
  edge?: EdgeRefusal;
}

function readError(error: unknown, throughEdge = false): ReadError {
  if (typeof error === "object" && error !== null && typeof (error as ErrorLike).code === "number") {
    const r = rejectionOf(error as Parameters<typeof rejectionOf>[0]);
    const edge = throughEdge ? edgeRefusalOf(error as Parameters<typeof edgeRefusalOf>[0]) : undefined;
    return { code: r.code, reason: r.reason, message: r.message, retryDelayMs: r.retryDelayMs, ...(edge ? { edge } : {}) };
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
  refusedAtEdge?: EdgeRefusalListener,
): Promise<{ clicks: ClickResult[]; statusFailed: boolean }> {
  // A failed page load does not stop a determined buyer.
  const statusFailed = await port.saleStatus().then(
    () => false,
    (error: unknown) => {
      const e = readError(error, settings.throughEdge);
      if (e.edge) refusedAtEdge?.("GetSaleStatus", e.edge, e.message);
      return true;
    },
  );
  const clicks: ClickResult[] = [];
  for (const click of user.clicks) {
    if (click.thinkMs > 0) await clock.sleep(click.thinkMs);
    clicks.push(await clickBuy(user.userId, click.requestId, port, settings, clock, random, record, refusedAtEdge));
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
  refusedAtEdge?: EdgeRefusalListener,
): Promise<ClickResult> {
  const issued = await withRetries(() => port.purchaseToken(userId), settings, clock, random, undefined, (kind, message) => refusedAtEdge?.("IssuePurchaseToken", kind, message));
  const tokenCalls = issued.calls;
  if (!issued.ok) {
    const e = issued.error;
    const outcome = isRefusal(e) && !issued.unknown ? { kind: "tokenRefused" as const, ...refusal(e) } : { kind: "error" as const, code: e.code, message: e.message };
    return { userId, requestId, tokenCalls, calls: 0, outcome };
  }
  const placed = await placeWithRetries(userId, requestId, issued.value, port, settings, clock, random, record, refusedAtEdge);
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
  refusedAtEdge?: EdgeRefusalListener,
): Promise<Omit<ClickResult, "tokenCalls">> {
  const placed = await withRetries(
    (retry) => port.placeOrder(userId, { requestId, quantity: settings.quantity, retry, token }),
    settings,
    clock,
    random,
    record,
    (kind, message) => refusedAtEdge?.("PlaceOrder", kind, message),
  );
  const { calls } = placed;
  if (placed.ok) return { userId, requestId, calls, outcome: { kind: "won", orderId: placed.value.orderId, quantity: placed.value.quantity, atMs: placed.atMs } };
  const e = placed.error;
  return {
    userId,
    requestId,
    calls,
    outcome: isRefusal(e) && !placed.unknown ? { kind: "refused", ...refusal(e) } : { kind: "error", code: e.code, message: e.message },
  };
}

/**
 * A refusal is an answer, not worth retrying: the service's names its reason;
 * the edge's limits and token check (through the edge) are Envoy's answer in its place.
 */
const isRefusal = (e: ReadError) => (e.reason !== undefined || e.edge !== undefined) && !isRetryable(e.code);
const refusal = (e: ReadError) => ({ code: e.code, ...(e.reason !== undefined ? { reason: e.reason } : {}), ...(e.edge ? { edge: e.edge } : {}) });

type Attempted<T> =
  | { ok: true; value: T; calls: number; atMs: number }
  /** `unknown`: an earlier attempt's answer was lost and no later one came from the service: it may have been accepted. */
  | { ok: false; error: ReadError; calls: number; unknown?: boolean };

/**
 * Most retries the edge's limits may refuse in the service's place after an
 * answer was lost, on top of the attempts (see withRetries).
 */
export const MAX_EDGE_HELD_RETRIES = 20;

/**
 * Sends until answered or out of attempts, sleeping RetryInfo's delay (or a
 * backoff) before each retry; each attempt recorded. Once an answer was lost
 * (UNAVAILABLE, DEADLINE_EXCEEDED), only the service can tell whether that
 * attempt was accepted: a retry the edge's token bucket or global limit
 * refuses in its place does not answer that, so it is sent again after a
 * backoff, up to MAX_EDGE_HELD_RETRIES times without spending an attempt; a
 * retry refused by the edge's token check ends the click unanswered.
 */
async function withRetries<T>(
  send: (retry: boolean) => Promise<T>,
  settings: BuyerSettings,
  clock: Clock,
  random: () => number,
  record?: (call: CallRecord) => void,
  refusedAtEdge?: (kind: EdgeRefusal, message: string) => void,
): Promise<Attempted<T>> {
  let lost = false;
  let held = 0;
  for (let call = 1; ; call++) {
    const attempt = call - held;
    const startMs = clock.now();
    try {
      const value = await send(call > 1);
      const endMs = clock.now();
      record?.({ startMs, endMs, code: status.OK });
      return { ok: true, value, calls: call, atMs: endMs };
    } catch (error) {
      const e = readError(error, settings.throughEdge);
      if (e.edge) refusedAtEdge?.(e.edge, e.message);
      record?.({ startMs, endMs: clock.now(), code: e.code, reason: e.reason, ...(e.edge ? { edge: e.edge } : {}) });
      if (lost && (e.edge === "tokenBucket" || e.edge === "globalLimit")) {
        if (held === MAX_EDGE_HELD_RETRIES) return { ok: false, error: e, calls: call, unknown: true };
        held++;
        await clock.sleep(retryDelayMs(attempt, undefined, random));
        continue;
      }
      if (lost && e.edge === "tokenCheck") return { ok: false, error: e, calls: call, unknown: true };
      if (isRetryable(e.code) && attempt < settings.maxAttempts) {
        lost = true;
        await clock.sleep(retryDelayMs(attempt, e.retryDelayMs, random));
        continue;
      }
      return { ok: false, error: e, calls: call };
    }
  }
}
