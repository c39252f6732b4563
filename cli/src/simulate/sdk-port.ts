// The simulation's calls to the backend, through @seckill/sdk only. A buyer's
// calls (the page's status read, IssuePurchaseToken and PlaceOrder with the
// SDK's purchase helpers, WatchOrder and GetOrder) use backend.buyer: through
// the edge unless --direct. The reads
// that check the result (GetSale, ListOrders) go to the services directly.
import { setTimeout as sleep } from "node:timers/promises";
import { credentials } from "@grpc/grpc-js";
import { OrderServiceClient, OrderStatus, callUnary, edgeRefusalOf, userMetadata, watchOrder, type GrpcErrorLike, type Order } from "@seckill/sdk";
import type { Backend } from "../backend.js";
import type { BuyerPort, EdgeRefusalListener } from "./user.js";
import type { WatchResult } from "./stats.js";

export function buyerPort(backend: Backend, saleId: string, deadlineMs: number): BuyerPort {
  const { buyer } = backend;
  return {
    saleId,
    deadlineMs,
    saleStatus: () => callUnary(buyer.sales, "getSaleStatus", { saleId }, { deadlineMs }),
    access: buyer.access,
    orders: buyer.orders,
  };
}

const persisted = (o: Order | undefined) => o !== undefined && o.status !== OrderStatus.ORDER_STATUS_PENDING && o.status !== OrderStatus.ORDER_STATUS_UNSPECIFIED;

/**
 * Waits until the order is persisted (CREATED or later), as a buyer's page
 * would: the SDK's watchOrder first (which reconnects on UNAVAILABLE and picks
 * up where it stopped); if it gives up, GetOrder every `pollMs` until the
 * timeout. Each winner watches over a connection of its own, like a page in
 * its own browser (the order service bounds the streams of one connection).
 */
export async function watchUntilCreated(
  backend: Backend,
  userId: string,
  orderId: string,
  timeoutMs: number,
  deadlineMs: number,
  /** performance.now() of the PlaceOrder answer: createdAfterMs counts from there. */
  since = performance.now(),
  pollMs = 200,
  /** Told of each call the edge refused (through the edge only). */
  refusedAtEdge?: EdgeRefusalListener,
): Promise<WatchResult> {
  const atEdge = (call: "WatchOrder" | "GetOrder", error: unknown) => {
    const kind = refusedAtEdge ? edgeRefusalOf(error as GrpcErrorLike) : undefined;
    if (kind) refusedAtEdge!(call, kind, (error as Error).message ?? "");
  };
  const started = since;
  const until = performance.now() + timeoutMs;
  const timeout = AbortSignal.timeout(timeoutMs);
  const orders = new OrderServiceClient(backend.buyer.orderAddress, credentials.createInsecure(), { "grpc.use_local_subchannel_pool": 1 });
  try {
    for await (const order of watchOrder(orders, orderId, { userId, signal: timeout })) {
      if (persisted(order)) return { orderId, createdAfterMs: performance.now() - started, via: "stream", fellBack: false };
    }
    return { orderId, fellBack: false };
  } catch (error) {
    // The stream failed for good (or too often): poll, as the page would.
    atEdge("WatchOrder", error);
  } finally {
    orders.close();
  }
  while (performance.now() < until) {
    try {
      const { order } = await callUnary(backend.buyer.orders, "getOrder", { orderId }, { metadata: userMetadata(userId), deadlineMs });
      if (persisted(order)) return { orderId, createdAfterMs: performance.now() - started, via: "poll", fellBack: true };
    } catch (error) {
      // Keep polling until the timeout: the page would too.
      atEdge("GetOrder", error);
    }
    await sleep(Math.min(pollMs, Math.max(0, until - performance.now())));
  }
  return { orderId, fellBack: true };
}

/** GetSale.sold: units in orders persisted in Postgres. */
export async function soldInPostgres(backend: Backend, saleId: string, deadlineMs: number): Promise<{ sold: number; totalStock: number }> {
  const { sale } = await callUnary(backend.sales, "getSale", { saleId }, { deadlineMs });
  return { sold: sale!.sold, totalStock: sale!.totalStock };
}

/** A user's persisted orders of the sale, every page. */
export async function ordersOf(backend: Backend, userId: string, saleId: string, deadlineMs: number): Promise<Order[]> {
  const out: Order[] = [];
  let pageToken = "";
  do {
    const page = await callUnary(backend.orders, "listOrders", { saleId, pageSize: 100, pageToken }, { metadata: userMetadata(userId), deadlineMs });
    out.push(...page.orders);
    pageToken = page.nextPageToken;
  } while (pageToken);
  return out;
}
