// gRPC handlers of the order service: identify the caller, call the domain,
// encode. The caller is the x-user-id metadata entry set by the BFF.
import type { IncomingHttpHeaders } from "node:http2";
import { Metadata } from "@grpc/grpc-js";
import { OrderServiceService, OrderStatus, PlaceOrderRequest, PURCHASE_TOKEN_HEADER, type OrderServiceServer, type WatchOrderRequest } from "@seckill/sdk";
import { checkDecoded, unary, type ServiceRegistration } from "../common/grpc-server.js";
import { userOf } from "../common/caller.js";
import type { Logger } from "../common/log.js";
import { invalid, type Refusal } from "../common/refusal.js";
import { streamOrderWatch, type OrderWatchers } from "./order-watch.js";
import { MAX_TOKEN_LENGTH, type OrderService } from "./orders.js";

/**
 * PlaceOrder's answers known without I/O (a sale this process saw sell out, a
 * request id that did not win),
 * given by the admission gate before grpc-js. Only for a call whose user and
 * token entries userOf() and purchaseTokenOf() accept: any other goes on to
 * the handler, which answers it. Nothing is decoded while no sale is sold out.
 */
function quickPlaceOrder(orders: OrderService) {
  return (headers: IncomingHttpHeaders, message: Buffer): Refusal | undefined => {
    if (!orders.anySoldOut()) return undefined;
    try {
      const metadata = Metadata.fromHttp2Headers(headers);
      return orders.quickRefusal(userOf(metadata), PlaceOrderRequest.decode(message), purchaseTokenOf(metadata));
    } catch {
      return undefined;
    }
  };
}

/** The x-purchase-token metadata entry; undefined when absent. */
function purchaseTokenOf(metadata: Metadata): string | undefined {
  const values = metadata.get(PURCHASE_TOKEN_HEADER);
  if (values.length === 0) return undefined;
  if (values.length > 1 || typeof values[0] !== "string") throw invalid(PURCHASE_TOKEN_HEADER, "at most one token");
  if (values[0].length > MAX_TOKEN_LENGTH) throw invalid(PURCHASE_TOKEN_HEADER, `at most ${MAX_TOKEN_LENGTH} characters`);
  return values[0];
}

const KNOWN_STATUSES = new Set<number>(Object.values(OrderStatus).filter((v): v is number => typeof v === "number" && v >= 0));

function lastStatusOf(request: WatchOrderRequest): OrderStatus | undefined {
  const { lastStatus } = request;
  if (lastStatus !== undefined && !KNOWN_STATUSES.has(lastStatus)) throw invalid("last_status", "not a known order status");
  return lastStatus === OrderStatus.ORDER_STATUS_UNSPECIFIED ? undefined : lastStatus;
}

export function orderServiceRegistration(orders: OrderService, watchers: OrderWatchers, log: Logger, shutdown: AbortSignal): ServiceRegistration {
  const implementation: OrderServiceServer = {
    placeOrder: unary(log, "PlaceOrder", async (req, call) => ({
      order: await orders.place(userOf(call.metadata), req, purchaseTokenOf(call.metadata)),
    })),
    getOrder: unary(log, "GetOrder", async (req, call) => ({ order: await orders.get(userOf(call.metadata), req.orderId) })),
    listOrders: unary(log, "ListOrders", (req, call) => orders.list(userOf(call.metadata), req.pageSize, req.pageToken, req.saleId)),
    payOrder: unary(log, "PayOrder", async (req, call) => ({
      order: await orders.pay(userOf(call.metadata), req.orderId, req.paymentReference, req.requestId),
    })),
    cancelOrder: unary(log, "CancelOrder", async (req, call) => ({
      order: await orders.cancel(userOf(call.metadata), req.orderId, req.requestId),
    })),
    watchOrder: (call) =>
      streamOrderWatch(
        call,
        () => {
          const userId = userOf(call.metadata);
          const request = checkDecoded(call.request);
          return { orderId: request.orderId, lastStatus: lastStatusOf(request), read: () => orders.get(userId, request.orderId) };
        },
        watchers,
        shutdown,
        log,
      ),
  };
  return { name: "seckill.v1.OrderService", definition: OrderServiceService, implementation, quickAnswers: { placeOrder: quickPlaceOrder(orders) } };
}
