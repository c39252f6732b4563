// The order writer: drains reservation events from JetStream into Postgres at
// the rate Postgres takes them (peak shaving). Each message carries the
// reservations of one Reserve call in one sale; messages are gathered into
// batches of up to batchSize reservations, written in one transaction each,
// and acked only after the commit, so a crash before the ack means a
// redelivery, which ON CONFLICT turns into a no-op. Batch size and concurrency
// are what bound the load on Postgres.
import type { Consumer, ConsumerMessages, JsMsg } from "@nats-io/jetstream";
import { OrderStatus, ReservationBatch, type ReservationMade } from "@seckill/sdk";
import type { Knex } from "knex";
import type { EventPublisher } from "../../common/event-bus.js";
import type { Logger } from "../../common/log.js";
import {
  existingOrderIds,
  existingSaleIds,
  OversellRefused,
  persistReservations,
  type InsertedOrder,
  type ReservationToPersist,
} from "../order-repository.js";

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
  /** Failed attempts to write a batch (each retried). */
  failures: number;
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
}

const isComplete = (r: ReservationMade): r is ReservationMade & { reservedAt: Date } =>
  Boolean(r.reservationId && r.saleId && r.userId && r.quantity >= 1 && r.reservedAt);

export async function startOrderWriter(opts: OrderWriterOptions): Promise<OrderWriter> {
  const { db, log } = opts;
  const retryDelayMs = opts.retryDelayMs ?? 250;
  const maxRetryDelayMs = opts.maxRetryDelayMs ?? 5000;
  const stats: OrderWriterStats = { batches: 0, persisted: 0, duplicates: 0, poison: 0, failures: 0 };
  const buffer: Delivery[] = [];
  let inFlight = 0;
  let scheduled = false;
  let stopped = false;
  const idle: (() => void)[] = [];

  const refuseReservation = (r: ReservationToPersist, reason: string) => {
    stats.poison++;
    log.error("reservation refused; not written", { reservationId: r.reservationId, saleId: r.saleId, userId: r.userId, reason });
  };

  /** Decodes a delivery; a message that is not a ReservationBatch is terminated. */
  function decode(msg: JsMsg): Delivery | undefined {
    let batch: ReservationBatch;
    try {
      batch = ReservationBatch.decode(msg.data);
    } catch {
      batch = { reservations: [] };
    }
    if (batch.reservations.length === 0) {
      stats.poison++;
      log.error("undecodable reservation message terminated", { subject: msg.subject, seq: msg.seq });
      // No reason on the wire: older servers (2.9, as Debian ships) ignore
      // "+TERM <reason>", so the message stayed pending and was redelivered.
      msg.term();
      return undefined;
    }
    const reservations: ReservationToPersist[] = [];
    for (const r of batch.reservations) {
      if (isComplete(r)) reservations.push(r);
      else refuseReservation(r as ReservationToPersist, "incomplete reservation");
    }
    return { msg, reservations };
  }

  /** Writes reservations in one transaction; on a constraint refusal, isolates the refused ones by halving. */
  async function write(items: ReservationToPersist[], refused: Set<ReservationToPersist>): Promise<InsertedOrder[]> {
    if (items.length === 0) return [];
    try {
      return await db.transaction((trx) => persistReservations(trx, items));
    } catch (error) {
      const constraint = error instanceof OversellRefused || /^23/.test((error as { code?: string }).code ?? "");
      if (!constraint) throw error;
      if (items.length === 1) {
        const name = (error as { constraint?: string }).constraint;
        refuseReservation(items[0], error instanceof OversellRefused ? error.message : `refused by Postgres constraint ${name ?? "(unknown)"}`);
        refused.add(items[0]);
        return [];
      }
      const mid = Math.ceil(items.length / 2);
      return [...(await write(items.slice(0, mid), refused)), ...(await write(items.slice(mid), refused))];
    }
  }

  async function flush(deliveries: Delivery[]): Promise<void> {
    const seen = new Set<string>();
    const items: ReservationToPersist[] = [];
    for (const d of deliveries) {
      for (const r of d.reservations) {
        if (seen.has(r.reservationId)) continue;
        seen.add(r.reservationId);
        items.push(r);
      }
    }
    const started = performance.now();
    const refused = new Set<ReservationToPersist>();
    let inserted: InsertedOrder[] | undefined;
    // Postgres down or slow: keep the batch and try again, telling JetStream
    // we are still working on it. Nak'ing would count a delivery each time and
    // an outage longer than MaxDeliver attempts would drop acknowledged orders.
    for (let delay = retryDelayMs; inserted === undefined; delay = Math.min(delay * 2, maxRetryDelayMs)) {
      try {
        inserted = await write(
          items.filter((r) => !refused.has(r)),
          refused,
        );
      } catch (error) {
        stats.failures++;
        log.warn("batch not written; retrying", {
          size: items.length,
          retryInMs: delay,
          err: error instanceof Error ? error.message : String(error),
        });
        if (stopped) {
          // Hand the events back; another writer (or this one, restarted) takes them.
          for (const d of deliveries) d.msg.nak();
          return;
        }
        for (const d of deliveries) d.msg.working();
        await new Promise((resolve) => setTimeout(resolve, delay));
      }
    }
    // Reservations neither inserted now nor stored before name a sale that does
    // not exist, or were refused by a unique key other than the order id (a
    // second reservation for one request).
    const insertedIds = new Set(inserted.map((r) => r.id));
    const others = items.filter((r) => !refused.has(r) && !insertedIds.has(r.reservationId));
    const stored = others.length > 0 ? await existingOrderIds(db, others.map((r) => r.reservationId)) : new Set<string>();
    const missing = others.filter((r) => !stored.has(r.reservationId));
    const sales = missing.length > 0 ? await existingSaleIds(db, missing.map((r) => r.saleId)) : new Set<string>();
    for (const r of missing) {
      refuseReservation(r, sales.has(r.saleId) ? "a different order already exists for this user and request id" : `unknown sale ${r.saleId}`);
    }
    for (const d of deliveries) d.msg.ack();
    stats.batches++;
    stats.persisted += inserted.length;
    stats.duplicates += stored.size;
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

  /** Takes deliveries up to batchSize reservations (at least one delivery). */
  function takeBatch(): Delivery[] {
    let count = 0;
    let n = 0;
    while (n < buffer.length && (n === 0 || count + buffer[n].reservations.length <= opts.batchSize)) {
      count += buffer[n].reservations.length;
      n++;
    }
    return buffer.splice(0, n);
  }

  const lingerMs = opts.lingerMs ?? 0;
  let buffered = 0;
  let lingering: NodeJS.Timeout | undefined;

  /** Writes now when a batch is full, else once the linger is over. */
  function schedule(): void {
    if (scheduled || inFlight >= opts.concurrency) return;
    scheduled = true;
    if (buffered >= opts.batchSize || lingerMs === 0) setImmediate(pump);
    else lingering = setTimeout(pump, lingerMs);
  }

  function pump(): void {
    scheduled = false;
    clearTimeout(lingering);
    lingering = undefined;
    while (buffer.length > 0 && inFlight < opts.concurrency) {
      const batch = takeBatch();
      for (const d of batch) buffered -= d.reservations.length;
      inFlight++;
      flush(batch)
        .catch((error) => log.error("writer batch crashed", { err: error instanceof Error ? error : String(error) }))
        .finally(() => {
          inFlight--;
          if (buffer.length > 0) schedule();
          else if (inFlight === 0) idle.splice(0).forEach((resolve) => resolve());
        });
    }
  }

  const messages: ConsumerMessages = await opts.consumer.consume({
    max_messages: opts.concurrency * 64,
    callback: (msg) => {
      if (stopped) return; // not acked: JetStream redelivers it after AckWait
      const delivery = decode(msg);
      if (!delivery) return;
      buffer.push(delivery);
      buffered += delivery.reservations.length;
      if (scheduled && buffered >= opts.batchSize && lingering) {
        // A full batch does not wait out the linger.
        clearTimeout(lingering);
        lingering = undefined;
        setImmediate(pump);
        return;
      }
      schedule();
    },
  });

  return {
    stats,
    async stop() {
      stopped = true;
      clearTimeout(lingering);
      await messages.close();
      // Buffered but unwritten events: hand them back at once.
      for (const d of buffer.splice(0)) d.msg.nak();
      if (inFlight > 0) await new Promise<void>((resolve) => idle.push(resolve));
    },
  };
}
