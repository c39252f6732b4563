// The single place that maps errors to gRPC statuses. Refusals keep their
// reason and details; anything else becomes INTERNAL with a generic message
// (and is logged), so internals never leak to clients.
import { status, type Metadata, type ServiceError } from "@grpc/grpc-js";
import { REASON_STATUS, rejectionMetadata, type ReasonName } from "@seckill/sdk";
import { Refusal } from "./refusal.js";
import { fieldsOf, type LogFields, type Logger } from "./log.js";
import { errorMessage } from "./error-message.js";
import { isDependencyFailure } from "./dependency-errors.js";

export interface StatusObject {
  code: status;
  details: string;
  metadata: Metadata;
  /** The refusal's reason (not sent: grpc-js reads code, details and metadata): what the server counts rejections by. */
  reason?: ReasonName;
}

// Refusals repeat (every loser of a sale gets the same SOLD_OUT): encode each
// distinct one once. Bounded so that messages carrying values cannot grow it.
const cache = new Map<string, Metadata>();
const CACHE_MAX = 1024;

export function refusalStatus(refusal: Refusal): StatusObject {
  const code = REASON_STATUS[refusal.reason];
  const plain = !refusal.extra.fieldViolations && refusal.extra.retryDelayMs === undefined;
  const key = `${refusal.reason}\u0000${refusal.message}`;
  let metadata = plain ? cache.get(key) : undefined;
  if (!metadata) {
    metadata = rejectionMetadata(code, refusal.message, refusal.reason, refusal.extra);
    if (plain && cache.size < CACHE_MAX) cache.set(key, metadata);
  }
  // grpc-js may add to the trailers it is given: hand it a copy.
  return { code, details: refusal.message, metadata: metadata.clone(), reason: refusal.reason };
}

const DEPENDENCY_DOWN = new Refusal("OVERLOADED", "a dependency is unavailable; retry with the same request id", { retryDelayMs: 500 });

/** The status a call that failed with `error` answers. `context`: the fields logged with the call (built only when a line is written: refusals log at debug). */
export function errorStatus(error: unknown, log: Logger, context: LogFields = {}): StatusObject | Partial<ServiceError> {
  if (error instanceof Refusal) {
    log.debug("call refused", () => ({ ...fieldsOf(context), reason: error.reason, details: error.message }));
    return refusalStatus(error);
  }
  if (isDependencyFailure(error)) {
    log.warn("dependency failure", { ...fieldsOf(context), err: errorMessage(error) });
    return refusalStatus(DEPENDENCY_DOWN);
  }
  const grpcError = error as Partial<ServiceError>;
  // A status from a downstream call: pass UNAVAILABLE-like failures on as OVERLOADED
  // so the client retries with the same request id; keep the rest generic.
  if (typeof grpcError?.code === "number" && (grpcError.code === status.UNAVAILABLE || grpcError.code === status.DEADLINE_EXCEEDED)) {
    return refusalStatus(new Refusal("OVERLOADED", "a dependency did not answer in time; retry with the same request id", { retryDelayMs: 200 }));
  }
  log.error("unexpected error", { ...fieldsOf(context), err: error instanceof Error ? error : String(error) });
  return { code: status.INTERNAL, details: "internal error" };
}
