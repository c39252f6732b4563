// Builds the order writer process: Postgres, the JetStream consumer, the
// writer loop, the dead-letter stream, and a gRPC server that carries
// seckill.v1.DeadLetterService besides health and reflection.
import { untilReachable } from "../../common/startup.js";
import { createDb } from "../../common/db.js";
import { deadLetterNames, ensureDeadLetterStream, ensureWriterConsumer, openEventBus } from "../../common/event-bus.js";
import { serve, type ServingApp } from "../../common/serve.js";
import { metricsFor } from "../../common/metrics.js";
import { poll } from "../../common/poll.js";
import type { Config } from "../../common/config.js";
import type { Logger } from "../../common/log.js";
import { deadLetterPublisher } from "./dead-letter-records.js";
import { deadLetterOps, deadLetterServiceRegistration } from "./dead-letter-service.js";
import { startOrderWriter, type OrderWriter } from "./order-writer.js";

export interface WriterApp extends ServingApp {
  writer: OrderWriter;
}

/** How often the writer consumer's backlog is read for the queue lag gauge. */
export const QUEUE_LAG_POLL_MS = 5000;

export async function startWriter(config: Config, log: Logger): Promise<WriterApp> {
  const metrics = metricsFor(config, "order-writer");
  const db = createDb(config.databaseUrl, Math.max(config.dbPoolMax, config.writerConcurrency + 1), log);
  const startup = { timeoutMs: config.startupTimeoutMs, log };
  const [bus] = await Promise.all([
    untilReachable("nats", () => openEventBus(config.natsUrl, config.namespace, "order-writer", config.publishTimeoutMs, config.jetStreamReplicas), startup),
    untilReachable("postgres", () => db.raw("SELECT 1"), startup),
  ]);
  await ensureWriterConsumer(bus.jsm, bus.names, {
    ackWaitMs: config.writerAckWaitMs,
    maxDeliver: config.writerMaxDeliver,
    maxAckPending: config.writerBatchSize * config.writerConcurrency * 4,
  });
  const dlNames = deadLetterNames(config.namespace);
  await ensureDeadLetterStream(bus.jsm, dlNames, config.jetStreamReplicas);
  const consumer = await bus.js.consumers.get(bus.names.stream, bus.names.writerConsumer);
  const writer = await startOrderWriter({
    db,
    consumer,
    publisher: bus.publisher,
    batchSize: config.writerBatchSize,
    concurrency: config.writerConcurrency,
    lingerMs: config.writerLingerMs,
    log,
    deadLetter: deadLetterPublisher(bus.js, dlNames, config.publishTimeoutMs),
    ackWaitMs: config.writerAckWaitMs,
    maxDeliver: config.writerMaxDeliver,
    metrics: { writer: metrics.writer(), orders: metrics.orders() },
  });
  const lag = poll(
    async () => {
      const info = await bus.jsm.consumers.info(bus.names.stream, bus.names.writerConsumer);
      metrics.writer().queueLag(info.num_pending + info.num_ack_pending);
    },
    QUEUE_LAG_POLL_MS,
    log,
    "writer queue lag not read",
  );
  void lag.run();
  const ops = deadLetterOps({ js: bus.js, jsm: bus.jsm, names: dlNames, events: bus.names, publishTimeoutMs: config.publishTimeoutMs, log });
  const app = await serve({
    config,
    log,
    address: config.writerAddr,
    services: [deadLetterServiceRegistration(ops, config.grpcMaxMessageBytes, log)],
    dependencies: { nats: bus.nc, db },
    metrics,
    drain: () => writer.stop(),
    close: async () => {
      await lag.stop();
      return Promise.allSettled([bus.close(), db.destroy()]);
    },
  });
  return { ...app, writer };
}
