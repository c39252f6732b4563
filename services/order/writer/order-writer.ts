// The order writer: drains reservation events from JetStream into Postgres at
// the rate Postgres takes them (peak shaving). Each message carries the
// reservations of one Reserve call in one sale; messages are gathered into
// batches of up to batchSize reservations, written in one transaction each,
// and acked only after the commit, so a crash before the ack means a
// redelivery, which ON CONFLICT turns into a no-op. Every message it holds
// (buffered, being written, retried while Postgres is slow or down) is
// reported in progress several times per AckWait, so the consumer's AckWait
// can be short: the events a dead writer held come back within seconds, and
// none is redelivered while a live writer is still working on it. Batch size and concurrency
// are what bound the load on Postgres. What it gives up on (undecodable
// messages, reservations Postgres refuses, messages still failing at their last
// deliveries) is recorded as a DeadLetter, and only then terminated or acked.
import { createHash } from "node:crypto";
import type { Consumer, ConsumerMessages, JsMsg } from "@nats-io/jetstream";
import { OrderStatus, ReservationBatch, type DeadLetter, type ReservationMade } from "@seckill/sdk";
import type { Knex } from "knex";
import type { EventPublisher } from "../../common/event-bus.js";
import { isRequestId } from "../../common/ids.js";
import type { Logger } from "../../common/log.js";
import type { OrderMetrics, WriterMetrics } from "../../common/metrics.js";
import {
  existingOrderIds,
  existingSaleIds,
  OversellRefused,
  persistReservations,
  type InsertedOrder,
  type ReservationToPersist,
} from "../order-repository.js";
import { errorMessage } from "../../common/error-message.js";

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
}

/**
 * Why something was given up on, as dead letters are counted: a message that is
 * not a ReservationBatch, a reservation missing a field, one Postgres or the
 * writer refused, a message still failing at its last deliveries.
 */
type LetterKind = "undecodable" | "incomplete" | "refused" | "max_deliveries";

/** A dead letter and its Nats-Msg-Id. */
interface Letter {
  letter: DeadLetter;
  msgID: string;
  kind: LetterKind;
}

/** A reservation id usable in a Nats-Msg-Id as is, else a digest of it. */
const msgIdPart = (id: string) => (isRequestId(id) ? id : `h${createHash("sha256").update(id).digest("hex").slice(0, 20)}`);

/** The whole message, given up on. */
function messageLetter(msg: JsMsg, reason: string, kind: LetterKind): Letter {
  return {
    msgID: `dl-${msg.seq}`,
    kind,
    letter: {
      subject: msg.subject,
      streamSequence: msg.seq,
      payload: Buffer.from(msg.data),
      reason,
      deliveryCount: msg.info.deliveryCount,
      reservation: undefined,
      deadLetteredAt: new Date(),
    },
  };
}

/** One reservation of a message, refused. */
function reservationLetter(msg: JsMsg, reservation: ReservationMade, reason: string, kind: LetterKind): Letter {
  return {
    msgID: `dl-${msg.seq}-${msgIdPart(reservation.reservationId)}`,
    kind,
    letter: {
      subject: msg.subject,
      streamSequence: msg.seq,
      payload: Buffer.from(ReservationBatch.encode({ reservations: [reservation] }).finish()),
      reason,
      deliveryCount: msg.info.deliveryCount,
      reservation,
      deadLetteredAt: new Date(),
    },
  };
}

/** An error's message without the SQL text knex puts in front of Postgres's own. */
function errorText(error: unknown): string {
  const message = errorMessage(error);
  const own = /\s-\s([^\n]*)$/.exec(message);
  return typeof (error as { severity?: unknown })?.severity === "string" && own ? own[1] : message;
}

/**
 * Whether a failed write is an outage (retried in place without spending
 * deliveries) rather than something wrong with the events. Anything that is not
 * an error reported by the Postgres server (refused connection, pool timeout,
 * dropped socket) is an outage; so are the server's connection, resource,
 * shutdown, concurrency, lock, authorization and privilege errors.
 */
export function isTransient(error: unknown): boolean {
  const e = error as { severity?: unknown; code?: unknown };
  if (typeof e?.severity !== "string" || typeof e.code !== "string") return true;
  return /^(08|28|3D|40|53|55|57|58)/.test(e.code) || e.code === "42501";
}

/** The sale and the first order ids of a message, for the lines logged about it. */
const idsOfDelivery = (d: Delivery) => ({ saleId: d.reservations[0]?.saleId, orderIds: d.reservations.slice(0, 10).map((r) => r.reservationId) });

const isComplete = (r: ReservationMade): r is ReservationMade & { reservedAt: Date } =>
  Boolean(r.reservationId && r.saleId && r.userId && r.quantity >= 1 && r.reservedAt);

export async function startOrderWriter(opts: OrderWriterOptions): Promise<OrderWriter> {
  const { db, log, metrics } = opts;
  const retryDelayMs = opts.retryDelayMs ?? 250;
  const maxRetryDelayMs = opts.maxRetryDelayMs ?? 5000;
  const stats: OrderWriterStats = { batches: 0, persisted: 0, duplicates: 0, poison: 0, failures: 0, deadLettered: 0 };
  /** Dead letters being recorded for messages outside a batch (undecodable ones). */
  const recording = new Set<Promise<unknown>>();
  const buffer: Delivery[] = [];
  let inFlight = 0;
  let scheduled = false;
  let stopped = false;
  const idle: (() => void)[] = [];
  /** Messages delivered and not yet acked, nak'ed or terminated: kept alive by the heartbeat. */
  const held = new Set<JsMsg>();
  const ack = (msg: JsMsg) => {
    held.delete(msg);
    msg.ack();
  };
  const nak = (msg: JsMsg, delayMs?: number) => {
    held.delete(msg);
    msg.nak(delayMs);
  };
  const term = (msg: JsMsg) => {
    held.delete(msg);
    msg.term();
  };
  // Several times per AckWait, so that one late tick (a busy event loop) does
  // not let a message held here go back to JetStream.
  const heartbeat = setInterval(() => {
    try {
      for (const msg of held) msg.working();
    } catch {
      // The connection is closed: nothing to keep alive, JetStream redelivers.
    }
  }, Math.max(100, Math.floor(opts.ackWaitMs / 3)));
  heartbeat.unref();

  const refuseReservation = (r: ReservationToPersist, reason: string) => {
    stats.poison++;
    log.error("reservation refused; not written", { reservationId: r.reservationId, saleId: r.saleId, userId: r.userId, requestId: r.requestId, reason });
  };

  /**
   * Records dead letters, retrying until JetStream acknowledges them all (the
   * messages stay held meanwhile). false when the writer stopped first (the
   * messages are handed back).
   */
  async function record(letters: Letter[], msgs: JsMsg[]): Promise<boolean> {
    if (letters.length === 0) return true;
    for (let delay = retryDelayMs; ; delay = Math.min(delay * 2, maxRetryDelayMs)) {
      try {
        // The Nats-Msg-Id makes a retry or a redelivery record each letter once.
        await Promise.all(letters.map((l) => opts.deadLetter(l.letter, l.msgID)));
        stats.deadLettered += letters.length;
        if (metrics) for (const l of letters) metrics.writer.deadLetters(l.kind, 1);
        return true;
      } catch (error) {
        stats.failures++;
        log.warn("dead letters not recorded; retrying", {
          count: letters.length,
          retryInMs: delay,
          err: errorMessage(error),
        });
        if (stopped) {
          for (const m of msgs) nak(m);
          return false;
        }
        await new Promise((resolve) => setTimeout(resolve, delay));
      }
    }
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
      const recorded = record([messageLetter(msg, "undecodable message: not a ReservationBatch with reservations", "undecodable")], [msg]).then((ok) => {
        // No reason on the wire: older servers (2.9, as Debian ships) ignore
        // "+TERM <reason>", so the message stayed pending and was redelivered.
        if (ok) term(msg);
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
        refuseReservation(r as ReservationToPersist, "incomplete reservation");
        rejected.push({ reservation: r, reason: "incomplete reservation: no reservation id, sale, user, quantity or time" });
      }
    }
    return { msg, reservations, rejected };
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
      // A constraint (class 23) or a value Postgres cannot take (class 22, e.g.
      // a NUL byte in a user id): something about the events, not an outage.
      const code = (error as { code?: string }).code ?? "";
      const transient = isTransient(error);
      const dataError = !transient && /^22/.test(code);
      const constraint = error instanceof OversellRefused || (!transient && /^23/.test(code)) || dataError;
      if (!constraint) throw error;
      if (items.length === 1) {
        const name = (error as { constraint?: string }).constraint;
        const reason =
          error instanceof OversellRefused
            ? error.message
            : dataError
              ? `refused by Postgres: ${errorText(error)} (SQLSTATE ${code})`
              : `refused by Postgres constraint ${name ?? "(unknown)"}`;
        refuseReservation(items[0], reason);
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
    let inserted: InsertedOrder[] | undefined;
    // Postgres down or slow: keep the batch and try again; the heartbeat tells
    // JetStream we are still working on it. Nak'ing would count a delivery each
    // time and an outage longer than MaxDeliver attempts would drop acknowledged orders.
    for (let delay = retryDelayMs; inserted === undefined; delay = Math.min(delay * 2, maxRetryDelayMs)) {
      try {
        inserted = await write(
          items.filter((r) => !refused.has(r)),
          refused,
        );
      } catch (error) {
        if (!isTransient(error)) return failedForGood(deliveries, error);
        stats.failures++;
        log.warn("batch not written; retrying", {
          size: items.length,
          retryInMs: delay,
          err: errorMessage(error),
        });
        if (stopped) {
          // Hand the events back; another writer (or this one, restarted) takes them.
          for (const d of deliveries) nak(d.msg);
          return;
        }
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
      const reason = sales.has(r.saleId) ? "a different order already exists for this user and request id" : `unknown sale ${r.saleId}`;
      refuseReservation(r, reason);
      refused.set(r, reason);
    }
    // Every refused reservation is on record before its message is acked.
    const letters = [
      ...deliveries.flatMap((d) => d.rejected.map((x) => reservationLetter(d.msg, x.reservation, x.reason, "incomplete"))),
      ...[...refused].map(([r, reason]) => reservationLetter(owner.get(r)!, r, reason, "refused")),
    ];
    if (!(await record(letters, deliveries.map((d) => d.msg)))) return;
    for (const d of deliveries) ack(d.msg);
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
    const err = errorText(error);
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
      const letters = [...d.rejected.map((x) => reservationLetter(d.msg, x.reservation, x.reason, "incomplete")), messageLetter(d.msg, reason, "max_deliveries")];
      if (await record(letters, [d.msg])) term(d.msg);
      return;
    }
    const delay = Math.min(retryDelayMs * 2 ** count, maxRetryDelayMs);
    log.warn("message failed; redelivering later", { seq: d.msg.seq, deliveries: count, retryInMs: delay, ...idsOfDelivery(d), err });
    nak(d.msg, delay);
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
        .catch((error) => {
          log.error("writer batch crashed", { err: error instanceof Error ? error : String(error) });
          // Not kept alive any longer: JetStream delivers them again.
          for (const d of batch) if (held.has(d.msg)) nak(d.msg);
        })
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
      if (stopped) return msg.nak(); // handed back at once
      held.add(msg);
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
      for (const d of buffer.splice(0)) nak(d.msg);
      if (inFlight > 0) await new Promise<void>((resolve) => idle.push(resolve));
      await Promise.allSettled([...recording]);
      clearInterval(heartbeat);
    },
  };
}
