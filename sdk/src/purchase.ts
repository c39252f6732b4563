// The purchase protocol a BFF follows for a buyer's click: a purchase token
// from AccessService.IssuePurchaseToken, then one PlaceOrder with the click's
// own request id, the token and the sale in metadata, each call with a
// deadline, sent again after a lost answer as retries.ts says.
import { randomUUID } from "node:crypto";
import type { status } from "@grpc/grpc-js";
import type { EdgeRefusal } from "./edge-refusal.js";
import type { AccessServiceClient } from "./gen/seckill/v1/access.js";
import type { Order, OrderServiceClient } from "./gen/seckill/v1/order.js";
import { ACCOUNT_CREATED_AT_HEADER, callUnary, purchaseMetadata, userMetadata } from "./calls.js";
import { callWithRetries, type Attempted, type RetryOptions } from "./retries.js";

/** Each attempt's deadline when none is given. */
export const DEFAULT_ATTEMPT_DEADLINE_MS = 2000;

/** A request id for a new click: 36 characters of [0-9a-f-], within PlaceOrder's 1–64 of [A-Za-z0-9._:-]. */
export const newRequestId = (): string => randomUUID();

/** The service (or the edge in its place) refused: an answer, not worth sending again as it is. */
export interface Refused {
  kind: "refused";
  code: status;
  message: string;
  /** The service's reason ("SOLD_OUT", "PURCHASE_TOKEN_INVALID", ...; see Reason). */
  reason?: string;
  /** Envoy refused in the service's place (its limits, or its token check). */
  edge?: EdgeRefusal;
  /** RetryInfo's delay, when the refusal came with one. */
  retryDelayMs?: number;
  /** Calls made, retries included. */
  calls: number;
}

/** No answer after the last attempt (or the signal was aborted). */
export interface GaveUp {
  kind: "gaveUp";
  /** The last call's code (UNAVAILABLE, DEADLINE_EXCEEDED, CANCELLED, ...). */
  code: status;
  message: string;
  /** The call may have been carried out: an answer was lost (for PlaceOrder: ask again with the same request id). */
  mayHaveBeenAccepted: boolean;
  /** Nothing answered at all, not even the edge: every attempt failed UNAVAILABLE before reaching a server. */
  unreachable: boolean;
  calls: number;
}

export type PlaceOrderResult = { requestId: string } & ({ kind: "won"; order: Order; calls: number; atMs: number } | Refused | GaveUp);

export type IssuePurchaseTokenResult = { kind: "issued"; token: string; expiresAt?: Date; calls: number; atMs: number } | Refused | GaveUp;

export interface PlaceOrderOptions extends RetryOptions {
  saleId: string;
  /** The buyer, as logged in to the BFF (sent as x-user-id). */
  userId: string;
  /** From issuePurchaseToken (sent as x-purchase-token); "" where the backend does not require one. */
  purchaseToken: string;
  /** The click's id: the same for every retry of the click, a new one for a new click (default newRequestId()). */
  requestId?: string;
  /** Units (default 1). */
  quantity?: number;
  /** Each attempt's deadline (default 2000 ms). */
  deadlineMs?: number;
}

export interface IssuePurchaseTokenOptions extends RetryOptions {
  saleId: string;
  userId: string;
  /** GetChallenge's challenge_id and the buyer's answer, for a sale that requires a challenge. */
  challengeId?: string;
  challengeAnswer?: string;
  /** The account's creation time, for a sale with a minimum account age (sent as x-account-created-at). */
  accountCreatedAt?: Date;
  deadlineMs?: number;
}

function unanswered(attempted: Exclude<Attempted<unknown>, { ok: true }>): Refused | GaveUp {
  const { error, calls } = attempted;
  if (attempted.refused) {
    return {
      kind: "refused",
      code: error.code,
      message: error.message,
      calls,
      ...(error.reason !== undefined ? { reason: error.reason } : {}),
      ...(error.edge ? { edge: error.edge } : {}),
      ...(error.retryDelayMs !== undefined ? { retryDelayMs: error.retryDelayMs } : {}),
    };
  }
  return { kind: "gaveUp", code: error.code, message: error.message, mayHaveBeenAccepted: attempted.mayHaveBeenAccepted, unreachable: attempted.unreachable, calls };
}

/**
 * One click's PlaceOrder: every attempt with the same request id, the purchase
 * token and x-sale-id, and a deadline; a lost answer (UNAVAILABLE,
 * DEADLINE_EXCEEDED) sent again with retry: true after RetryInfo's delay or a
 * backoff. Resolves with the order won, the refusal (SOLD_OUT, ...; or which
 * of the edge's), or that it gave up; never rejects.
 */
export async function placeOrder(orders: OrderServiceClient, options: PlaceOrderOptions): Promise<PlaceOrderResult> {
  const { saleId, userId, purchaseToken, signal } = options;
  const requestId = options.requestId ?? newRequestId();
  const quantity = options.quantity ?? 1;
  const deadlineMs = options.deadlineMs ?? DEFAULT_ATTEMPT_DEADLINE_MS;
  const attempted = await callWithRetries(async (retry) => {
    const request = { saleId, quantity, requestId, purchaseToken: "", retry };
    const { order } = await callUnary(orders, "placeOrder", request, { metadata: purchaseMetadata(userId, saleId, purchaseToken), deadlineMs, signal });
    if (!order) throw new Error("PlaceOrder answered without an order");
    return order;
  }, options);
  if (attempted.ok) return { requestId, kind: "won", order: attempted.value, calls: attempted.calls, atMs: attempted.atMs };
  return { requestId, ...unanswered(attempted) };
}

/**
 * A purchase token for the buyer and the sale, sent again after a lost answer
 * like placeOrder. A token serves one request id: get one per click. (A
 * challenge is used up by its first check: when a retry of an answered
 * challenge is refused CHALLENGE_FAILED, show the buyer a new one.)
 */
export async function issuePurchaseToken(access: AccessServiceClient, options: IssuePurchaseTokenOptions): Promise<IssuePurchaseTokenResult> {
  const { saleId, userId, signal } = options;
  const deadlineMs = options.deadlineMs ?? DEFAULT_ATTEMPT_DEADLINE_MS;
  const request = { saleId, challengeId: options.challengeId ?? "", challengeAnswer: options.challengeAnswer ?? "" };
  const attempted = await callWithRetries(async () => {
    const metadata = userMetadata(userId);
    if (options.accountCreatedAt) metadata.set(ACCOUNT_CREATED_AT_HEADER, options.accountCreatedAt.toISOString());
    return callUnary(access, "issuePurchaseToken", request, { metadata, deadlineMs, signal });
  }, options);
  if (!attempted.ok) return unanswered(attempted);
  const { token, expiresAt } = attempted.value;
  return { kind: "issued", token, ...(expiresAt ? { expiresAt } : {}), calls: attempted.calls, atMs: attempted.atMs };
}
