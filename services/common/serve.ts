// The last step of every service's start: listen, report SERVING while its
// dependencies are connected, and stop in order (NOT_SERVING, drain, close).
import type { NatsConnection } from "@nats-io/transport-node";
import type { Redis } from "ioredis";
import type { Knex } from "knex";
import type { Config } from "./config.js";
import { createDependencyHealth, watchNats, watchPostgres, watchRedis } from "./dependency-health.js";
import { startGrpcServer, type ServiceRegistration } from "./grpc-server.js";
import type { Logger } from "./log.js";
import type { RunningService } from "./runner.js";

export interface ServeOptions {
  config: Config;
  log: Logger;
  address: string;
  services: ServiceRegistration[];
  dependencies: { redis?: Redis; nats?: NatsConnection; db?: Knex };
  /** Runs alongside the gRPC drain (e.g. a consumer finishing its batches). */
  drain?: () => Promise<void>;
  /** Closes connections and pools once drained. */
  close: () => Promise<unknown>;
}

export interface ServingApp extends RunningService {
  port: number;
}

export async function serve(options: ServeOptions): Promise<ServingApp> {
  const { config, log, dependencies } = options;
  const grpc = await startGrpcServer({
    address: options.address,
    services: options.services,
    maxMessageBytes: config.grpcMaxMessageBytes,
    maxInFlight: config.maxInFlight,
    log,
  });
  grpc.setServing(true);
  const health = createDependencyHealth(grpc.setServing, log);
  if (dependencies.redis) watchRedis(dependencies.redis, health);
  if (dependencies.nats) watchNats(dependencies.nats, health);
  if (dependencies.db) watchPostgres(dependencies.db, health);
  const host = options.address.slice(0, options.address.lastIndexOf(":"));
  return {
    port: grpc.port,
    address: `${host}:${grpc.port}`,
    async stop() {
      health.stop();
      await Promise.all([
        grpc.shutdown({ drainDelayMs: config.drainDelayMs, graceMs: config.shutdownGraceMs }),
        options.drain?.(),
      ]);
      await options.close();
    },
  };
}
