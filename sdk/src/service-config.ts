// The gRPC service config a BFF's channels use: grpc-js retries the reads
// itself, and spreads calls over every address the edge's name resolves to.
import type { ChannelOptions } from "@grpc/grpc-js";

/**
 * Methods grpc-js may send again by itself after UNAVAILABLE: reads, whose
 * repetition changes nothing (GetChallenge makes a new challenge each time,
 * and one whose answer was lost was never shown, so a second is harmless).
 * Never PlaceOrder or another call that changes state: its retry must say
 * retry: true with the same request id (placeOrder does), and
 * IssuePurchaseToken uses up the challenge it answers. WatchOrder reconnects
 * in watchOrder, from the last status it saw.
 */
export const RETRYABLE_READS = {
  "seckill.v1.SaleService": ["GetSale", "ListSales", "GetSaleStatus"],
  "seckill.v1.OrderService": ["GetOrder", "ListOrders"],
  "seckill.v1.AccessService": ["GetChallenge"],
} as const;

/**
 * round_robin: a connection to each address the target resolves to (the
 * edge's DNS name: every Envoy behind it), calls taken in turn, instead of
 * grpc-js's default of one connection to the first address. Reads are retried
 * up to 4 calls in all, 100 ms doubling up to 1 s apart (grpc-js jitters it),
 * within the call's one deadline.
 */
export const SERVICE_CONFIG = {
  loadBalancingConfig: [{ round_robin: {} }],
  methodConfig: [
    {
      name: Object.entries(RETRYABLE_READS).flatMap(([service, methods]) => methods.map((method) => ({ service, method }))),
      retryPolicy: {
        maxAttempts: 4,
        initialBackoff: "0.1s",
        maxBackoff: "1s",
        backoffMultiplier: 2,
        retryableStatusCodes: ["UNAVAILABLE"],
      },
    },
  ],
};

/** Channel options for a client of Seckill Mesh: `new OrderServiceClient(edge, credentials, clientOptions())`. */
export function clientOptions(extra: ChannelOptions = {}): ChannelOptions {
  return { "grpc.service_config": JSON.stringify(SERVICE_CONFIG), "grpc.enable_retries": 1, ...extra };
}
