// A crowd of buyers for fault tests and the fault campaign, behaving like a
// BFF: each purchase has its own request id (and, when a gateway is given, a
// purchase token from its AccessService), and a call that ends UNAVAILABLE or
// DEADLINE_EXCEEDED is sent again with the SAME request id, the same token and
// `retry: true` (after RetryInfo's delay, or a capped exponential backoff with
// jitter) until it gets an answer or the buyer gives up.
// Every answer is recorded: what the clients were told is what the invariant
// checker holds the system to.
import { setTimeout as sleep } from "node:timers/promises";
import { status, type ServiceError } from "@grpc/grpc-js";
import { callUnary, purchaseMetadata, rejectionOf, userMetadata, type AccessServiceClient, type OrderServiceClient } from "@seckill/sdk";
import { mulberry32, newSeed, type Random } from "./prng.js";

/** The final answer one purchase got. */
export type Answer =
  | { kind: "accepted"; orderId: string }
  | { kind: "refused"; code: status; reason: string }
  /** No answer before the buyer gave up: the last failure (UNAVAILABLE or DEADLINE_EXCEEDED). */
  | { kind: "unanswered"; code: status; reason: string };

export interface Purchase {
  userId: string;
  requestId: string;
  quantity: number;
  answer: Answer;
  /** PlaceOrder calls made for it (1 + retries; 0 when no token was issued). */
  calls: number;
}

/** A call that failed with a retryable code. */
export interface FailedCall {
  atMs: number;
  userId: string;
  requestId: string;
  code: status;
  reason: string;
}

export interface CrowdOptions {
  users: number;
  /** Purchases per user, each with a new request id (a second click tests the per-user limit). */
  clicksPerUser?: number;
  /** Users arrive evenly over this long (0: all at once). */
  arrivalMs?: number;
  /** Deadline of each call. */
  deadlineMs?: number;
  /** A purchase still unanswered this long after its first call is given up. */
  giveUpAfterMs?: number;
  /** Prefix of user and request ids, so two crowds on one sale do not collide. */
  prefix?: string;
  /** Each purchase first gets a purchase token from this AccessService (retried like PlaceOrder). */
  access?: AccessServiceClient;
  /** Backoff jitter (default: seeded afresh). */
  random?: Random;
}

export interface Crowd {
  /** Live counts, for timing a fault while the sale is under way. */
  progress: { accepted: number; refused: number; failedCalls: number };
  /** Resolves once every purchase has its final answer (or was given up). */
  done: Promise<{ purchases: Purchase[]; failedCalls: FailedCall[] }>;
}

const RETRYABLE = new Set<status>([status.UNAVAILABLE, status.DEADLINE_EXCEEDED]);

export function startCrowd(orders: OrderServiceClient, saleId: string, opts: CrowdOptions): Crowd {
  const clicks = opts.clicksPerUser ?? 1;
  const arrivalMs = opts.arrivalMs ?? 0;
  const deadlineMs = opts.deadlineMs ?? 3000;
  const giveUpAfterMs = opts.giveUpAfterMs ?? 30_000;
  const prefix = opts.prefix ?? "u";
  const random = opts.random ?? mulberry32(newSeed());
  const progress = { accepted: 0, refused: 0, failedCalls: 0 };
  const failedCalls: FailedCall[] = [];

  /**
   * Calls `call` until it answers or fails with a code that is not retryable;
   * past giveUpAfterMs of retries, the last retryable refusal with `retryable: true` (given up).
   */
  async function retrying<T>(
    userId: string,
    requestId: string,
    startedAt: number,
    call: (attempt: number) => Promise<T>,
  ): Promise<{ value: T; calls: number } | { refused: { code: status; reason: string }; calls: number; retryable: boolean }> {
    for (let attempt = 0; ; attempt++) {
      try {
        return { value: await call(attempt), calls: attempt + 1 };
      } catch (error) {
        const refusal = rejectionOf(error as ServiceError);
        const reason = refusal.reason ?? refusal.message;
        if (!RETRYABLE.has(refusal.code)) return { refused: { code: refusal.code, reason }, calls: attempt + 1, retryable: false };
        progress.failedCalls++;
        failedCalls.push({ atMs: Date.now(), userId, requestId, code: refusal.code, reason });
        const backoff = Math.min(100 * 2 ** attempt, 1000);
        const delay = (refusal.retryDelayMs ?? backoff) * (0.5 + random());
        if (Date.now() + delay - startedAt > giveUpAfterMs) return { refused: { code: refusal.code, reason }, calls: attempt + 1, retryable: true };
        await sleep(delay);
      }
    }
  }

  async function purchase(userId: string, requestId: string): Promise<Purchase> {
    const startedAt = Date.now();
    let token = "";
    if (opts.access) {
      const access = opts.access;
      const issued = await retrying(userId, requestId, startedAt, () =>
        callUnary(access, "issuePurchaseToken", { saleId, challengeId: "", challengeAnswer: "" }, { metadata: userMetadata(userId), deadlineMs }),
      );
      if (!("value" in issued)) {
        if (!issued.retryable) progress.refused++;
        const answer: Answer = { kind: issued.retryable ? "unanswered" : "refused", ...issued.refused };
        return { userId, requestId, quantity: 1, calls: 0, answer };
      }
      token = issued.value.token;
    }
    const placed = await retrying(userId, requestId, startedAt, (attempt) =>
      callUnary(orders, "placeOrder", { saleId, quantity: 1, requestId, purchaseToken: "", retry: attempt > 0 }, { metadata: purchaseMetadata(userId, saleId, token), deadlineMs }),
    );
    if ("value" in placed) {
      progress.accepted++;
      return { userId, requestId, quantity: 1, calls: placed.calls, answer: { kind: "accepted", orderId: placed.value.order!.orderId } };
    }
    if (!placed.retryable) progress.refused++;
    return { userId, requestId, quantity: 1, calls: placed.calls, answer: { kind: placed.retryable ? "unanswered" : "refused", ...placed.refused } };
  }

  async function user(i: number): Promise<Purchase[]> {
    if (arrivalMs > 0) await sleep((i * arrivalMs) / opts.users);
    const userId = `${prefix}-user-${i}`;
    const out: Purchase[] = [];
    for (let c = 0; c < clicks; c++) out.push(await purchase(userId, `${prefix}-req-${i}-${c}`));
    return out;
  }

  const done = Promise.all(Array.from({ length: opts.users }, (_, i) => user(i))).then((all) => ({ purchases: all.flat(), failedCalls }));
  return { progress, done };
}
