// The contract between a refusal's reason and its gRPC status code, shared by
// the servers (which send it) and clients (which read it).
import { status } from "@grpc/grpc-js";
import { Reason, reasonToJSON } from "./gen/seckill/v1/reason.js";

/** The ErrorInfo domain of every Seckill Mesh refusal. */
export const ERROR_DOMAIN = "seckill.v1";

/** Reason names as they appear in ErrorInfo.reason ("SOLD_OUT", ...). */
export type ReasonName = Exclude<keyof typeof Reason, "REASON_UNSPECIFIED" | "UNRECOGNIZED"> extends `REASON_${infer N}` ? N : never;

export const REASON_STATUS: Record<ReasonName, status> = {
  SOLD_OUT: status.FAILED_PRECONDITION,
  SALE_NOT_STARTED: status.FAILED_PRECONDITION,
  SALE_ENDED: status.FAILED_PRECONDITION,
  ORDER_NOT_PAYABLE: status.FAILED_PRECONDITION,
  ORDER_NOT_CANCELLABLE: status.FAILED_PRECONDITION,
  SALE_NOT_MODIFIABLE: status.FAILED_PRECONDITION,
  /**
   * The buyer already bought in this sale and their units plus the quantity
   * asked would pass its per-user limit: a smaller quantity may still succeed
   * while they hold fewer units than the limit.
   */
  ALREADY_PURCHASED: status.ALREADY_EXISTS,
  RATE_LIMITED: status.RESOURCE_EXHAUSTED,
  TOO_MANY_WATCHES: status.RESOURCE_EXHAUSTED,
  OVERLOADED: status.UNAVAILABLE,
  UNAUTHENTICATED: status.UNAUTHENTICATED,
  PERMISSION_DENIED: status.PERMISSION_DENIED,
  /**
   * A field is malformed or out of range (a BadRequest names it), e.g. a
   * PlaceOrder quantity above the sale's per-user limit: the request can never
   * succeed as sent, whatever the buyer holds.
   */
  INVALID_ARGUMENT: status.INVALID_ARGUMENT,
  NOT_FOUND: status.NOT_FOUND,
  CHALLENGE_REQUIRED: status.FAILED_PRECONDITION,
  CHALLENGE_FAILED: status.PERMISSION_DENIED,
  NOT_ELIGIBLE: status.PERMISSION_DENIED,
  PURCHASE_TOKEN_INVALID: status.PERMISSION_DENIED,
};

/** "SOLD_OUT" for Reason.REASON_SOLD_OUT; undefined for REASON_UNSPECIFIED. */
export function reasonName(reason: Reason): ReasonName | undefined {
  const name = reasonToJSON(reason).replace(/^REASON_/, "");
  return name in REASON_STATUS ? (name as ReasonName) : undefined;
}

export function reasonFromName(name: ReasonName): Reason {
  return Reason[`REASON_${name}` as keyof typeof Reason] as Reason;
}
