// The order service's view of inventory: the generated InventoryService stub,
// with concurrent purchases merged into batched Reserve calls and a deadline
// on every call, balanced round-robin over every address inventory's name
// resolves to.
import { credentials, status, type ServiceError } from "@grpc/grpc-js";
import { callUnary, InventoryServiceClient, type ReserveItem, type ReserveResult } from "@seckill/sdk";
import { createBatcher } from "../common/batcher.js";
import { tracedBatchCall, tracedCall } from "../common/grpc-tracing.js";
import type { InventoryPort } from "./orders.js";

export interface InventoryClientOptions {
  /** host:port (a name with one address per replica, e.g. a headless Service), or a gRPC target URI. */
  address: string;
  deadlineMs: number;
  maxBatch: number;
  maxMessageBytes: number;
  /** Shortest time between two resolutions of the name; DNS_MIN_INTERVAL_MS unless set. */
  dnsMinIntervalMs?: number;
}

/**
 * Resolutions of inventory's name are at most this often. grpc-js resolves
 * again only when a connection is lost, e.g. at inventory's connection age
 * (GRPC_MAX_CONNECTION_AGE_MS, 30 s); its own default of 30 s would let such a
 * resolution wait up to another age before a new replica is seen.
 */
export const DNS_MIN_INTERVAL_MS = 5000;

/**
 * Every resolved address gets a connection and calls go to them in turn
 * (grpc-js's default, pick_first, would send all of them to one replica). No
 * retry policy: a Reserve is retried by the purchase protocol, with the same
 * request id, not by the channel.
 */
const SERVICE_CONFIG = JSON.stringify({ loadBalancingConfig: [{ round_robin: {} }] });

const TARGET_SCHEME = /^(dns|ipv4|ipv6|unix):/;

/** A host:port through the DNS resolver, which resolves it again when a connection goes away; a gRPC target URI as it is. */
export function inventoryTarget(address: string): string {
  return TARGET_SCHEME.test(address) ? address : `dns:///${address}`;
}

export function createInventoryClient(options: InventoryClientOptions): InventoryPort & { close(): void } {
  const client = new InventoryServiceClient(inventoryTarget(options.address), credentials.createInsecure(), {
    "grpc.max_receive_message_length": options.maxMessageBytes,
    "grpc.max_send_message_length": options.maxMessageBytes,
    "grpc.keepalive_time_ms": 30_000,
    "grpc.keepalive_timeout_ms": 10_000,
    "grpc.service_config": SERVICE_CONFIG,
    // The balancing is ours: a TXT record in inventory's zone does not replace it (nor is one looked up).
    "grpc.service_config_disable_resolution": 1,
    "grpc.dns_min_time_between_resolutions_ms": options.dnsMinIntervalMs ?? DNS_MIN_INTERVAL_MS,
  });
  const deadlineMs = options.deadlineMs;
  const reserveCall = tracedBatchCall<ReserveItem, ReserveResult>(
    "seckill.v1.InventoryService/Reserve",
    async (items, metadata) => (await callUnary(client, "reserve", { items }, { deadlineMs, metadata })).results,
  );
  const reserve = createBatcher<ReserveItem, ReserveResult>({ maxBatch: options.maxBatch, run: reserveCall.run });
  return {
    reserve: (item) => reserve(reserveCall.remember(item)),
    async reservation(reservationId) {
      try {
        return await tracedCall("seckill.v1.InventoryService/GetReservation", (metadata) => callUnary(client, "getReservation", { reservationId }, { deadlineMs, metadata }));
      } catch (error) {
        if ((error as ServiceError).code === status.NOT_FOUND) return undefined;
        throw error;
      }
    },
    close: () => client.close(),
  };
}
