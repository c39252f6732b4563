// The reservation path: validate each attempt, run one Lua script per sale for
// the whole batch (loading a cold sale and running it again), put a sale that
// made reservations in the sweep index, publish every reservation to JetStream
// (all publishes in flight together) and answer each attempt only after its
// PubAck.
import { Reason, reasonFromName, reasonName, type GetReservationResponse, type ReservationMade, type ReserveItem, type ReserveResult } from "@seckill/sdk";
import { isRequestId, isSaleId, isUserId, newOrderId, saleOfOrderId } from "../common/ids.js";
import { invalid, refuse, Refusal } from "../common/refusal.js";
import type { EventPublisher } from "../common/event-bus.js";
import type { Logger } from "../common/log.js";
import type { InventoryMetrics } from "../common/metrics.js";
import { errorMessage } from "../common/error-message.js";
import type { ReserveAnswer, StockStore } from "./stock-store.js";
import type { SweepIndexing } from "./sweep-index.js";

export const MAX_BATCH = 512;
export const MAX_QUANTITY = 100;

export interface ReservationDeps {
  stock: StockStore;
  sweepIndexing: Pick<SweepIndexing, "indexReserved">;
  publisher: EventPublisher;
  /** Loads a cold sale into Redis (sale-warmer.ts); false when the sale does not exist. */
  warmOnDemand(saleId: string): Promise<boolean>;
  nowMs: () => number;
  log: Logger;
  /** Counts answers by outcome and follows each sale's stock left. */
  metrics?: InventoryMetrics;
}

/** The ReserveResult of an item not reserved, for this reason. */
const notReserved = (reason: Reason, stockLeft = 0): ReserveResult => ({
  reason,
  reservationId: "",
  replayed: false,
  stockLeft,
  reservedAt: undefined,
  quantity: 0,
  perUserLimit: 0,
});

/** Why an attempt is malformed, or undefined when it is well-formed. */
export function attemptProblem(item: ReserveItem): string | undefined {
  if (!isSaleId(item.saleId)) return "sale_id";
  if (!isUserId(item.userId)) return "user_id";
  if (!isRequestId(item.requestId)) return "request_id";
  if (!Number.isInteger(item.quantity) || item.quantity < 1 || item.quantity > MAX_QUANTITY) return "quantity";
  return undefined;
}

/** OK, REPLAY, or the reason of the refusal: the `outcome` a reservation is counted under. */
const outcomeOf = (result: ReserveResult): string => (result.reason === Reason.REASON_UNSPECIFIED ? (result.replayed ? "REPLAY" : "OK") : (reasonName(result.reason) ?? "UNKNOWN"));

/** How long a sale id found missing in Postgres is answered NOT_FOUND without asking again. */
const UNKNOWN_SALE_TTL_MS = 1000;
const UNKNOWN_SALE_MAX = 10_000;

export function createReservationService(deps: ReservationDeps) {
  const { stock, publisher, log, metrics } = deps;
  // Purchases for sale ids that do not exist must not turn into a Postgres query each.
  const unknownSales = new Map<string, number>();

  /** warmOnDemand, answering false without asking for a sale id found missing within UNKNOWN_SALE_TTL_MS. */
  async function warmUnlessUnknown(saleId: string, nowMs: number): Promise<boolean> {
    const until = unknownSales.get(saleId);
    if (until !== undefined && until > nowMs) return false;
    const exists = await deps.warmOnDemand(saleId);
    if (exists) unknownSales.delete(saleId);
    else {
      if (unknownSales.size >= UNKNOWN_SALE_MAX) unknownSales.clear();
      unknownSales.set(saleId, nowMs + UNKNOWN_SALE_TTL_MS);
    }
    return exists;
  }

  async function reserveForSale(saleId: string, items: ReserveItem[], nowMs: number): Promise<ReserveAnswer[]> {
    const attempts = items.map((item) => ({
      userId: item.userId,
      requestId: item.requestId,
      quantity: item.quantity,
      newReservationId: newOrderId(saleId, nowMs),
    }));
    let answers = await stock.reserve(saleId, nowMs, attempts);
    if (answers[0]?.outcome === "COLD") {
      if (!(await warmUnlessUnknown(saleId, nowMs))) return answers;
      answers = await stock.reserve(saleId, nowMs, attempts);
    }
    // Before any answer goes out: should its publish be lost, the sweeper must find the reservation.
    await deps.sweepIndexing.indexReserved(saleId, answers);
    const last = answers[answers.length - 1];
    if (metrics && last && last.outcome !== "COLD") {
      if (last.outcome === "SALE_ENDED") metrics.saleEnded(saleId);
      else metrics.stockLeft(saleId, last.stockLeft);
    }
    return answers;
  }

  /**
   * Publishes the sale's reservations (new ones and replays) as one message and
   * answers every attempt: reserved ones only after the PubAck. A replay is
   * published again: the writer turns a duplicate into a no-op, and an event
   * whose first publish was lost is delivered.
   */
  async function publishAndAnswer(saleId: string, items: ReserveItem[], answers: ReserveAnswer[]): Promise<ReserveResult[]> {
    const reserved: ReservationMade[] = [];
    answers.forEach((answer, k) => {
      if (answer.outcome !== "OK" && answer.outcome !== "REPLAY") return;
      reserved.push({
        reservationId: answer.reservationId,
        saleId,
        userId: items[k].userId,
        requestId: items[k].requestId,
        quantity: answer.quantity,
        reservedAt: new Date(answer.reservedAtMs),
      });
    });
    let published = true;
    if (reserved.length > 0) {
      try {
        await publisher.reservationsMade(saleId, reserved);
      } catch (error) {
        published = false;
        log.warn("reservation publish failed; clients retry with the same request id", {
          saleId,
          reservations: reserved.length,
          requestIds: reserved.slice(0, 10).map((r) => r.requestId),
          err: errorMessage(error),
        });
      }
    }
    return answers.map((answer) => {
      switch (answer.outcome) {
        case "OK":
        case "REPLAY":
          if (!published) return notReserved(Reason.REASON_OVERLOADED, answer.stockLeft);
          return {
            reason: Reason.REASON_UNSPECIFIED,
            reservationId: answer.reservationId,
            replayed: answer.outcome === "REPLAY",
            stockLeft: answer.stockLeft,
            reservedAt: new Date(answer.reservedAtMs),
            quantity: answer.quantity,
            perUserLimit: 0,
          };
        case "QUANTITY_OVER_LIMIT":
          return { ...notReserved(Reason.REASON_INVALID_ARGUMENT, answer.stockLeft), perUserLimit: answer.quantity };
        case "COLD":
          return notReserved(Reason.REASON_NOT_FOUND);
        default:
          return notReserved(reasonFromName(answer.outcome), answer.stockLeft);
      }
    });
  }

  return {
    async reserve(items: ReserveItem[]): Promise<ReserveResult[]> {
      if (items.length === 0 || items.length > MAX_BATCH) throw invalid("items", `1 to ${MAX_BATCH} items`);
      const nowMs = deps.nowMs();
      const results: ReserveResult[] = new Array(items.length);
      const bySale = new Map<string, number[]>();
      items.forEach((item, index) => {
        if (attemptProblem(item)) {
          results[index] = notReserved(Reason.REASON_INVALID_ARGUMENT);
          return;
        }
        const group = bySale.get(item.saleId);
        if (group) group.push(index);
        else bySale.set(item.saleId, [index]);
      });
      await Promise.all(
        [...bySale].map(async ([saleId, indexes]) => {
          const group = indexes.map((i) => items[i]);
          let answered: ReserveResult[];
          try {
            answered = await publishAndAnswer(saleId, group, await reserveForSale(saleId, group, nowMs));
          } catch (error) {
            // One sale refusing (e.g. being rebuilt after a Redis loss) must not fail the others in the batch.
            if (!(error instanceof Refusal)) throw error;
            answered = group.map(() => notReserved(reasonFromName(error.reason)));
          }
          for (const [k, itemIndex] of indexes.entries()) results[itemIndex] = answered[k];
        }),
      );
      if (metrics) for (const result of results) metrics.reservation(outcomeOf(result));
      return results;
    },

    /** Returns the units to Redis once and announces it, so order replicas lift their sold-out shortcut. */
    async release(reservationId: string, cause: string): Promise<{ released: boolean; stockLeft: number }> {
      const saleId = saleOfOrderId(reservationId);
      if (!saleId) throw invalid("reservation_id", "not a reservation id");
      if (cause.length > 64) throw invalid("cause", "at most 64 characters");
      let result = await stock.release(saleId, reservationId);
      if (result.outcome === "COLD") {
        // Not in Redis: load the sale (a lost one is rebuilt from Postgres first), then look again.
        if (!(await warmUnlessUnknown(saleId, deps.nowMs()))) throw refuse("NOT_FOUND", `no reservation ${reservationId}`);
        result = await stock.release(saleId, reservationId);
      }
      if (result.outcome === "UNKNOWN" || result.outcome === "COLD") throw refuse("NOT_FOUND", `no reservation ${reservationId}`);
      if (result.outcome === "RELEASED") {
        const released = await stock.reservation(saleId, reservationId);
        await publisher.stockReleased({
          reservationId,
          saleId,
          userId: released?.userId ?? "",
          quantity: released?.quantity ?? 0,
          cause,
          releasedAt: new Date(deps.nowMs()),
        });
      }
      return { released: result.outcome === "RELEASED", stockLeft: result.stockLeft };
    },

    async stock(saleId: string) {
      if (!isSaleId(saleId)) throw invalid("sale_id", "26 characters of Crockford base32");
      const live = await stock.live(saleId);
      return live.warm ? { saleId, totalStock: live.totalStock, stockLeft: live.stockLeft, warm: true } : { saleId, totalStock: 0, stockLeft: 0, warm: false };
    },

    async reservation(reservationId: string): Promise<GetReservationResponse> {
      const saleId = saleOfOrderId(reservationId);
      if (!saleId) throw invalid("reservation_id", "not a reservation id");
      const found = await stock.reservation(saleId, reservationId);
      if (!found) throw refuse("NOT_FOUND", `no reservation ${reservationId}`);
      return {
        reservationId,
        saleId,
        userId: found.userId,
        requestId: found.requestId,
        quantity: found.quantity,
        reservedAt: new Date(found.reservedAtMs),
        released: found.released,
      };
    },
  };
}

export type ReservationService = ReturnType<typeof createReservationService>;
