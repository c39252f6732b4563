// The order writer: drains reservation events from JetStream into Postgres at
// the rate Postgres takes them (peak shaving). Events are written in batches,
// one transaction each; a batch is acked only after its commit, so a crash
// before the ack means a redelivery, which ON CONFLICT turns into a no-op.
// Batch size and concurrency are what bound the load on Postgres.
import type { Consumer, ConsumerMessages, JsMsg } from "@nats-io/jetstream";
import { OrderStatus, ReservationMade } from "@seckill/sdk";
import type { Knex } from "knex";
import type { EventPublisher } from "../../common/event-bus.js";
import type { Logger } from "../../common/log.js";
import { existingOrderIds, existingSaleIds, OversellRefused, persistReservations, type OrderRow, type ReservationToPersist } from "../order-repository.js";

export interface OrderWriterOptions {
  db: Knex;
  consumer: Consumer;
  publisher: EventPublisher;
  batchSize: number;
  concurrency: number;
  log: Logger;
  /** First delay before a failed batch is written again; doubles up to maxRetryDelayMs. */
  retryDelayMs?: number;
  maxRetryDelayMs?: number;
}

export interface OrderWriterStats {
  batches: number;
  persisted: number;
  duplicates: number;
  poison: number;
  failures: number;
}

export interface OrderWriter {
  stats: OrderWriterStats;
  /** Stops pulling, finishes the batches in flight; unacked events stay in JetStream. */
  stop(): Promise<void>;
}

interface Decoded {
  msg: JsMsg;
  event: ReservationToPersist;
}

export async function startOrderWriter(opts: OrderWriterOptions): Promise<OrderWriter> {
  const { db, log } = opts;
  const retryDelayMs = opts.retryDelayMs ?? 250;
  const maxRetryDelayMs = opts.maxRetryDelayMs ?? 5000;
  const stats: OrderWriterStats = { batches: 0, persisted: 0, duplicates: 0, poison: 0, failures: 0 };
  const buffer: JsMsg[] = [];
  let inFlight = 0;
  let scheduled = false;
  let stopped = false;
  const idle: (() => void)[] = [];

  const poison = (msg: JsMsg, reason: string) => {
    stats.poison++;
    log.error("poison reservation event terminated", { subject: msg.subject, seq: msg.seq, reason });
    // No reason on the wire: older servers (2.9, as Debian ships) ignore
    // "+TERM <reason>", so the event stayed pending and was redelivered.
    msg.term();
  };

  /** Writes one batch in one transaction; on a constraint refusal, isolates the bad events by halving. */
  async function write(items: Decoded[], terminated: Set<Decoded>): Promise<OrderRow[]> {
    try {
      return await db.transaction((trx) => persistReservations(trx, items.map((i) => i.event)));
    } catch (error) {
      const refused = error instanceof OversellRefused || /^23/.test((error as { code?: string }).code ?? "");
      if (!refused) throw error;
      if (items.length === 1) {
        const constraint = (error as { constraint?: string }).constraint;
        poison(items[0].msg, error instanceof OversellRefused ? error.message : `refused by Postgres constraint ${constraint ?? "(unknown)"}`);
        terminated.add(items[0]);
        return [];
      }
      const mid = Math.ceil(items.length / 2);
      return [...(await write(items.slice(0, mid), terminated)), ...(await write(items.slice(mid), terminated))];
    }
  }

  async function flush(messages: JsMsg[]): Promise<void> {
    const decoded: Decoded[] = [];
    const seen = new Set<string>();
    for (const msg of messages) {
      let event: ReservationMade;
      try {
        event = ReservationMade.decode(msg.data);
      } catch {
        poison(msg, "undecodable ReservationMade");
        continue;
      }
      if (!event.reservationId || !event.saleId || !event.userId || event.quantity < 1 || !event.reservedAt) {
        poison(msg, "incomplete ReservationMade");
        continue;
      }
      if (seen.has(event.reservationId)) {
        msg.ack();
        continue;
      }
      seen.add(event.reservationId);
      decoded.push({
        msg,
        event: {
          reservationId: event.reservationId,
          saleId: event.saleId,
          userId: event.userId,
          requestId: event.requestId,
          quantity: event.quantity,
          reservedAt: event.reservedAt,
        },
      });
    }
    if (decoded.length === 0) return;
    const started = performance.now();
    let inserted: OrderRow[] | undefined;
    const terminated = new Set<Decoded>();
    // Postgres down or slow: keep the batch and try again, telling JetStream
    // we are still working on it. Nak'ing would count a delivery each time and
    // an outage longer than MaxDeliver attempts would drop acknowledged orders.
    for (let delay = retryDelayMs; inserted === undefined; delay = Math.min(delay * 2, maxRetryDelayMs)) {
      try {
        inserted = await write(
          decoded.filter((d) => !terminated.has(d)),
          terminated,
        );
      } catch (error) {
        stats.failures++;
        log.warn("batch not written; retrying", {
          size: decoded.length,
          retryInMs: delay,
          err: error instanceof Error ? error.message : String(error),
        });
        if (stopped) {
          // Hand the events back; another writer (or this one, restarted) takes them.
          for (const d of decoded) if (!terminated.has(d)) d.msg.nak();
          return;
        }
        for (const d of decoded) if (!terminated.has(d)) d.msg.working();
        await new Promise((resolve) => setTimeout(resolve, delay));
      }
    }
    const live = decoded.filter((d) => !terminated.has(d));
    // Events neither inserted now nor stored before name a sale that does not
    // exist, or were refused by a unique key other than the order id (a second
    // reservation for one request).
    const insertedIds = new Set(inserted.map((r) => r.id));
    const others = live.filter((d) => !insertedIds.has(d.event.reservationId));
    const stored = others.length > 0 ? await existingOrderIds(db, others.map((d) => d.event.reservationId)) : new Set<string>();
    const missing = others.filter((d) => !stored.has(d.event.reservationId));
    const sales = missing.length > 0 ? await existingSaleIds(db, missing.map((d) => d.event.saleId)) : new Set<string>();
    for (const d of live) {
      if (insertedIds.has(d.event.reservationId) || stored.has(d.event.reservationId)) d.msg.ack();
      else if (!sales.has(d.event.saleId)) poison(d.msg, `unknown sale ${d.event.saleId}`);
      else poison(d.msg, "a different order already exists for this user and request id");
    }
    stats.batches++;
    stats.persisted += inserted.length;
    stats.duplicates += stored.size;
    log.debug("batch written", { size: decoded.length, inserted: inserted.length, ms: Math.round(performance.now() - started) });
    for (const row of inserted) {
      opts.publisher.orderStatusChanged({
        orderId: row.id,
        saleId: row.sale_id,
        userId: row.user_id,
        status: OrderStatus.ORDER_STATUS_CREATED,
        changedAt: row.created_at,
      });
    }
  }

  function pump(): void {
    scheduled = false;
    while (buffer.length > 0 && inFlight < opts.concurrency) {
      const batch = buffer.splice(0, opts.batchSize);
      inFlight++;
      flush(batch)
        .catch((error) => log.error("writer batch crashed", { err: error instanceof Error ? error : String(error) }))
        .finally(() => {
          inFlight--;
          if (buffer.length > 0) pump();
          else if (inFlight === 0) idle.splice(0).forEach((resolve) => resolve());
        });
    }
  }

  const messages: ConsumerMessages = await opts.consumer.consume({
    max_messages: opts.batchSize * opts.concurrency * 2,
    callback: (msg) => {
      if (stopped) return; // not acked: JetStream redelivers it after AckWait
      buffer.push(msg);
      // Let a burst of deliveries gather into one batch before writing.
      if (!scheduled && inFlight < opts.concurrency) {
        scheduled = true;
        setImmediate(pump);
      }
    },
  });

  return {
    stats,
    async stop() {
      stopped = true;
      await messages.close();
      // Buffered but unwritten events: hand them back at once.
      for (const msg of buffer.splice(0)) msg.nak();
      if (inFlight > 0) await new Promise<void>((resolve) => idle.push(resolve));
    },
  };
}
