// The order domain: placing an order (the hot path), reading, paying and
// cancelling. Plain functions over an inventory client, the order repository
// and the event publisher; no gRPC types beyond the generated messages.
import { OrderStatus, Reason, reasonName, type Order, type PlaceOrderRequest, type ReserveItem, type ReserveResult, type GetReservationResponse } from "@seckill/sdk";
import type { Knex } from "knex";
import { isRequestId, isSaleId, saleOfOrderId } from "../common/ids.js";
import { decodePageToken, pageLimit, pageOf } from "../common/page-token.js";
import { invalid, overloaded, refuse, type Refusal } from "../common/refusal.js";
import type { EventPublisher } from "../common/event-bus.js";
import type { Logger } from "../common/log.js";
import type { OrderMetrics } from "../common/metrics.js";
import * as repo from "./order-repository.js";
import type { OrderRow } from "./order-repository.js";
import type { ReleaseOutbox } from "./release-outbox.js";
import type { PurchaseTokenCheck } from "./purchase-token.js";
import type { SoldOutShortcut } from "./sold-out.js";

/** The longest purchase token accepted, in the request or the x-purchase-token metadata entry. */
export const MAX_TOKEN_LENGTH = 2048;

/** What the order service needs from inventory (the generated stub, behind deadlines). */
export interface InventoryPort {
  reserve(item: ReserveItem): Promise<ReserveResult>;
  /** undefined when inventory does not know the reservation. */
  reservation(reservationId: string): Promise<GetReservationResponse | undefined>;
}

export interface OrderDeps {
  db: Knex;
  inventory: InventoryPort;
  publisher: EventPublisher;
  /** Publishes committed releases (cancel) to JetStream. */
  releaseOutbox: Pick<ReleaseOutbox, "publish">;
  /** Purchase-token verification (purchase-token.ts). */
  purchaseTokens: PurchaseTokenCheck;
  /** Sales this process saw sell out, and their winners (sold-out.ts). */
  soldOut: SoldOutShortcut;
  now: () => Date;
  log: Logger;
  /** Counts the orders this process pays and cancels. */
  metrics?: OrderMetrics;
}

const SOLD_OUT = refuse("SOLD_OUT", "the sale is sold out");

const STATUS: Record<repo.PersistedStatus, OrderStatus> = {
  CREATED: OrderStatus.ORDER_STATUS_CREATED,
  PAID: OrderStatus.ORDER_STATUS_PAID,
  CANCELLED: OrderStatus.ORDER_STATUS_CANCELLED,
  EXPIRED: OrderStatus.ORDER_STATUS_EXPIRED,
};

export function toOrder(row: OrderRow): Order {
  return {
    orderId: row.id,
    saleId: row.sale_id,
    userId: row.user_id,
    quantity: row.quantity,
    status: STATUS[row.status],
    amountMinor: row.unit_price_minor * row.quantity,
    currency: row.currency,
    reservedAt: row.reserved_at,
    createdAt: row.created_at,
    payBy: row.pay_by,
    updatedAt: row.updated_at,
    requestId: row.request_id,
  };
}

function pendingOrder(r: { reservationId: string; saleId: string; userId: string; requestId: string; quantity: number; reservedAt?: Date }): Order {
  return {
    orderId: r.reservationId,
    saleId: r.saleId,
    userId: r.userId,
    quantity: r.quantity,
    status: OrderStatus.ORDER_STATUS_PENDING,
    amountMinor: 0,
    currency: "",
    reservedAt: r.reservedAt,
    createdAt: undefined,
    payBy: undefined,
    updatedAt: r.reservedAt,
    requestId: r.requestId,
  };
}

export function validatePlaceOrder(req: PlaceOrderRequest): Omit<ReserveItem, "userId"> {
  if (!isSaleId(req.saleId)) throw invalid("sale_id", "26 characters of Crockford base32");
  checkRequestId(req.requestId);
  const quantity = req.quantity === 0 ? 1 : req.quantity;
  if (!Number.isInteger(quantity) || quantity < 1 || quantity > 100) throw invalid("quantity", "1 to 100");
  if (req.purchaseToken.length > MAX_TOKEN_LENGTH) throw invalid("purchase_token", `at most ${MAX_TOKEN_LENGTH} characters`);
  return { saleId: req.saleId, requestId: req.requestId, quantity };
}

/** The checks of a PlaceOrder request that need no I/O; throws INVALID_ARGUMENT. */
function checkPlaceOrder(req: PlaceOrderRequest, metadataToken: string | undefined): Omit<ReserveItem, "userId"> {
  const item = validatePlaceOrder(req);
  if (metadataToken !== undefined && req.purchaseToken !== "" && metadataToken !== req.purchaseToken) {
    throw invalid("purchase_token", "differs from the x-purchase-token metadata entry");
  }
  return item;
}

function checkOrderId(orderId: string): void {
  if (!saleOfOrderId(orderId)) throw invalid("order_id", "not an order id");
}

function checkRequestId(requestId: string): void {
  if (!isRequestId(requestId)) throw invalid("request_id", "1 to 64 characters of [A-Za-z0-9._:-]");
}

export function createOrderService(deps: OrderDeps) {
  const { db, inventory, publisher, releaseOutbox, soldOut } = deps;
  const stockReturned = (saleId: string) => soldOut.stockReturned(saleId);

  function publishStatus(row: OrderRow): void {
    publisher.orderStatusChanged([{ orderId: row.id, saleId: row.sale_id, userId: row.user_id, status: STATUS[row.status], changedAt: row.updated_at }]);
  }

  async function find(userId: string, orderId: string): Promise<Order> {
    checkOrderId(orderId);
    const row = await repo.findOrder(db, orderId);
    if (row) {
      if (row.user_id !== userId) throw refuse("NOT_FOUND", `no order ${orderId}`);
      return toOrder(row);
    }
    const reservation = await inventory.reservation(orderId);
    if (!reservation || reservation.userId !== userId) throw refuse("NOT_FOUND", `no order ${orderId}`);
    return pendingOrder(reservation);
  }

  return {
    /** metadataToken: the x-purchase-token metadata entry; when the request's purchase_token is set too, they must match. */
    async place(userId: string, req: PlaceOrderRequest, metadataToken?: string): Promise<Order> {
      const item = { ...checkPlaceOrder(req, metadataToken), userId };
      // The sold-out shortcut before the token's signature: the answer almost
      // every buyer gets costs no cryptography (and says nothing a sale's
      // public status does not). Never for a request id that won: its replay
      // gets its order back. The claim on the token's jti is a Redis write.
      if (!req.retry && soldOut.refuses(item.saleId, userId, item.requestId)) throw SOLD_OUT;
      const claims = await deps.purchaseTokens.verify(metadataToken || req.purchaseToken || undefined, { userId, saleId: item.saleId });
      await deps.purchaseTokens.claim(claims, item.requestId);
      const result = await inventory.reserve(item);
      if (result.stockLeft === 0 && (result.reason === Reason.REASON_UNSPECIFIED || result.reason === Reason.REASON_SOLD_OUT)) {
        soldOut.soldOut(item.saleId);
      }
      if (result.reason !== Reason.REASON_UNSPECIFIED) {
        const name = reasonName(result.reason);
        if (name === "SOLD_OUT") throw SOLD_OUT;
        if (name === "OVERLOADED") throw overloaded("the reservation was not confirmed; retry with the same request id and retry=true");
        if (name === "INVALID_ARGUMENT") {
          throw result.perUserLimit > 0 ? invalid("quantity", `at most ${result.perUserLimit}, the sale's per-user limit`) : invalid("request", "rejected by inventory");
        }
        throw refuse(name ?? "OVERLOADED", (name ?? "unknown").toLowerCase().replace(/_/g, " "));
      }
      return pendingOrder({ ...item, reservationId: result.reservationId, quantity: result.quantity, reservedAt: result.reservedAt });
    },

    /** Whether this process has seen any sale sell out (quickRefusal can answer at all). */
    anySoldOut: (): boolean => soldOut.any(),

    /**
     * place()'s answer when it is known without any I/O: SOLD_OUT for a valid
     * request, by a request id that did not win, for a sale this process saw
     * sell out. Undefined otherwise (the call goes on to place(), which answers
     * the rest, invalid requests and winners' replays too).
     */
    quickRefusal(userId: string, req: PlaceOrderRequest, metadataToken?: string): Refusal | undefined {
      if (req.retry || !soldOut.refuses(req.saleId, userId, req.requestId)) return undefined;
      try {
        checkPlaceOrder(req, metadataToken);
      } catch {
        return undefined;
      }
      return SOLD_OUT;
    },

    /** A stock release seen for the sale: buyers may succeed again. */
    stockReturned,

    /** Releases committed elsewhere (expiry): lift the shortcut here at once too. */
    releasedRows(rows: OrderRow[]): void {
      for (const saleId of new Set(rows.map((row) => row.sale_id))) stockReturned(saleId);
      publisher.orderStatusChanged(rows.map((row) => ({ orderId: row.id, saleId: row.sale_id, userId: row.user_id, status: STATUS[row.status], changedAt: row.updated_at })));
    },

    get: find,

    async list(userId: string, pageSize: number, pageToken: string, saleId: string) {
      const limit = pageLimit(pageSize);
      if (saleId && !isSaleId(saleId)) throw invalid("sale_id", "26 characters of Crockford base32");
      const after = decodePageToken(pageToken, (id) => saleOfOrderId(id) !== undefined);
      const rows = await repo.listOrders(db, userId, limit + 1, { saleId: saleId || undefined, after });
      const { page, nextPageToken } = pageOf(rows, limit);
      return { orders: page.map(toOrder), nextPageToken };
    },

    async pay(userId: string, orderId: string, paymentReference: string, requestId: string): Promise<Order> {
      checkOrderId(orderId);
      checkRequestId(requestId);
      if (paymentReference.length < 1 || paymentReference.length > 128) throw invalid("payment_reference", "1 to 128 characters");
      const paid = await repo.markPaid(db, orderId, userId, { reference: paymentReference, requestId }, deps.now());
      if (paid) {
        deps.metrics?.transitioned("paid");
        publishStatus(paid);
        return toOrder(paid);
      }
      const row = await repo.findOrder(db, orderId);
      if (row?.user_id === userId && row.status === "PAID" && row.pay_request_id === requestId) return toOrder(row);
      const current = await find(userId, orderId);
      const why =
        current.status === OrderStatus.ORDER_STATUS_PENDING
          ? "the order is not created yet; retry shortly"
          : current.status === OrderStatus.ORDER_STATUS_CREATED
            ? "the payment window has closed"
            : current.status === OrderStatus.ORDER_STATUS_PAID
              ? "the order was already paid by another request"
              : "the order is no longer awaiting payment";
      throw refuse("ORDER_NOT_PAYABLE", why);
    },

    async cancel(userId: string, orderId: string, requestId: string): Promise<Order> {
      checkOrderId(orderId);
      checkRequestId(requestId);
      const cancelled = await db.transaction((trx) => repo.markReleased(trx, orderId, "CANCELLED", { userId }, deps.now()));
      if (!cancelled) {
        const current = await find(userId, orderId);
        if (current.status === OrderStatus.ORDER_STATUS_CANCELLED) return current;
        const why = current.status === OrderStatus.ORDER_STATUS_PENDING ? "the order is not created yet; retry shortly" : "only an order awaiting payment can be cancelled";
        throw refuse("ORDER_NOT_CANCELLABLE", why);
      }
      deps.metrics?.transitioned("cancelled");
      // Committed: the release reaches Redis through JetStream (the outbox relay
      // republishes it if this publish fails or the process dies first).
      await releaseOutbox.publish([cancelled]);
      stockReturned(cancelled.sale_id);
      publishStatus(cancelled);
      return toOrder(cancelled);
    },
  };
}

export type OrderService = ReturnType<typeof createOrderService>;
