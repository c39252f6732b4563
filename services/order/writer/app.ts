// Builds the order writer process: Postgres, the JetStream consumer, the
// writer loop, and a gRPC server that carries only health and reflection.
import { createDb } from "../../common/db.js";
import { createDependencyHealth, watchNats, watchPostgres } from "../../common/dependency-health.js";
import { ensureWriterConsumer, openEventBus } from "../../common/event-bus.js";
import { startGrpcServer } from "../../common/grpc-server.js";
import type { Config } from "../../common/config.js";
import type { Logger } from "../../common/log.js";
import type { RunningService } from "../../common/runner.js";
import { startOrderWriter, type OrderWriter } from "./order-writer.js";

export interface WriterApp extends RunningService {
  port: number;
  writer: OrderWriter;
}

export async function startWriter(config: Config, log: Logger): Promise<WriterApp> {
  const db = createDb(config.databaseUrl, Math.max(config.dbPoolMax, config.writerConcurrency + 1));
  const [bus] = await Promise.all([
    openEventBus(config.natsUrl, config.namespace, "order-writer", config.publishTimeoutMs),
    db.raw("SELECT 1"),
  ]);
  await ensureWriterConsumer(bus.jsm, bus.names, {
    ackWaitMs: config.writerAckWaitMs,
    maxDeliver: config.writerMaxDeliver,
    maxAckPending: config.writerBatchSize * config.writerConcurrency * 4,
  });
  const consumer = await bus.js.consumers.get(bus.names.stream, bus.names.writerConsumer);
  const writer = await startOrderWriter({
    db,
    consumer,
    publisher: bus.publisher,
    batchSize: config.writerBatchSize,
    concurrency: config.writerConcurrency,
    log,
  });
  const grpc = await startGrpcServer({ address: config.writerAddr, services: [], maxMessageBytes: config.grpcMaxMessageBytes, log });
  grpc.setServing(true);
  const health = createDependencyHealth(grpc.setServing, log);
  watchNats(bus.nc, health);
  watchPostgres(db, health);
  const host = config.writerAddr.slice(0, config.writerAddr.lastIndexOf(":"));
  return {
    port: grpc.port,
    address: `${host}:${grpc.port}`,
    writer,
    async stop() {
      health.stop();
      const drained = grpc.shutdown({ drainDelayMs: config.drainDelayMs, graceMs: config.shutdownGraceMs });
      await writer.stop();
      await drained;
      await Promise.allSettled([bus.close(), db.destroy()]);
    },
  };
}
