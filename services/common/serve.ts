// The last step of every service's start: listen, report SERVING while its
// dependencies are connected, and stop in order (NOT_SERVING, drain, close).
import type { NatsConnection } from "@nats-io/transport-node";
import type { RedisClient } from "./redis.js";
import type { Knex } from "knex";
import type { Config } from "./config.js";
import { createDependencyHealth, watchNats, watchPostgres, watchRedis, type HealthDependency } from "./dependency-health.js";
import { startGrpcServer, type ServiceRegistration } from "./grpc-server.js";
import type { Logger } from "./log.js";
import { serveMetrics, type Metrics, type MetricsEndpoint } from "./metrics.js";
import type { RunningService } from "./runner.js";

export interface ServeOptions {
  config: Config;
  log: Logger;
  address: string;
  services: ServiceRegistration[];
  dependencies: { redis?: RedisClient; nats?: NatsConnection; db?: Knex };
  /**
   * Dependencies among those whose loss is logged but leaves the server
   * SERVING: its main path works without them, calls that need them answer
   * UNAVAILABLE (see dependency-health.ts).
   */
  ungated?: HealthDependency[];
  /** Runs alongside the gRPC drain (e.g. a consumer finishing its batches). */
  drain?: () => Promise<void>;
  /** Closes connections and pools once drained. */
  close: () => Promise<unknown>;
  /** The app's metrics: its gRPC calls are counted, and GET /metrics is served on METRICS_ADDR when set. */
  metrics?: Metrics;
  /** Close client connections past GRPC_MAX_CONNECTION_AGE_MS, for a server its clients balance over (see startGrpcServer). */
  ageConnections?: boolean;
}

export interface ServingApp extends RunningService {
  port: number;
  metrics?: Metrics;
  /** Where GET /metrics is served (host:port); undefined when METRICS_ADDR is empty. */
  metricsAddress?: string;
}

export async function serve(options: ServeOptions): Promise<ServingApp> {
  const { config, log, dependencies } = options;
  const grpc = await startGrpcServer({
    address: options.address,
    services: options.services,
    maxMessageBytes: config.grpcMaxMessageBytes,
    maxMetadataBytes: config.grpcMaxMetadataBytes,
    maxInFlight: config.maxInFlight,
    log,
    metrics: options.metrics?.grpc,
    maxConnectionAge: options.ageConnections ? { ageMs: config.grpcMaxConnectionAgeMs, graceMs: config.grpcMaxConnectionAgeGraceMs } : undefined,
  });
  let endpoint: MetricsEndpoint | undefined;
  if (options.metrics && config.metricsAddr !== "") {
    try {
      endpoint = await serveMetrics(options.metrics.registry, config.metricsAddr, log);
    } catch (error) {
      await grpc.shutdown({ drainDelayMs: 0, graceMs: 0 });
      await options.close();
      throw error;
    }
  }
  grpc.setServing(true);
  const health = createDependencyHealth(grpc.setServing, log, new Set(options.ungated));
  if (dependencies.redis) watchRedis(dependencies.redis, health);
  if (dependencies.nats) watchNats(dependencies.nats, health);
  if (dependencies.db) watchPostgres(dependencies.db, health);
  const host = options.address.slice(0, options.address.lastIndexOf(":"));
  return {
    port: grpc.port,
    address: `${host}:${grpc.port}`,
    metrics: options.metrics,
    metricsAddress: endpoint?.address,
    async stop() {
      health.stop();
      await Promise.all([grpc.shutdown({ drainDelayMs: config.drainDelayMs, graceMs: config.shutdownGraceMs }), options.drain?.()]);
      await options.close();
      await endpoint?.close();
    },
  };
}
