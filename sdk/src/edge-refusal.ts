// Telling the edge's (Envoy's) own refusals apart from the services'. Envoy
// answers in a service's place when its limits or its purchase-token check
// refuse a call, or when it cannot reach the service; as a grpc-js client
// receives them from Envoy 1.40 with the generated edge configuration:
//
//   token bucket   RESOURCE_EXHAUSTED "local_rate_limited", header x-seckill-limited: edge
//   global limit   RESOURCE_EXHAUSTED "", header x-envoy-ratelimited: true (and
//                  ratelimit-limit / -remaining / -reset)
//   token check    UNAUTHENTICATED "Jwt is missing", "Jwt verification fails", ... with
//                  www-authenticate: Bearer realm="..."
//   connection     UNAVAILABLE without a service's reason: grpc-js's own "No connection
//                  established" (refused, or closed by the listener's connection limit),
//                  a dropped or reset connection, or Envoy's "upstream connect error or
//                  disconnect/reset before headers" when it cannot reach the service (not
//                  its "upstream request timeout": the service had the call, the answer
//                  was lost)
//
// A service's own refusals carry a google.rpc.ErrorInfo reason and are never the edge's.
import { status, type Metadata } from "@grpc/grpc-js";
import { rejectionOf } from "./rejection.js";

/** The header the edge's PlaceOrder token bucket adds to its refusals. */
export const EDGE_LIMITED_HEADER = { name: "x-seckill-limited", value: "edge" } as const;
/** The header Envoy's ratelimit filter adds to a refusal by the global rate limit service. */
export const GLOBAL_LIMITED_HEADER = { name: "x-envoy-ratelimited", value: "true" } as const;

export const EDGE_REFUSALS = ["tokenBucket", "globalLimit", "tokenCheck", "connection"] as const;
export type EdgeRefusal = (typeof EDGE_REFUSALS)[number];

/** A grpc-js ServiceError, or anything shaped like one. */
export interface GrpcErrorLike {
  code: number;
  details: string;
  metadata?: Pick<Metadata, "get"> & Partial<Pick<Metadata, "getMap">>;
}

const header = (error: GrpcErrorLike, name: string): string | undefined => {
  const value = error.metadata?.get(name)[0];
  return value === undefined ? undefined : String(value);
};

/**
 * Which refusal of the edge an error of a call made through it is, or
 * undefined when it is a service's own answer (or not a refusal).
 */
export function edgeRefusalOf(error: GrpcErrorLike): EdgeRefusal | undefined {
  // A service's answer names its reason; Envoy's own replies never carry one.
  if (rejectionOf({ code: error.code, details: error.details, metadata: error.metadata as Metadata }).reason !== undefined) return undefined;
  switch (error.code) {
    case status.RESOURCE_EXHAUSTED:
      if (header(error, EDGE_LIMITED_HEADER.name) === EDGE_LIMITED_HEADER.value) return "tokenBucket";
      if (header(error, GLOBAL_LIMITED_HEADER.name) !== undefined) return "globalLimit";
      return undefined;
    case status.UNAUTHENTICATED:
      return header(error, "www-authenticate")?.startsWith("Bearer") || /^Jwt /.test(error.details) ? "tokenCheck" : undefined;
    case status.UNAVAILABLE:
      // The route timeout: the service had the call and did not answer in time. A lost answer, not a refusal.
      return /^upstream request timeout/.test(error.details) ? undefined : "connection";
    default:
      return undefined;
  }
}
