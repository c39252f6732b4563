// The edge (Envoy) as the CLI sees it: which calls a buyer's BFF sends through
// it, and what Envoy answers in a service's place. The kinds are read from the
// answers of a real Envoy 1.40 with the generated edge configuration
// (envoy/src), as a grpc-js client receives them:
//
//   token bucket   RESOURCE_EXHAUSTED "local_rate_limited", header x-seckill-limited: edge
//                  (local_ratelimit on the PlaceOrder route; its response_headers_to_add)
//   global limit   RESOURCE_EXHAUSTED "", header x-envoy-ratelimited: true (sent by the
//                  ratelimit filter although the router suppresses Envoy's headers) and the
//                  gateway's ratelimit-limit / -remaining / -reset
//   token check    UNAUTHENTICATED "Jwt is missing", "Jwt verification fails", ... with
//                  www-authenticate: Bearer realm="..." (jwt_authn)
//   connection     UNAVAILABLE without a service's reason: grpc-js's own "No connection
//                  established" (refused, or closed by the listener's connection limit:
//                  no metadata at all), a dropped or reset connection, or Envoy's
//                  "upstream connect error or disconnect/reset before headers" when it
//                  cannot reach the service (not its "upstream request timeout": the
//                  service had the call, the answer was lost)
//
// A service's own refusals carry a google.rpc.ErrorInfo reason (RATE_LIMITED,
// OVERLOADED, PURCHASE_TOKEN_INVALID, ...) and are never counted as the edge's.
import { status } from "@grpc/grpc-js";
import { rejectionOf } from "@seckill/sdk";
import type { Metadata } from "@grpc/grpc-js";

/** Where `npm start` runs the edge (envoy/src/topology.ts LOCAL_TOPOLOGY's listener, h2c). */
export const DEFAULT_EDGE_ADDRESS = "127.0.0.1:8080";

/** The header the PlaceOrder token bucket adds to its refusals (envoy/src/routes.ts). */
export const EDGE_LIMITED_HEADER = { name: "x-seckill-limited", value: "edge" } as const;
/** The header Envoy's ratelimit filter adds to a refusal by the global RateLimitService. */
export const GLOBAL_LIMITED_HEADER = { name: "x-envoy-ratelimited", value: "true" } as const;

export const EDGE_REFUSALS = ["tokenBucket", "globalLimit", "tokenCheck", "connection"] as const;
export type EdgeRefusal = (typeof EDGE_REFUSALS)[number];

export const EDGE_REFUSAL_LABELS: Record<EdgeRefusal, string> = {
  tokenBucket: "token bucket",
  globalLimit: "global limit",
  tokenCheck: "token check",
  connection: "connection",
};

/**
 * The gRPC methods `seckill simulate` sends as a buyer's BFF would, through the
 * edge (each one is routed by envoy/src/routes.ts EDGE_METHODS; a test checks).
 */
export const BUYER_METHODS = [
  "/seckill.v1.SaleService/GetSaleStatus",
  "/seckill.v1.AccessService/IssuePurchaseToken",
  "/seckill.v1.OrderService/PlaceOrder",
  "/seckill.v1.OrderService/WatchOrder",
  "/seckill.v1.OrderService/GetOrder",
] as const;

/**
 * The methods simulate always sends to the services themselves: CreateSale
 * (an operator call the edge does not route), and the reads by which it
 * checks the result (GetSaleStatus for the opening, GetSale for Postgres's
 * count, ListOrders of the winners), so that the verdict never depends on the
 * limits of the edge it measures.
 */
export const DIRECT_METHODS = [
  "/seckill.v1.SaleService/CreateSale",
  "/seckill.v1.SaleService/GetSaleStatus",
  "/seckill.v1.SaleService/GetSale",
  "/seckill.v1.OrderService/ListOrders",
] as const;

interface ErrorLike {
  code: number;
  details: string;
  metadata?: Pick<Metadata, "get"> & Partial<Pick<Metadata, "getMap">>;
}

const header = (e: ErrorLike, name: string): string | undefined => {
  const value = e.metadata?.get(name)[0];
  return value === undefined ? undefined : String(value);
};

/**
 * Which refusal of the edge an error of a call made through it is, or
 * undefined when it is a service's own answer (or not a refusal).
 */
export function edgeRefusalOf(error: ErrorLike): EdgeRefusal | undefined {
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

/**
 * A connection refusal's message with what varies from one to the next taken
 * out (grpc-js's timestamps and resolution note), so that refusals of one
 * cause count together: "No connection established. Last error: Failed to
 * connect", "upstream connect error or disconnect/reset before headers. reset
 * reason: overflow" (Envoy: a circuit breaker of the cluster is full).
 */
export function connectionCause(details: string): string {
  const cause = details
    .replace(/\s*\(\d{4}-\d\d-\d\dT[^)]*\)/g, "")
    .replace(/\.?\s*Resolution note:.*$/s, "")
    .trim();
  return (cause || "(no message)").slice(0, 120);
}

/**
 * Whether Envoy (or anything) answered at all: grpc-js's errors for a
 * connection that never carried a response have no metadata; every answer
 * from Envoy has at least content-type.
 */
export const answered = (error: ErrorLike): boolean => Object.keys(error.metadata?.getMap?.() ?? {}).length > 0;

/** What is wrong with the edge, judging by its answer to a probe routed to `behind`; undefined when that answered. */
export function edgeProblem(address: string, behind: string, error: unknown): string | undefined {
  if (error === undefined) return undefined;
  const e = error as ErrorLike;
  if (typeof e?.code !== "number") return `the edge at ${address} failed: ${String(error)}`;
  const refusal = rejectionOf({ code: e.code, details: e.details, metadata: e.metadata as Metadata });
  if (e.code === status.UNAVAILABLE && refusal.reason === "OVERLOADED") {
    return `${behind} behind the edge at ${address} answers but a dependency is down (${refusal.message}) — check Redis, NATS and Postgres`;
  }
  if ((e.code === status.UNAVAILABLE || e.code === status.DEADLINE_EXCEEDED) && !answered(e)) {
    return (
      `cannot reach the edge (Envoy) at ${address} — is it running? npm start runs it in front of the services when it finds Envoy ` +
      `(npm run envoy:install); or point --edge at it, or call the services directly: seckill simulate --direct`
    );
  }
  if (e.code === status.UNAVAILABLE) {
    return `the edge at ${address} answers but cannot reach ${behind} behind it (${e.details}) — is the whole backend running? start it with: npm start`;
  }
  if (e.code === status.UNIMPLEMENTED) return `${address} does not route calls to ${behind} — is --edge the address of the Seckill edge?`;
  return undefined;
}
