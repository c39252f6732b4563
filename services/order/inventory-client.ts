// The order service's view of inventory: the generated InventoryService stub,
// with concurrent purchases merged into batched Reserve calls and a deadline
// on every call.
import { credentials, status, type ServiceError } from "@grpc/grpc-js";
import { callUnary, InventoryServiceClient, type ReserveItem, type ReserveResult } from "@seckill/sdk";
import { createBatcher } from "../common/batcher.js";
import type { InventoryPort } from "./orders.js";

export interface InventoryClientOptions {
  address: string;
  deadlineMs: number;
  maxBatch: number;
  maxMessageBytes: number;
}

export function createInventoryClient(options: InventoryClientOptions): InventoryPort & { close(): void } {
  const client = new InventoryServiceClient(options.address, credentials.createInsecure(), {
    "grpc.max_receive_message_length": options.maxMessageBytes,
    "grpc.max_send_message_length": options.maxMessageBytes,
    "grpc.keepalive_time_ms": 30_000,
    "grpc.keepalive_timeout_ms": 10_000,
  });
  const deadlineMs = options.deadlineMs;
  const reserve = createBatcher<ReserveItem, ReserveResult>({
    maxBatch: options.maxBatch,
    run: async (items) => (await callUnary(client, "reserve", { items }, { deadlineMs })).results,
  });
  return {
    reserve,
    async reservation(reservationId) {
      try {
        return await callUnary(client, "getReservation", { reservationId }, { deadlineMs });
      } catch (error) {
        if ((error as ServiceError).code === status.NOT_FOUND) return undefined;
        throw error;
      }
    },
    close: () => client.close(),
  };
}
