// Order watchers: a NATS subscription to an order's status subject while at
// least one WatchOrder stream of this process follows that order, fanned out
// to those streams. Status changes of orders nobody watches never reach the
// order service. Watchers also re-read the order on a slow timer, so a missed
// notification only delays an update.
import type { NatsConnection, Subscription } from "@nats-io/transport-node";
import { OrderStatus, type Order } from "@seckill/sdk";
import { overloaded } from "../common/refusal.js";
import { isFinal } from "./orders.js";

export interface OrderWatchHub {
  /** Registers a callback for changes of one order; returns the unsubscribe function, or undefined when full. */
  watch(orderId: string, onChange: () => void): (() => void) | undefined;
  readonly size: number;
  close(): void;
}

export function createOrderWatchHub(nc: NatsConnection, subjectOf: (orderId: string) => string, maxWatchers: number): OrderWatchHub {
  const watched = new Map<string, { callbacks: Set<() => void>; subscription: Subscription }>();
  let size = 0;
  return {
    watch(orderId, onChange) {
      if (size >= maxWatchers) return undefined;
      let entry = watched.get(orderId);
      if (!entry) {
        const callbacks = new Set<() => void>();
        const subscription = nc.subscribe(subjectOf(orderId), {
          callback: (error) => {
            if (!error) for (const notify of callbacks) notify();
          },
        });
        watched.set(orderId, (entry = { callbacks, subscription }));
      }
      const { callbacks, subscription } = entry;
      callbacks.add(onChange);
      size++;
      let removed = false;
      return () => {
        if (removed) return;
        removed = true;
        size--;
        callbacks.delete(onChange);
        if (callbacks.size === 0) {
          watched.delete(orderId);
          subscription.unsubscribe();
        }
      };
    },
    get size() {
      return size;
    },
    close() {
      for (const { subscription } of watched.values()) subscription.unsubscribe();
      watched.clear();
    },
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
