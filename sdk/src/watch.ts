// Watching an order until it is final, across server restarts: after UNAVAILABLE
// or a stream that ends early, WatchOrder again with last_status set to the last
// status received, so the caller sees every status once and none twice.
import { status, type ServiceError } from "@grpc/grpc-js";
import { OrderStatus, type Order, type OrderServiceClient, type WatchOrderResponse } from "./gen/seckill/v1/order.js";
import { oversizedMetadata, userMetadata } from "./calls.js";
import { rejectionOf } from "./rejection.js";

/** Statuses an order never leaves (the order service stops watching there too). */
export const FINAL_ORDER_STATUSES: ReadonlySet<OrderStatus> = new Set([OrderStatus.ORDER_STATUS_PAID, OrderStatus.ORDER_STATUS_CANCELLED, OrderStatus.ORDER_STATUS_EXPIRED]);

export const isFinalOrderStatus = (s: OrderStatus): boolean => FINAL_ORDER_STATUSES.has(s);

export interface ReconnectPolicy {
  /** Reconnects in a row without a new status before the iteration gives up with the last error (default 10). */
  maxReconnects?: number;
  /** Delay before a reconnect when the server sent no RetryInfo: initialMs, doubling up to maxMs, with jitter (default 100 ms to 5 s). */
  backoff?: { initialMs?: number; maxMs?: number };
}

export interface WatchOrderOptions extends ReconnectPolicy {
  /** The buyer, sent as x-user-id. */
  userId: string;
  /** Aborting cancels the stream and ends the iteration without an error. */
  signal?: AbortSignal;
  /** The status the caller already has (say, from GetOrder): it is not yielded again. */
  lastStatus?: OrderStatus;
}

/**
 * How long to wait before reconnect number `attempt` (1 for the first in a row)
 * after a stream ended with `error` (undefined: it ended cleanly before a final
 * status); undefined when the iteration should stop. UNAVAILABLE waits for the
 * server's RetryInfo delay when it sent one.
 */
export function reconnectDelayMs(
  error: Pick<ServiceError, "code" | "details" | "metadata"> | undefined,
  attempt: number,
  policy: ReconnectPolicy = {},
  random: () => number = Math.random,
): number | undefined {
  if (attempt > (policy.maxReconnects ?? 10)) return undefined;
  if (error) {
    if (error.code !== status.UNAVAILABLE) return undefined;
    const hinted = rejectionOf(error).retryDelayMs;
    if (hinted !== undefined) return hinted;
  }
  const initialMs = policy.backoff?.initialMs ?? 100;
  const maxMs = policy.backoff?.maxMs ?? 5000;
  const ceiling = Math.min(maxMs, initialMs * 2 ** (attempt - 1));
  return Math.round(ceiling / 2 + (random() * ceiling) / 2);
}

/**
 * `for await (const order of watchOrder(orders, orderId, { userId }))`: the
 * order now (unless its status is `lastStatus`), then each new status, ending
 * after a final one (PAID, CANCELLED, EXPIRED). Reconnects on UNAVAILABLE and
 * on a stream that ends early; any other error (NOT_FOUND, INVALID_ARGUMENT,
 * RESOURCE_EXHAUSTED...), or too many reconnects in a row, is thrown.
 */
export async function* watchOrder(client: OrderServiceClient, orderId: string, options: WatchOrderOptions): AsyncGenerator<Order> {
  const { signal } = options;
  let last = options.lastStatus ?? OrderStatus.ORDER_STATUS_UNSPECIFIED;
  let attempt = 0;
  const oversized = oversizedMetadata(userMetadata(options.userId));
  if (oversized) throw oversized;
  while (!signal?.aborted && !isFinalOrderStatus(last)) {
    const call = client.watchOrder({ orderId, lastStatus: last }, userMetadata(options.userId));
    const cancel = () => call.cancel();
    signal?.addEventListener("abort", cancel, { once: true });
    let failure: ServiceError | undefined;
    try {
      for await (const { order } of call as AsyncIterable<WatchOrderResponse>) {
        if (!order || order.status === last) continue;
        last = order.status;
        attempt = 0;
        yield order;
        if (isFinalOrderStatus(last)) return;
      }
    } catch (error) {
      failure = error as ServiceError;
    } finally {
      signal?.removeEventListener("abort", cancel);
      call.cancel();
    }
    if (signal?.aborted) return;
    const delayMs = reconnectDelayMs(failure, ++attempt, options);
    if (delayMs === undefined) throw failure ?? new Error(`WatchOrder for ${orderId} ended ${attempt - 1} times in a row before a final status`);
    await pause(delayMs, signal);
  }
}

function pause(ms: number, signal: AbortSignal | undefined): Promise<void> {
  return new Promise((resolve) => {
    const timer = setTimeout(done, ms);
    signal?.addEventListener("abort", done, { once: true });
    function done() {
      clearTimeout(timer);
      signal?.removeEventListener("abort", done);
      resolve();
    }
  });
}
