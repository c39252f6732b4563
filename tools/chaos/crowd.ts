// A crowd of buyers for fault tests, behaving like a BFF: each purchase has its
// own request id, and a call that ends UNAVAILABLE or DEADLINE_EXCEEDED is sent
// again with the SAME request id and `retry: true` (after RetryInfo's delay, or
// a capped exponential backoff) until it gets an answer or the buyer gives up.
// Every answer is recorded: what the clients were told is what the invariant
// checker holds the system to.
import { status, type ServiceError } from "@grpc/grpc-js";
import { callUnary, rejectionOf, userMetadata, type OrderServiceClient } from "@seckill/sdk";

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
  /** PlaceOrder calls made for it (1 + retries). */
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
}

export interface Crowd {
  /** Live counts, for timing a fault while the sale is under way. */
  progress: { accepted: number; refused: number; failedCalls: number };
  /** Resolves once every purchase has its final answer (or was given up). */
  done: Promise<{ purchases: Purchase[]; failedCalls: FailedCall[] }>;
}

const RETRYABLE = new Set<status>([status.UNAVAILABLE, status.DEADLINE_EXCEEDED]);
const sleep = (ms: number) => new Promise((r) => setTimeout(r, ms));

export function startCrowd(orders: OrderServiceClient, saleId: string, opts: CrowdOptions): Crowd {
  const clicks = opts.clicksPerUser ?? 1;
  const arrivalMs = opts.arrivalMs ?? 0;
  const deadlineMs = opts.deadlineMs ?? 3000;
  const giveUpAfterMs = opts.giveUpAfterMs ?? 30_000;
  const prefix = opts.prefix ?? "u";
  const progress = { accepted: 0, refused: 0, failedCalls: 0 };
  const failedCalls: FailedCall[] = [];

  async function purchase(userId: string, requestId: string): Promise<Purchase> {
    const startedAt = Date.now();
    let calls = 0;
    for (let attempt = 0; ; attempt++) {
      calls++;
      try {
        const { order } = await callUnary(
          orders,
          "placeOrder",
          { saleId, quantity: 1, requestId, purchaseToken: "", retry: attempt > 0 },
          { metadata: userMetadata(userId), deadlineMs },
        );
        progress.accepted++;
        return { userId, requestId, quantity: 1, calls, answer: { kind: "accepted", orderId: order!.orderId } };
      } catch (error) {
        const refusal = rejectionOf(error as ServiceError);
        const reason = refusal.reason ?? refusal.message;
        if (!RETRYABLE.has(refusal.code)) {
          progress.refused++;
          return { userId, requestId, quantity: 1, calls, answer: { kind: "refused", code: refusal.code, reason } };
        }
        progress.failedCalls++;
        failedCalls.push({ atMs: Date.now(), userId, requestId, code: refusal.code, reason });
        const backoff = Math.min(100 * 2 ** attempt, 1000);
        const delay = (refusal.retryDelayMs ?? backoff) * (0.5 + Math.random());
        if (Date.now() + delay - startedAt > giveUpAfterMs) {
          return { userId, requestId, quantity: 1, calls, answer: { kind: "unanswered", code: refusal.code, reason } };
        }
        await sleep(delay);
      }
    }
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
