// WatchOrder across restarts and under its bounds: the SDK's watchOrder
// reconnects after the order service or the writer restarts and delivers every
// status once; last_status resumes a watch without a duplicate; one connection
// holds at most MAX_WATCHES_PER_CONNECTION streams while another still gets in.
import { afterAll, beforeAll, describe, expect, it } from "vitest";
import { credentials, status, type ServiceError } from "@grpc/grpc-js";
import {
  OrderServiceClient,
  OrderStatus,
  callUnary,
  isFinalOrderStatus,
  reconnectDelayMs,
  rejectionMetadata,
  rejectionOf,
  userMetadata,
  watchOrder,
  type Order,
  type WatchOrderResponse,
} from "@seckill/sdk";
import { quietLogger } from "../services/common/log.js";
import { startOrder, type OrderApp } from "../services/order/app.js";
import { createConnectionWatchLimit } from "../services/order/order-watch.js";
import { startWriter, type WriterApp } from "../services/order/writer/app.js";
import { eventually, startTestStack, type TestStack } from "./support/stack.js";

const { ORDER_STATUS_PENDING: PENDING, ORDER_STATUS_CREATED: CREATED, ORDER_STATUS_PAID: PAID } = OrderStatus;
const PER_CONNECTION = 3;
/** Its own connection to the order service: grpc-js otherwise shares one between clients of the same address. */
const ownConnection = { "grpc.use_local_subchannel_pool": 1 };
const fastReconnect = { backoff: { initialMs: 50, maxMs: 500 }, maxReconnects: 60 };

describe("the per-connection watch limit", () => {
  it("gives each connection up to max slots, refuses the next, and frees a slot once", () => {
    const limit = createConnectionWatchLimit(2);
    const a1 = limit.acquire("a")!;
    const a2 = limit.acquire("a")!;
    expect(a1).toBeTypeOf("function");
    expect(a2).toBeTypeOf("function");
    expect(limit.acquire("a")).toBeUndefined();
    expect(limit.acquire("b")).toBeTypeOf("function");
    a1();
    a1();
    expect(limit.count("a")).toBe(1);
    expect(limit.acquire("a")).toBeTypeOf("function");
    expect(limit.acquire("a")).toBeUndefined();
  });
});

describe("the SDK's reconnect delay", () => {
  const unavailable = (retryDelayMs?: number) => ({
    code: status.UNAVAILABLE,
    details: "shutting down",
    metadata: rejectionMetadata(status.UNAVAILABLE, "shutting down", "OVERLOADED", { retryDelayMs }),
  });

  it("waits for the server's RetryInfo delay on UNAVAILABLE", () => {
    expect(reconnectDelayMs(unavailable(1500), 1)).toBe(1500);
    expect(reconnectDelayMs(unavailable(0), 3)).toBe(0);
  });

  it("backs off exponentially, capped and jittered, without a hint or after an early end", () => {
    const policy = { backoff: { initialMs: 100, maxMs: 1000 } };
    expect(reconnectDelayMs(unavailable(), 1, policy, () => 1)).toBe(100);
    expect(reconnectDelayMs(unavailable(), 3, policy, () => 1)).toBe(400);
    expect(reconnectDelayMs(undefined, 3, policy, () => 0)).toBe(200);
    expect(reconnectDelayMs(undefined, 9, policy, () => 1)).toBe(1000);
  });

  it("gives up on any other code and after maxReconnects in a row", () => {
    for (const code of [status.NOT_FOUND, status.INVALID_ARGUMENT, status.RESOURCE_EXHAUSTED, status.DEADLINE_EXCEEDED]) {
      expect(reconnectDelayMs({ ...unavailable(100), code }, 1)).toBeUndefined();
    }
    expect(reconnectDelayMs(unavailable(100), 3, { maxReconnects: 2 })).toBeUndefined();
    expect(reconnectDelayMs(undefined, 11)).toBeUndefined();
  });

  it("treats exactly PAID, CANCELLED and EXPIRED as final (the order service stops watching there too)", () => {
    const final = Object.values(OrderStatus).filter((value): value is OrderStatus => typeof value === "number" && isFinalOrderStatus(value));
    expect(final.sort()).toEqual([OrderStatus.ORDER_STATUS_PAID, OrderStatus.ORDER_STATUS_CANCELLED, OrderStatus.ORDER_STATUS_EXPIRED].sort());
  });
});

describe("WatchOrder with real servers", () => {
  let stack: TestStack;
  // Apps started by the tests; the stack stops only the ones it started.
  const restarted: { order?: OrderApp; writer?: WriterApp } = {};
  let saleId: string;
  let users = 0;

  beforeAll(async () => {
    stack = await startTestStack({ MAX_WATCHES_PER_CONNECTION: String(PER_CONNECTION) });
    saleId = (await stack.createSale({ totalStock: 50 })).saleId;
  });
  afterAll(async () => {
    await Promise.allSettled([restarted.order?.stop(), restarted.writer?.stop()]);
    await stack?.stop();
  });

  const place = async (userId: string) => {
    const { order } = await callUnary(
      stack.orders,
      "placeOrder",
      { saleId, quantity: 1, requestId: `buy-${userId}`, purchaseToken: "", retry: false },
      { metadata: userMetadata(userId) },
    );
    return order!;
  };
  const statusOf = async (userId: string, orderId: string) => (await callUnary(stack.orders, "getOrder", { orderId }, { metadata: userMetadata(userId) })).order!.status;
  /** A CREATED order of a new user. */
  const createdOrder = async () => {
    const userId = `watcher-${++users}`;
    const { orderId } = await place(userId);
    await eventually(async () => (await statusOf(userId, orderId)) === CREATED, 15_000, `order ${orderId} persisted`);
    return { userId, orderId };
  };
  /** Pays, retrying UNAVAILABLE (the channel reconnecting after a restart) with the same request id. */
  const pay = async (userId: string, orderId: string) => {
    let paid: Order | undefined;
    await eventually(
      async () => {
        try {
          paid = (await callUnary(stack.orders, "payOrder", { orderId, paymentReference: "psp-1", requestId: `pay-${orderId}` }, { metadata: userMetadata(userId) })).order;
          return true;
        } catch (error) {
          if ((error as ServiceError).code !== status.UNAVAILABLE) throw error;
          return false;
        }
      },
      15_000,
      "PayOrder to succeed",
    );
    return paid!;
  };
  /** Collects what the SDK iterator yields, in the background. */
  const follow = (iterator: AsyncIterable<Order>) => {
    const seen: OrderStatus[] = [];
    const done = (async () => {
      for await (const order of iterator) seen.push(order.status);
    })();
    return { seen, done };
  };
  /** A raw WatchOrder stream: its messages and how it ended. */
  const rawStream = (client: OrderServiceClient, userId: string, orderId: string, lastStatus?: OrderStatus) => {
    const call = client.watchOrder({ orderId, lastStatus }, userMetadata(userId), { deadline: Date.now() + 30_000 });
    const received: OrderStatus[] = [];
    const ended = new Promise<ServiceError | "end">((resolve) => {
      call.on("data", (m: WatchOrderResponse) => received.push(m.order!.status));
      call.on("error", (e: ServiceError) => resolve(e));
      call.on("end", () => resolve("end"));
    });
    /** "open" on the first message, else how the stream ended. */
    const first = Promise.race([ended, new Promise<"open">((resolve) => call.once("data", () => resolve("open")))]);
    return { call, received, ended, first };
  };

  it("reconnects after the order service restarts and delivers the next status once", async () => {
    const { userId, orderId } = await createdOrder();
    const watching = follow(watchOrder(stack.orders, orderId, { userId, ...fastReconnect }));
    await eventually(async () => watching.seen.length > 0, 10_000, "the first status");

    const port = stack.order.port;
    await stack.order.stop();
    restarted.order = await startOrder({ ...stack.config, orderAddr: `127.0.0.1:${port}` }, quietLogger());
    expect(restarted.order.port).toBe(port);
    await pay(userId, orderId);

    await watching.done;
    expect(watching.seen).toEqual([CREATED, PAID]);
  });

  it("sees CREATED after the writer restarts with the order still PENDING", async () => {
    await stack.writer.stop();
    const userId = `watcher-${++users}`;
    const { orderId } = await place(userId);
    const stop = new AbortController();
    const watching = follow(watchOrder(stack.orders, orderId, { userId, signal: stop.signal, ...fastReconnect }));
    await eventually(async () => watching.seen.length > 0, 10_000, "the first status");
    expect(watching.seen).toEqual([PENDING]);

    restarted.writer = await startWriter(stack.config, quietLogger());
    await eventually(async () => watching.seen.length > 1, 20_000, "CREATED after the writer restarted");
    stop.abort();
    await watching.done;
    expect(watching.seen).toEqual([PENDING, CREATED]);
  });

  it("refuses one stream more than MAX_WATCHES_PER_CONNECTION on a connection, while another connection gets through", async () => {
    const { userId, orderId } = await createdOrder();
    const crowded = new OrderServiceClient(stack.order.address, credentials.createInsecure(), ownConnection);
    const other = new OrderServiceClient(stack.order.address, credentials.createInsecure(), ownConnection);
    const streams: ReturnType<typeof rawStream>[] = [];
    try {
      for (let i = 0; i < PER_CONNECTION; i++) streams.push(rawStream(crowded, userId, orderId));
      await eventually(async () => streams.every((s) => s.received.length === 1), 10_000, `${PER_CONNECTION} open streams`);

      let refused: unknown;
      try {
        for await (const order of watchOrder(crowded, orderId, { userId })) expect.fail(`got ${order.status} past the bound`);
      } catch (error) {
        refused = error;
      }
      const refusal = rejectionOf(refused as ServiceError);
      expect(refusal.code).toBe(status.RESOURCE_EXHAUSTED);
      expect(refusal.reason).toBe("TOO_MANY_WATCHES");
      expect(refusal.message).toContain(`${PER_CONNECTION} WatchOrder streams`);

      const elsewhere = rawStream(other, userId, orderId);
      await eventually(async () => elsewhere.received.length === 1, 10_000, "the other connection's stream");
      expect(elsewhere.received).toEqual([CREATED]);
      elsewhere.call.cancel();

      // A cancelled stream frees its slot.
      streams[0]!.call.cancel();
      await eventually(
        async () => {
          const again = rawStream(crowded, userId, orderId);
          const first = await again.first;
          again.call.cancel();
          return first === "open";
        },
        10_000,
        "a slot after cancelling a stream",
      );
    } finally {
      for (const s of streams) s.call.cancel();
      crowded.close();
      other.close();
    }
  });

  it("resumes from last_status without repeating it", async () => {
    const { userId, orderId } = await createdOrder();
    const resumed = rawStream(stack.orders, userId, orderId, CREATED);
    // Let the server read the order (CREATED, the client's last status) before it changes.
    await new Promise((r) => setTimeout(r, 300));
    expect(resumed.received).toEqual([]);
    await pay(userId, orderId);
    expect(await resumed.ended).toBe("end");
    expect(resumed.received).toEqual([PAID]);

    // A final last_status that is still current: the stream ends at once, empty.
    const done = rawStream(stack.orders, userId, orderId, PAID);
    expect(await done.ended).toBe("end");
    expect(done.received).toEqual([]);

    // The SDK yields nothing for an order the caller has already seen final.
    const after = follow(watchOrder(stack.orders, orderId, { userId, lastStatus: PAID }));
    await after.done;
    expect(after.seen).toEqual([]);
  });

  it("refuses an unknown last_status with INVALID_ARGUMENT", async () => {
    const { userId, orderId } = await createdOrder();
    const bad = rawStream(stack.orders, userId, orderId, 99 as OrderStatus);
    const outcome = await bad.ended;
    expect(outcome).not.toBe("end");
    const refusal = rejectionOf(outcome as ServiceError);
    expect(refusal.code).toBe(status.INVALID_ARGUMENT);
    expect(refusal.fieldViolations[0]?.field).toBe("last_status");
  });
});
