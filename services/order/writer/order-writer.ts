// The order writer: drains reservation events from JetStream into Postgres at
// the rate Postgres takes them (peak shaving). Each message carries the
// reservations of one Reserve call in one sale; messages are gathered into
// batches of up to batchSize reservations, written in one transaction each,
// and acked only after the commit, so a crash before the ack means a
// redelivery, which ON CONFLICT turns into a no-op. Every message it holds
// (buffered, being written, retried while Postgres is slow or down) is
// reported in progress (held-messages.ts). Batch size and concurrency are
// what bound the load on Postgres. What it gives up on (undecodable
// messages, reservations Postgres refuses, messages still failing at their last
// deliveries) is recorded as a DeadLetter, and only then terminated or acked.
import type { Consumer, JsMsg } from "@nats-io/jetstream";
import { OrderStatus, ReservationBatch, type DeadLetter, type ReservationMade } from "@seckill/sdk";
import type { Knex } from "knex";
import type { SpanContext } from "@opentelemetry/api";
import { isPostgresOutage, postgresMessage, postgresRejection } from "../../common/dependency-errors.js";
import { errorMessage } from "../../common/error-message.js";
import type { EventPublisher } from "../../common/event-bus.js";
import { keepConsuming } from "../../common/keep-consuming.js";
import { createLingerBatcher } from "../../common/linger-batcher.js";
import type { Logger } from "../../common/log.js";
import { messageTrace } from "../../common/nats-tracing.js";
import { SpanKind, tracingMode, withBatchSpan } from "../../common/trace-context.js";
import type { OrderMetrics, WriterMetrics } from "../../common/metrics.js";
import { retryUntilStopped, type RetryOutcome } from "../../common/retry.js";
import { existingOrderIds, existingSaleIds, OversellRefused, persistReservations, type InsertedOrder, type ReservationToPersist } from "../order-repository.js";
import { messageDeadLetter, reservationDeadLetter, type DeadLetterRecord } from "./dead-letter-records.js";
import { holdMessages } from "./held-messages.js";

const WRITE_SPAN = { kind: SpanKind.CONSUMER, attributes: { "messaging.system": "nats", "messaging.operation.type": "process", "db.system.name": "postgresql" } };

export interface OrderWriterOptions {
  db: Knex;
  consumer: Consumer;
  publisher: EventPublisher;
  /** Most reservations written in one transaction. */
  batchSize: number;
  concurrency: number;
  /**
   * How long a batch that is not full may wait for more reservations. Fewer,
   * larger transactions cost Postgres and the writer far less per order, which
   * leaves the CPU to the purchase path during a sale.
   */
  lingerMs?: number;
  log: Logger;
  /** First delay before a failed batch is written again; doubles up to maxRetryDelayMs. */
  retryDelayMs?: number;
  maxRetryDelayMs?: number;
  /** Publishes a dead letter with this Nats-Msg-Id; resolves after the PubAck. */
  deadLetter: (letter: DeadLetter, msgID: string) => Promise<unknown>;
  /**
   * The consumer's AckWait. Every message held is reported in progress
   * (`working()`) every third of it, however long its write takes.
   */
  ackWaitMs: number;
  /**
   * The consumer's MaxDeliver. A message still failing for a reason that is not
   * an outage at delivery MaxDeliver - 1 is dead-lettered and terminated.
   */
  maxDeliver: number;
  /** Batch sizes, commit times, dead letters, and the orders created. */
  metrics?: { writer: WriterMetrics; orders: OrderMetrics };
}

export interface OrderWriterStats {
  /** Transactions committed. */
  batches: number;
  /** Orders inserted. */
  persisted: number;
  /** Reservations already stored (redeliveries, replays). */
  duplicates: number;
  /** Messages that could not be decoded, and reservations Postgres refused. */
  poison: number;
  /** Failed attempts to write a batch or record dead letters (each retried). */
  failures: number;
  /** Dead letters recorded. */
  deadLettered: number;
}

export interface OrderWriter {
  stats: OrderWriterStats;
  /** Stops pulling, finishes the batches in flight; unacked events stay in JetStream. */
  stop(): Promise<void>;
}

/** A delivered message and the reservations it carries. */
interface Delivery {
  msg: JsMsg;
  reservations: ReservationToPersist[];
  /** Reservations refused before any write (incomplete): recorded before the ack. */
  rejected: { reservation: ReservationMade; reason: string }[];
  /** The trace the message was published in (nats-tracing.ts). */
  trace: SpanContext | undefined;
}

/** Why Postgres (or the oversell guard) refused one reservation, for its dead letter. */
function rejectionReason(error: unknown): string {
  if (error instanceof OversellRefused) return error.message;
  const { code, constraint } = error as { code?: string; constraint?: string };
  return postgresRejection(error) === "data" ? `refused by Postgres: ${postgresMessage(error)} (SQLSTATE ${code})` : `refused by Postgres constraint ${constraint ?? "(unknown)"}`;
}

/** The sale and the first order ids of a message, for the lines logged about it. */
const idsOfDelivery = (d: Delivery) => ({ saleId: d.reservations[0]?.saleId, orderIds: d.reservations.slice(0, 10).map((r) => r.reservationId) });

const isComplete = (r: ReservationMade): r is ReservationMade & { reservedAt: Date } => Boolean(r.reservationId && r.saleId && r.userId && r.quantity >= 1 && r.reservedAt);

export async function startOrderWriter(opts: OrderWriterOptions): Promise<OrderWriter> {
  const { db, log, metrics } = opts;
  const retryDelayMs = opts.retryDelayMs ?? 250;
  const maxRetryDelayMs = opts.maxRetryDelayMs ?? 5000;
  const stats: OrderWriterStats = { batches: 0, persisted: 0, duplicates: 0, poison: 0, failures: 0, deadLettered: 0 };
  /** Dead letters being recorded for messages outside a batch (undecodable ones). */
  const recording = new Set<Promise<unknown>>();
  let stopped = false;
  const held = holdMessages(opts.ackWaitMs);
  /** How a failed step waits before it is tried again, until the writer stops. */
  const backoff = { delayMs: retryDelayMs, maxDelayMs: maxRetryDelayMs, stopped: () => stopped };

  /** Counts and logs a reservation that will not be written (its dead letter is recorded with its message). */
  const logUnwritable = (r: ReservationToPersist, reason: string) => {
    stats.poison++;
    log.error("reservation refused; not written", { reservationId: r.reservationId, saleId: r.saleId, userId: r.userId, requestId: r.requestId, reason });
  };

  /**
   * Records dead letters, retrying until JetStream acknowledges them all (the
   * messages stay held meanwhile). false when the writer stopped first (the
   * messages are handed back).
   */
  async function record(letters: DeadLetterRecord[], msgs: JsMsg[]): Promise<boolean> {
    if (letters.length === 0) return true;
    const outcome = await retryUntilStopped(
      // The Nats-Msg-Id makes a retry or a redelivery record each letter once.
      () => Promise.all(letters.map((l) => opts.deadLetter(l.letter, l.msgID))),
      {
        ...backoff,
        onRetry: (error, retryInMs) => {
          stats.failures++;
          log.warn("dead letters not recorded; retrying", { count: letters.length, retryInMs, err: errorMessage(error) });
        },
      },
    );
    if (!outcome.done) {
      for (const m of msgs) held.nak(m);
      return false;
    }
    stats.deadLettered += letters.length;
    if (metrics) for (const l of letters) metrics.writer.deadLetters(l.kind, 1);
    return true;
  }

  /** Decodes a delivery; a message that is not a ReservationBatch is recorded, then terminated. */
  function decode(msg: JsMsg): Delivery | undefined {
    let batch: ReservationBatch;
    try {
      batch = ReservationBatch.decode(msg.data);
    } catch {
      batch = { reservations: [] };
    }
    if (batch.reservations.length === 0) {
      stats.poison++;
      log.error("undecodable reservation message dead-lettered", { subject: msg.subject, seq: msg.seq });
      const recorded = record([messageDeadLetter(msg, "undecodable message: not a ReservationBatch with reservations", "undecodable")], [msg]).then((ok) => {
        // No reason on the wire: older servers (2.9, as Debian ships) ignore
        // "+TERM <reason>", so the message stayed pending and was redelivered.
        if (ok) held.term(msg);
      });
      recording.add(recorded);
      void recorded.finally(() => recording.delete(recorded));
      return undefined;
    }
    const reservations: ReservationToPersist[] = [];
    const rejected: Delivery["rejected"] = [];
    for (const r of batch.reservations) {
      if (isComplete(r)) reservations.push(r);
      else {
        logUnwritable(r as ReservationToPersist, "incomplete reservation");
        rejected.push({ reservation: r, reason: "incomplete reservation: no reservation id, sale, user, quantity or time" });
      }
    }
    return { msg, reservations, rejected, trace: messageTrace(msg) };
  }

  /** Writes reservations in one transaction; on a constraint refusal, isolates the refused ones by halving. */
  async function write(items: ReservationToPersist[], refused: Map<ReservationToPersist, string>): Promise<InsertedOrder[]> {
    if (items.length === 0) return [];
    try {
      const started = performance.now();
      const inserted = await db.transaction((trx) => persistReservations(trx, items));
      metrics?.writer.commit((performance.now() - started) / 1000);
      return inserted;
    } catch (error) {
      // A constraint or a value Postgres cannot take (e.g. a NUL byte in a user
      // id): something about the events, not an outage.
      if (!(error instanceof OversellRefused) && !postgresRejection(error)) throw error;
      if (items.length === 1) {
        const reason = rejectionReason(error);
        logUnwritable(items[0], reason);
        refused.set(items[0], reason);
        return [];
      }
      const mid = Math.ceil(items.length / 2);
      return [...(await write(items.slice(0, mid), refused)), ...(await write(items.slice(mid), refused))];
    }
  }

  async function flush(deliveries: Delivery[]): Promise<void> {
    const seen = new Set<string>();
    const items: ReservationToPersist[] = [];
    /** The message each reservation is written for. */
    const owner = new Map<ReservationToPersist, JsMsg>();
    for (const d of deliveries) {
      for (const r of d.reservations) {
        if (seen.has(r.reservationId)) continue;
        seen.add(r.reservationId);
        items.push(r);
        owner.set(r, d.msg);
      }
    }
    const started = performance.now();
    const refused = new Map<ReservationToPersist, string>();
    let written: RetryOutcome<InsertedOrder[]>;
    try {
      // Postgres down or slow: keep the batch and try again; the heartbeat tells
      // JetStream we are still working on it. Nak'ing would count a delivery each
      // time and an outage longer than MaxDeliver attempts would drop acknowledged orders.
      written = await retryUntilStopped(
        () =>
          write(
            items.filter((r) => !refused.has(r)),
            refused,
          ),
        {
          ...backoff,
          retryable: isPostgresOutage,
          onRetry: (error, retryInMs) => {
            stats.failures++;
            log.warn("batch not written; retrying", { size: items.length, retryInMs, err: errorMessage(error) });
          },
        },
      );
    } catch (error) {
      return failedForGood(deliveries, error);
    }
    if (!written.done) {
      // Hand the events back; another writer (or this one, restarted) takes them.
      for (const d of deliveries) held.nak(d.msg);
      return;
    }
    const inserted = written.value;
    // Reservations neither inserted now nor stored before name a sale that does
    // not exist, or were refused by a unique key other than the order id (a
    // second reservation for one request).
    const insertedIds = new Set(inserted.map((r) => r.id));
    const others = items.filter((r) => !refused.has(r) && !insertedIds.has(r.reservationId));
    const stored =
      others.length > 0
        ? await existingOrderIds(
            db,
            others.map((r) => r.reservationId),
          )
        : new Set<string>();
    const missing = others.filter((r) => !stored.has(r.reservationId));
    const sales =
      missing.length > 0
        ? await existingSaleIds(
            db,
            missing.map((r) => r.saleId),
          )
        : new Set<string>();
    for (const r of missing) {
      const reason = sales.has(r.saleId) ? "a different order already exists for this user and request id" : `unknown sale ${r.saleId}`;
      logUnwritable(r, reason);
      refused.set(r, reason);
    }
    // Every refused reservation is on record before its message is acked.
    const letters = [
      ...deliveries.flatMap((d) => d.rejected.map((x) => reservationDeadLetter(d.msg, x.reservation, x.reason, "incomplete"))),
      ...[...refused].map(([r, reason]) => reservationDeadLetter(owner.get(r)!, r, reason, "refused")),
    ];
    const messages = deliveries.map((d) => d.msg);
    if (!(await record(letters, messages))) return;
    for (const d of deliveries) held.ack(d.msg);
    stats.batches++;
    stats.persisted += inserted.length;
    stats.duplicates += stored.size;
    if (metrics) {
      metrics.writer.batch(items.length);
      if (inserted.length > 0) metrics.orders.transitioned("created", inserted.length);
    }
    log.debug("batch written", { size: items.length, inserted: inserted.length, ms: Math.round(performance.now() - started) });
    const committedAt = new Date();
    opts.publisher.orderStatusChanged(
      inserted.map((row) => ({
        orderId: row.id,
        saleId: row.sale_id,
        userId: row.user_id,
        status: OrderStatus.ORDER_STATUS_CREATED,
        changedAt: committedAt,
      })),
    );
  }

  /**
   * A batch failed for a reason that is not an outage. Several messages: each
   * is written on its own, so one bad message does not hold back the others.
   * One message: tried again later (a delivery spent) until its delivery
   * MaxDeliver - 1, where it is dead-lettered and terminated.
   */
  async function failedForGood(deliveries: Delivery[], error: unknown): Promise<void> {
    stats.failures++;
    const err = postgresMessage(error);
    if (deliveries.length > 1) {
      log.warn("batch failed; writing its messages one by one", { messages: deliveries.length, err });
      for (const d of deliveries) await flush([d]);
      return;
    }
    const [d] = deliveries;
    const count = d.msg.info.deliveryCount;
    if (count >= opts.maxDeliver - 1) {
      stats.poison++;
      log.error("message still failing at its last deliveries; dead-lettered", { seq: d.msg.seq, deliveries: count, ...idsOfDelivery(d), err });
      const code = (error as { code?: string }).code;
      const reason = `still failing after ${count} deliveries: ${err}${code ? ` (${code})` : ""}`;
      const letters = [...d.rejected.map((x) => reservationDeadLetter(d.msg, x.reservation, x.reason, "incomplete")), messageDeadLetter(d.msg, reason, "max_deliveries")];
      if (await record(letters, [d.msg])) held.term(d.msg);
      return;
    }
    const delay = Math.min(retryDelayMs * 2 ** count, maxRetryDelayMs);
    log.warn("message failed; redelivering later", { seq: d.msg.seq, deliveries: count, retryInMs: delay, ...idsOfDelivery(d), err });
    held.nak(d.msg, delay);
  }

  /** A batch written in a span under its first message's trace, linked to the others' (several purchases share a transaction). */
  const traced = (batch: Delivery[]) =>
    tracingMode() === "off"
      ? flush(batch)
      : withBatchSpan(
          "write orders",
          batch.map((d) => d.trace),
          WRITE_SPAN,
          () => flush(batch),
        );

  const batches = createLingerBatcher<Delivery>({
    maxSize: opts.batchSize,
    maxConcurrent: opts.concurrency,
    lingerMs: opts.lingerMs ?? 0,
    sizeOf: (d) => d.reservations.length,
    run: (batch) =>
      traced(batch).catch((error) => {
        log.error("writer batch crashed", { err: error instanceof Error ? error : String(error) });
        // Not kept alive any longer: JetStream delivers them again.
        for (const d of batch) if (held.has(d.msg)) held.nak(d.msg);
      }),
  });

  const consumption = await keepConsuming({
    consumer: opts.consumer,
    name: "order writer",
    maxMessages: opts.concurrency * 64,
    log,
    callback: (msg) => {
      if (stopped) return msg.nak(); // handed back at once
      held.hold(msg);
      const delivery = decode(msg);
      if (delivery) batches.add(delivery);
    },
  });

  return {
    stats,
    async stop() {
      stopped = true;
      batches.cancelLinger();
      await consumption.stop();
      // Buffered but unwritten events: hand them back at once.
      for (const d of batches.takeWaiting()) held.nak(d.msg);
      await batches.idle();
      await Promise.allSettled([...recording]);
      held.stop();
    },
  };
}
