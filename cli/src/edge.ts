// The edge (Envoy) as the CLI sees it: which calls a buyer's BFF sends through
// it, and what is wrong with it when it does not answer. Reading Envoy's own
// refusals apart from the services' (edgeRefusalOf) is the SDK's: a BFF
// behind the edge needs it too.
import { status } from "@grpc/grpc-js";
import { rejectionOf, type EdgeRefusal, type GrpcErrorLike } from "@seckill/sdk";
import type { Metadata } from "@grpc/grpc-js";

/** Where `npm start` runs the edge (envoy/src/topology.ts LOCAL_TOPOLOGY's listener, h2c). */
export const DEFAULT_EDGE_ADDRESS = "127.0.0.1:8080";

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
export const answered = (error: GrpcErrorLike): boolean => Object.keys(error.metadata?.getMap?.() ?? {}).length > 0;

/** What is wrong with the edge, judging by its answer to a probe routed to `behind`; undefined when that answered. */
export function edgeProblem(address: string, behind: string, error: unknown): string | undefined {
  if (error === undefined) return undefined;
  const e = error as GrpcErrorLike;
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
