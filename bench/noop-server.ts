// The baseline: a grpc-js server built exactly like the services' (same
// grpc-js, same server options, health and reflection, via startGrpcServer)
// whose PlaceOrder does nothing and answers an empty response. The generator
// sends it the very frames it sends the real order service, so the two rates
// differ only by what the services do.
import type { ServiceDefinition, UntypedServiceImplementation } from "@grpc/grpc-js";
import { OrderServiceService } from "@seckill/sdk";
import { startGrpcServer } from "../services/common/grpc-server.js";
import type { Config } from "../services/common/config.js";
import type { Logger } from "../services/common/log.js";
import type { RunningService } from "../services/common/runner.js";

export async function startNoopServer(address: string, limits: Pick<Config, "grpcMaxMessageBytes" | "maxInFlight">, log: Logger): Promise<RunningService & { port: number }> {
  const definition = { placeOrder: OrderServiceService.placeOrder } as unknown as ServiceDefinition;
  const implementation: UntypedServiceImplementation = {
    placeOrder: (_call: unknown, callback: (error: null, response: object) => void) => callback(null, {}),
  };
  const grpc = await startGrpcServer({
    address,
    services: [{ name: "seckill.v1.OrderService", definition, implementation }],
    maxMessageBytes: limits.grpcMaxMessageBytes,
    maxInFlight: limits.maxInFlight,
    log,
  });
  grpc.setServing(true);
  const host = address.slice(0, address.lastIndexOf(":"));
  return {
    port: grpc.port,
    address: `${host}:${grpc.port}`,
    stop: () => grpc.shutdown({ drainDelayMs: 0, graceMs: 2000 }),
  };
}
