// One simulated buyer: looks at the sale once (like loading the page), then
// clicks "buy". A click is one PlaceOrder with its own request id; when the
// answer is lost (UNAVAILABLE, DEADLINE_EXCEEDED) the same request id is sent
// again with retry: true, after the server's RetryInfo delay or a backoff.
import { status } from "@grpc/grpc-js";
import { rejectionOf } from "@seckill/sdk";
import type { PlannedUser } from "./plan.js";
import { retryDelayMs } from "./plan.js";
import type { CallRecord, ClickResult } from "./stats.js";

/** What a buyer does against the backend (the SDK in real runs, fakes in tests). */
export interface BuyerPort {
  saleStatus(): Promise<unknown>;
  /** Resolves with the accepted order; rejects with the grpc-js ServiceError. */
  placeOrder(userId: string, request: { requestId: string; quantity: number; retry: boolean }): Promise<{ orderId: string; quantity: number }>;
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

function readError(error: unknown): { code: number; reason?: string; message: string; retryDelayMs?: number } {
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
    clicks.push(await placeWithRetries(user.userId, click.requestId, port, settings, clock, random, record));
  }
  return { clicks, statusFailed };
}

export async function placeWithRetries(
  userId: string,
  requestId: string,
  port: BuyerPort,
  settings: BuyerSettings,
  clock: Clock,
  random: () => number,
  record: (call: CallRecord) => void,
): Promise<ClickResult> {
  for (let attempt = 1; ; attempt++) {
    const startMs = clock.now();
    try {
      const order = await port.placeOrder(userId, { requestId, quantity: settings.quantity, retry: attempt > 1 });
      const endMs = clock.now();
      record({ startMs, endMs, code: status.OK });
      return { userId, requestId, calls: attempt, outcome: { kind: "won", orderId: order.orderId, quantity: order.quantity, atMs: endMs } };
    } catch (error) {
      const e = readError(error);
      record({ startMs, endMs: clock.now(), code: e.code, reason: e.reason });
      if (isRetryable(e.code) && attempt < settings.maxAttempts) {
        await clock.sleep(retryDelayMs(attempt, e.retryDelayMs, random));
        continue;
      }
      const refused = e.reason !== undefined && !isRetryable(e.code);
      return {
        userId,
        requestId,
        calls: attempt,
        outcome: refused ? { kind: "refused", code: e.code, reason: e.reason } : { kind: "error", code: e.code, message: e.message },
      };
    }
  }
}
