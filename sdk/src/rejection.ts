// Reading a refusal on the client side: the gRPC code plus the machine-readable
// details (google.rpc.Status in the grpc-status-details-bin trailer).
import { Metadata, type status, type ServiceError } from "@grpc/grpc-js";
import { Status } from "./gen/google/rpc/status.js";
import { BadRequest, ErrorInfo, RetryInfo } from "./gen/google/rpc/error_details.js";
import { ERROR_DOMAIN } from "./reasons.js";

export const DETAILS_TRAILER = "grpc-status-details-bin";
const TYPE_PREFIX = "type.googleapis.com/";

export interface Rejection {
  code: status;
  message: string;
  /** ErrorInfo.reason when the server sent one ("SOLD_OUT", ...). */
  reason?: string;
  /** RetryInfo: how long to wait before retrying with the same request id. */
  retryDelayMs?: number;
  /** BadRequest: which fields were wrong. */
  fieldViolations: { field: string; description: string }[];
}

export function rejectionOf(error: Pick<ServiceError, "code" | "details" | "metadata">): Rejection {
  const out: Rejection = { code: error.code, message: error.details, fieldViolations: [] };
  const raw = error.metadata?.get(DETAILS_TRAILER)[0];
  if (!(raw instanceof Buffer)) return out;
  let decoded: Status;
  try {
    decoded = Status.decode(raw);
  } catch {
    return out;
  }
  for (const any of decoded.details) {
    const type = any.typeUrl.startsWith(TYPE_PREFIX) ? any.typeUrl.slice(TYPE_PREFIX.length) : any.typeUrl;
    if (type === "google.rpc.ErrorInfo") {
      const info = ErrorInfo.decode(any.value);
      if (info.domain === ERROR_DOMAIN) out.reason = info.reason;
    } else if (type === "google.rpc.RetryInfo") {
      const delay = RetryInfo.decode(any.value).retryDelay;
      if (delay) out.retryDelayMs = delay.seconds * 1000 + Math.round(delay.nanos / 1e6);
    } else if (type === "google.rpc.BadRequest") {
      out.fieldViolations.push(...BadRequest.decode(any.value).fieldViolations);
    }
  }
  return out;
}

/** Encodes the details trailer for a refusal; servers call this once per distinct refusal. */
export function rejectionMetadata(
  code: status,
  message: string,
  reason: string,
  extra: { retryDelayMs?: number; fieldViolations?: { field: string; description: string }[] } = {},
): Metadata {
  const pack = (type: string, bytes: Uint8Array) => ({ typeUrl: TYPE_PREFIX + type, value: Buffer.from(bytes) });
  const details = [pack("google.rpc.ErrorInfo", ErrorInfo.encode({ reason, domain: ERROR_DOMAIN, metadata: {} }).finish())];
  if (extra.retryDelayMs !== undefined) {
    const ms = extra.retryDelayMs;
    details.push(pack("google.rpc.RetryInfo", RetryInfo.encode({ retryDelay: { seconds: Math.floor(ms / 1000), nanos: (ms % 1000) * 1e6 } }).finish()));
  }
  if (extra.fieldViolations?.length) {
    details.push(pack("google.rpc.BadRequest", BadRequest.encode({ fieldViolations: extra.fieldViolations }).finish()));
  }
  const metadata = new Metadata();
  metadata.set(DETAILS_TRAILER, Buffer.from(Status.encode({ code, message, details }).finish()));
  return metadata;
}
