// Order watchers: one NATS subscription per process to the order-status
// subject, fanned out to the WatchOrder streams of this process by order id.
// Watchers also re-read the order on a slow timer, so a missed notification
// only delays an update.
import type { NatsConnection, Subscription } from "@nats-io/transport-node";
import { OrderStatus, OrderStatusChanged, type Order } from "@seckill/sdk";
import type { Logger } from "../common/log.js";
import { overloaded } from "../common/refusal.js";
import { isFinal } from "./orders.js";

export interface OrderWatchHub {
  /** Registers a callback for changes of one order; returns the unsubscribe function, or undefined when full. */
  watch(orderId: string, onChange: () => void): (() => void) | undefined;
  readonly size: number;
  close(): void;
}

export function createOrderWatchHub(nc: NatsConnection, subject: string, maxWatchers: number, log: Logger): OrderWatchHub {
  const watchers = new Map<string, Set<() => void>>();
  let size = 0;
  const subscription: Subscription = nc.subscribe(subject, {
    callback: (error, msg) => {
      if (error) {
        log.warn("order status subscription error", { err: error.message });
        return;
      }
      let event: OrderStatusChanged;
      try {
        event = OrderStatusChanged.decode(msg.data);
      } catch {
        log.warn("undecodable order status event", { subject: msg.subject });
        return;
      }
      for (const notify of watchers.get(event.orderId) ?? []) notify();
    },
  });
  return {
    watch(orderId, onChange) {
      if (size >= maxWatchers) return undefined;
      let set = watchers.get(orderId);
      if (!set) watchers.set(orderId, (set = new Set()));
      set.add(onChange);
      size++;
      let removed = false;
      return () => {
        if (removed) return;
        removed = true;
        size--;
        set.delete(onChange);
        if (set.size === 0) watchers.delete(orderId);
      };
    },
    get size() {
      return size;
    },
    close: () => subscription.unsubscribe(),
  };
}

/**
 * Yields the order now and then each time its status changes, until it reaches
 * a final status or the signal aborts. Throws what `read` throws (NOT_FOUND for
 * another user's order) before yielding anything.
 */
export async function* watchOrder(
  read: () => Promise<Order>,
  hub: OrderWatchHub,
  orderId: string,
  opts: { signal: AbortSignal; pendingPollMs?: number; pollMs?: number },
): AsyncGenerator<Order> {
  let changed = true;
  let wake: (() => void) | undefined;
  const unwatch = hub.watch(orderId, () => {
    changed = true;
    wake?.();
  });
  if (!unwatch) throw overloaded("too many order watchers on this server; retry later", 1000);
  try {
    let last: OrderStatus | undefined;
    while (!opts.signal.aborted) {
      changed = false;
      const order = await read();
      if (order.status !== last) {
        last = order.status;
        yield order;
        if (isFinal(order.status)) return;
      }
      if (changed) continue;
      const pollMs = order.status === OrderStatus.ORDER_STATUS_PENDING ? (opts.pendingPollMs ?? 1000) : (opts.pollMs ?? 5000);
      await new Promise<void>((resolve) => {
        const timer = setTimeout(done, pollMs);
        opts.signal.addEventListener("abort", done, { once: true });
        wake = done;
        function done() {
          clearTimeout(timer);
          opts.signal.removeEventListener("abort", done);
          wake = undefined;
          resolve();
        }
      });
    }
  } finally {
    unwatch();
  }
}
