// @seckill/sdk: the generated seckill.v1 messages and grpc-js clients, plus the
// few helpers every caller needs (user metadata, deadlines, reading refusals,
// the edge's own among them, the purchase protocol with its retries, the
// channel's service config, watching an order across reconnects).
export * from "./gen/seckill/v1/reason.js";
export * from "./gen/seckill/v1/sale.js";
export * from "./gen/seckill/v1/inventory.js";
export * from "./gen/seckill/v1/order.js";
export * from "./gen/seckill/v1/events.js";
export * from "./gen/seckill/v1/dead_letter.js";
export * from "./gen/seckill/v1/access.js";
export { ERROR_DOMAIN, REASON_STATUS, reasonName, reasonFromName, type ReasonName } from "./reasons.js";
export { rejectionOf, rejectionMetadata, DETAILS_TRAILER, type Rejection } from "./rejection.js";
export {
  callUnary,
  MAX_METADATA_BYTES,
  oversizedMetadata,
  userMetadata,
  purchaseMetadata,
  USER_ID_HEADER,
  SALE_ID_HEADER,
  PURCHASE_TOKEN_HEADER,
  ACCOUNT_CREATED_AT_HEADER,
} from "./calls.js";
export { edgeRefusalOf, EDGE_REFUSALS, EDGE_LIMITED_HEADER, GLOBAL_LIMITED_HEADER, type EdgeRefusal, type GrpcErrorLike } from "./edge-refusal.js";
export {
  callWithRetries,
  callFailureOf,
  isRetryable,
  retryDelayMs,
  MAX_EDGE_HELD_RETRIES,
  DEFAULT_MAX_ATTEMPTS,
  type Attempted,
  type AttemptRecord,
  type CallFailure,
  type RetryOptions,
} from "./retries.js";
export {
  placeOrder,
  issuePurchaseToken,
  newRequestId,
  DEFAULT_ATTEMPT_DEADLINE_MS,
  type PlaceOrderOptions,
  type PlaceOrderResult,
  type IssuePurchaseTokenOptions,
  type IssuePurchaseTokenResult,
  type Refused,
  type GaveUp,
} from "./purchase.js";
export { SERVICE_CONFIG, RETRYABLE_READS, clientOptions } from "./service-config.js";
export { watchOrder, reconnectDelayMs, isFinalOrderStatus, FINAL_ORDER_STATUSES, type WatchOrderOptions, type ReconnectPolicy } from "./watch.js";
