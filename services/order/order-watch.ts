// Order watchers: while at least one WatchOrder stream of this process is
// open, a NATS subscription to the order-status notifications, fanned out to
// the streams by order id. A process with no watchers receives nothing.
// Watchers also re-read the order on a slow timer, so a missed notification
// only delays an update. Two bounds: watchers per process (the hub) and open
// streams per client connection. A stream ends when the order reaches a final
// status, when the client cancels, or on shutdown (UNAVAILABLE, to reconnect
// to another replica).
import type { ServerWritableStream } from "@grpc/grpc-js";
import type { NatsConnection, Subscription } from "@nats-io/transport-node";
import { isFinalOrderStatus, OrderStatus, OrderStatusBatch, type Order, type WatchOrderRequest, type WatchOrderResponse } from "@seckill/sdk";
import { errorStatus } from "../common/grpc-errors.js";
import { idsOf } from "../common/grpc-server.js";
import type { Logger } from "../common/log.js";
import { overloaded, refuse } from "../common/refusal.js";

export interface OrderWatchHub {
  /** Registers a callback for changes of one order; returns the unsubscribe function, or undefined when full. */
  watch(orderId: string, onChange: () => void): (() => void) | undefined;
  readonly size: number;
  close(): void;
}

export function createOrderWatchHub(nc: NatsConnection, subject: string, maxWatchers: number): OrderWatchHub {
  const watchers = new Map<string, Set<() => void>>();
  let size = 0;
  let subscription: Subscription | undefined;

  const notify = (data: Uint8Array) => {
    let batch: OrderStatusBatch;
    try {
      batch = OrderStatusBatch.decode(data);
    } catch {
      return;
    }
    for (const change of batch.changes) for (const onChange of watchers.get(change.orderId) ?? []) onChange();
  };

  return {
    watch(orderId, onChange) {
      if (size >= maxWatchers) return undefined;
      subscription ??= nc.subscribe(subject, {
        callback: (error, msg) => {
          if (!error) notify(msg.data);
        },
      });
      let callbacks = watchers.get(orderId);
      if (!callbacks) {
        callbacks = new Set();
        watchers.set(orderId, callbacks);
      }
      callbacks.add(onChange);
      size++;
      let removed = false;
      return () => {
        if (removed) return;
        removed = true;
        size--;
        callbacks.delete(onChange);
        if (callbacks.size === 0) watchers.delete(orderId);
        if (size === 0) {
          subscription?.unsubscribe();
          subscription = undefined;
        }
      };
    },
    get size() {
      return size;
    },
    close() {
      subscription?.unsubscribe();
      subscription = undefined;
      watchers.clear();
    },
  };
}

/** Open streams per client connection, keyed by the peer (remote address and port). */
export interface ConnectionWatchLimit {
  readonly max: number;
  /** Takes a slot for one stream of the connection; returns its release, or undefined when the connection has `max` open. */
  acquire(connection: string): (() => void) | undefined;
  /** Streams the connection has open. */
  count(connection: string): number;
}

export function createConnectionWatchLimit(max: number): ConnectionWatchLimit {
  const open = new Map<string, number>();
  return {
    max,
    acquire(connection) {
      const count = open.get(connection) ?? 0;
      if (count >= max) return undefined;
      open.set(connection, count + 1);
      let released = false;
      return () => {
        if (released) return;
        released = true;
        const left = (open.get(connection) ?? 1) - 1;
        if (left === 0) open.delete(connection);
        else open.set(connection, left);
      };
    },
    count: (connection) => open.get(connection) ?? 0,
  };
}

export const tooManyWatches = (max: number) =>
  refuse("TOO_MANY_WATCHES", `this connection already has ${max} WatchOrder streams open (the most allowed); close one, or watch over another connection`);

/**
 * Yields the order now and then each time its status changes, until it reaches
 * a final status or the signal aborts. With `lastStatus` (what the client saw
 * before it reconnected), the current order is yielded only when its status
 * differs, and a final `lastStatus` that is still current ends at once. Throws
 * what `read` throws (NOT_FOUND for another user's order) before yielding anything.
 */
export async function* watchOrder(
  read: () => Promise<Order>,
  hub: OrderWatchHub,
  orderId: string,
  opts: { signal: AbortSignal; lastStatus?: OrderStatus; pendingPollMs?: number; pollMs?: number },
): AsyncGenerator<Order> {
  let changed = true;
  let wake: (() => void) | undefined;
  const unwatch = hub.watch(orderId, () => {
    changed = true;
    wake?.();
  });
  if (!unwatch) throw overloaded("too many order watchers on this server; retry later", 1000);
  try {
    let last: OrderStatus | undefined = opts.lastStatus === OrderStatus.ORDER_STATUS_UNSPECIFIED ? undefined : opts.lastStatus;
    while (!opts.signal.aborted) {
      changed = false;
      const order = await read();
      if (order.status !== last) {
        last = order.status;
        yield order;
      }
      if (isFinalOrderStatus(order.status)) return;
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

/** On shutdown, open WatchOrder streams end with UNAVAILABLE so clients reconnect to another replica. */
const SHUTTING_DOWN = overloaded("the server is shutting down; reconnect and watch again", 0);

/** The bounds every WatchOrder stream of the process shares. */
export interface OrderWatchers {
  hub: OrderWatchHub;
  perConnection: ConnectionWatchLimit;
}

/** One WatchOrder call, as the handler decoded it. */
export interface WatchOrderCall {
  orderId: string;
  lastStatus: OrderStatus | undefined;
  /** Reads the order as the caller may see it (NOT_FOUND for another user's order). */
  read(): Promise<Order>;
}

/**
 * Serves one WatchOrder stream: takes a slot of the client connection, writes
 * the order each time it changes and ends the stream (or fails it with the
 * error's status). `open` decodes the call; what it throws fails the stream.
 */
export function streamOrderWatch(
  call: ServerWritableStream<WatchOrderRequest, WatchOrderResponse>,
  open: () => WatchOrderCall,
  watchers: OrderWatchers,
  shutdown: AbortSignal,
  log: Logger,
): void {
  const cancelled = new AbortController();
  call.on("cancelled", () => cancelled.abort());
  const signal = AbortSignal.any([cancelled.signal, shutdown]);
  (async () => {
    const { orderId, lastStatus, read } = open();
    const release = watchers.perConnection.acquire(call.getPeer());
    if (!release) throw tooManyWatches(watchers.perConnection.max);
    // Freed as soon as the client cancels, not after a read in progress returns.
    signal.addEventListener("abort", release, { once: true });
    try {
      for await (const order of watchOrder(read, watchers.hub, orderId, { signal, lastStatus })) {
        if (signal.aborted) break;
        call.write({ order });
      }
    } finally {
      signal.removeEventListener("abort", release);
      release();
    }
    if (cancelled.signal.aborted) return;
    if (shutdown.aborted) call.emit("error", errorStatus(SHUTTING_DOWN, log));
    else call.end();
  })().catch((error: unknown) => {
    if (!cancelled.signal.aborted)
      call.emit(
        "error",
        errorStatus(error, log, () => ({ method: "WatchOrder", ...idsOf(call.request) })),
      );
  });
}
