// The sweeper: a reservation the client was told about must reach JetStream
// even when inventory died between the Lua script and the publish. reserve.lua
// records every new reservation in the sale's `unconfirmed` sorted set (score:
// when it is next due, first its reserved time). Every SWEEP_INTERVAL_MS one
// inventory replica (a short Redis lock) visits the sales in the sweep index
// (sweep-index.ts: loading a sale and reserving from it put it there) and, for
// reservations due (older than SWEEP_AFTER_MS), in chunks:
//   released in Redis        -> dropped (settled, never an order to write)
//   an order in Postgres     -> dropped (confirmed)
//   otherwise                -> republished alone, Nats-Msg-Id = reservation id
//                               (JetStream drops it if the first publish got
//                               through within its duplicate window, the writer
//                               if it was written meanwhile), looked at again
//                               SWEEP_AFTER_MS later
// A reservation still without an order SWEEP_REPORT_AFTER_MS after it was made
// is republished once more, reported (error log with its ids, stats.reported)
// and no longer swept: its event is in JetStream, so what is missing is the
// writer's side (down, or the event refused), which needs an operator.
import { randomBytes } from "node:crypto";
import type { Knex } from "knex";
import type { ReservationMade } from "@seckill/sdk";
import type { EventPublisher, JetStreamProgress } from "../common/event-bus.js";
import type { Logger } from "../common/log.js";
import { errorMessage } from "../common/error-message.js";
import type { Locks } from "./locks.js";
import type { StockStore, StoredReservation } from "./stock-store.js";
import type { SweepIndex } from "./sweep-index.js";

export interface SweeperOptions {
  stock: Pick<StockStore, "live" | "reservations">;
  index: SweepIndex;
  /** One replica sweeps at a time. */
  locks: Locks;
  db: Knex;
  publisher: EventPublisher;
  log: Logger;
  nowMs: () => number;
  /** 0 disables the loop (sweepOnce still works). */
  intervalMs: number;
  afterMs: number;
  reportAfterMs: number;
  batchSize: number;
  /** Where the writer is in the stream: reservations still in its backlog are not lost, only late. */
  jetstreamProgress: () => Promise<JetStreamProgress>;
  /**
   * The longest a reservation's publish may take after its Lua script (the
   * publish timeout): a reservation made this long before a look at the stream
   * is in it, or was never acknowledged.
   */
  publishSlackMs: number;
}

export interface SweeperStats {
  /** Sweeps run while holding the lock. */
  sweeps: number;
  /** Reservations found in Postgres and dropped from the unconfirmed set. */
  confirmed: number;
  /** Released reservations dropped from the unconfirmed set. */
  released: number;
  /** Reservations republished (PubAck received). */
  republished: number;
  /** Of those, how many JetStream recognised as duplicates of an earlier publish. */
  duplicates: number;
  publishFailures: number;
  /** Reservations given up and logged at error level. */
  reported: number;
  /** The most recent reported reservation ids (at most 100). */
  reportedIds: string[];
  /** Sweeps or sales that failed (Redis, Postgres). */
  errors: number;
}

export interface Sweeper {
  stats: SweeperStats;
  /** One sweep now, if the lock is free; false when another replica holds it. */
  sweepOnce(): Promise<boolean>;
  stop(): Promise<void>;
}

const LOCK = "sweeper";
const REPORTED_IDS_KEPT = 100;

export function startSweeper(opts: SweeperOptions): Sweeper {
  const { stock, index, locks, db, publisher, log } = opts;
  const stats: SweeperStats = {
    sweeps: 0,
    confirmed: 0,
    released: 0,
    republished: 0,
    duplicates: 0,
    publishFailures: 0,
    reported: 0,
    reportedIds: [],
    errors: 0,
  };
  const token = randomBytes(12).toString("hex");
  // Long enough for a sweep; one that runs longer stops at half of it and goes on next time.
  const lockTtlMs = Math.max(10 * opts.intervalMs, 10_000);
  let stopped = false;
  let timer: NodeJS.Timeout | undefined;
  let running: Promise<boolean> | undefined;

  async function ordersIn(ids: string[]): Promise<Set<string>> {
    const rows: { id: string }[] = await db("orders").whereIn("id", ids).select("id");
    return new Set(rows.map((r) => r.id));
  }

  async function republish(r: StoredReservation): Promise<boolean> {
    const event: ReservationMade = {
      reservationId: r.reservationId,
      saleId: r.saleId,
      userId: r.userId,
      requestId: r.requestId,
      quantity: r.quantity,
      reservedAt: new Date(r.reservedAtMs),
    };
    try {
      // A batch of one: its Nats-Msg-Id is the reservation id, so JetStream deduplicates exactly.
      const ack = await publisher.reservationsMade(r.saleId, [event]);
      stats.republished++;
      if (ack.duplicate) stats.duplicates++;
      return true;
    } catch (error) {
      stats.publishFailures++;
      log.warn("sweeper: republishing a reservation failed; retried on a later sweep", {
        saleId: r.saleId,
        reservationId: r.reservationId,
        err: errorMessage(error),
      });
      return false;
    }
  }

  function report(r: StoredReservation, nowMs: number) {
    stats.reported++;
    stats.reportedIds.push(r.reservationId);
    if (stats.reportedIds.length > REPORTED_IDS_KEPT) stats.reportedIds.shift();
    log.error("reservation has no order long after it was acknowledged; its event is in JetStream, check the order writer", {
      saleId: r.saleId,
      reservationId: r.reservationId,
      userId: r.userId,
      requestId: r.requestId,
      quantity: r.quantity,
      reservedAt: new Date(r.reservedAtMs).toISOString(),
      ageMs: nowMs - r.reservedAtMs,
    });
  }

  /** Works through one sale's due reservations; false when it ran out of time. */
  async function sweepSale(saleId: string, deadlineMs: number): Promise<boolean> {
    for (;;) {
      const nowMs = opts.nowMs();
      if (nowMs >= deadlineMs || stopped) return false;
      // Only what the writer has certainly had the chance to write: a reservation
      // made before the writer caught up with the stream is not lost, only late.
      const due = await index.unconfirmed(saleId, Math.min(nowMs - opts.afterMs, caughtUpToMs), opts.batchSize);
      if (due.length === 0) break;
      const ids = due.map((d) => d.reservationId);
      const records = await stock.reservations(saleId, ids);
      const settled: string[] = [];
      const open: StoredReservation[] = [];
      const seenBefore = new Set<string>();
      records.forEach((r, i) => {
        // Its score moved past its reserved time: an earlier sweep already republished it.
        if (r && due[i].dueMs > r.reservedAtMs) seenBefore.add(r.reservationId);
        if (!r) {
          log.warn("sweeper: unconfirmed reservation has no record; dropped", { saleId, reservationId: ids[i] });
          settled.push(ids[i]);
        } else if (r.released) {
          stats.released++;
          settled.push(ids[i]);
        } else open.push(r);
      });
      const written = open.length > 0 ? await ordersIn(open.map((r) => r.reservationId)) : new Set<string>();
      const missing = open.filter((r) => !written.has(r.reservationId));
      stats.confirmed += open.length - missing.length;
      settled.push(...written);
      const published = await Promise.all(missing.map(republish));
      const later: string[] = [];
      missing.forEach((r, i) => {
        if (published[i] && seenBefore.has(r.reservationId) && nowMs - r.reservedAtMs >= opts.reportAfterMs) {
          report(r, nowMs);
          settled.push(r.reservationId);
        } else later.push(r.reservationId);
      });
      if (missing.length > 0) {
        log.info("sweeper: republished reservations with no order yet", {
          saleId,
          reservationIds: missing.map((r) => r.reservationId),
        });
      }
      await index.confirm(saleId, settled);
      // Looked at again after SWEEP_AFTER_MS, not at every sweep: a writer backlog costs one republish per period.
      await index.deferUnconfirmed(saleId, later, nowMs);
      if (ids.length < opts.batchSize) break;
    }
    await forgetIfFinished(saleId);
    return true;
  }

  /** Takes an ended (or no longer loaded) sale with nothing left to sweep out of the index. */
  async function forgetIfFinished(saleId: string) {
    if ((await index.unconfirmedCount(saleId)) > 0) return;
    const live = await stock.live(saleId);
    if (live.warm) {
      if (live.closedAtMs === 0 && opts.nowMs() < live.endsAtMs) return;
      // Ended: no new reservations can come.
      await index.removeSale(saleId);
      return;
    }
    await index.removeSale(saleId);
    // Loaded again meanwhile: put it back (the loader adds it too, but perhaps before our removal).
    if ((await stock.live(saleId)).warm) await index.addSale(saleId);
  }

  /**
   * Every reservation made before `mark.atMs` was published (if at all) at a
   * stream sequence ≤ `mark.seq`. Once the writer has handled the stream up to
   * there, a reservation made before then with no order lost its event.
   */
  let mark: { seq: number; atMs: number } | undefined;
  let caughtUpToMs = 0;

  async function advanceCaughtUp(): Promise<void> {
    // Reservations made just before this look may still be on their way into the
    // stream: only those older than the publish slack are known to be in it.
    const nowMs = opts.nowMs() - opts.publishSlackMs;
    const progress = await opts.jetstreamProgress();
    if (progress.idle) caughtUpToMs = nowMs;
    else if (mark && progress.written >= mark.seq) caughtUpToMs = mark.atMs;
    // A mark stays until the writer passes it, so a steady stream cannot postpone it forever.
    if (progress.idle || !mark || progress.written >= mark.seq) mark = { seq: progress.published, atMs: nowMs };
  }

  async function sweep(): Promise<boolean> {
    if (!(await locks.tryLock(LOCK, token, lockTtlMs))) return false;
    const deadlineMs = opts.nowMs() + lockTtlMs / 2;
    try {
      stats.sweeps++;
      await advanceCaughtUp();
      for (const saleId of await index.sales()) {
        try {
          if (!(await sweepSale(saleId, deadlineMs))) break;
        } catch (error) {
          stats.errors++;
          log.warn("sweeper: sweeping a sale failed; retried on the next sweep", { saleId, err: errorMessage(error) });
        }
      }
    } finally {
      await locks.unlock(LOCK, token).catch(() => undefined);
    }
    return true;
  }

  function sweepOnce(): Promise<boolean> {
    // One sweep at a time in this process.
    running ??= sweep().finally(() => (running = undefined));
    return running;
  }

  function schedule() {
    if (stopped || opts.intervalMs === 0) return;
    timer = setTimeout(() => {
      sweepOnce()
        .catch((error) => {
          stats.errors++;
          log.warn("sweeper: sweep failed; retried on the next one", { err: errorMessage(error) });
        })
        .finally(schedule);
    }, opts.intervalMs);
    timer.unref();
  }
  schedule();

  return {
    stats,
    sweepOnce,
    async stop() {
      stopped = true;
      clearTimeout(timer);
      await running?.catch(() => undefined);
    },
  };
}
