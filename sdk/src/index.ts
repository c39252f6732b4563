// @seckill/sdk: the generated seckill.v1 messages and grpc-js clients, plus the
// few helpers every caller needs (user metadata, deadlines, reading refusals,
// watching an order across reconnects).
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
export { watchOrder, reconnectDelayMs, isFinalOrderStatus, FINAL_ORDER_STATUSES, type WatchOrderOptions, type ReconnectPolicy } from "./watch.js";
