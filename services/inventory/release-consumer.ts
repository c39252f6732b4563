// Applies StockReleased events (a cancelled or expired order) to Redis: a
// durable JetStream pull consumer shared by every inventory replica. Each event
// runs release.lua, which returns the units to stock and restores the buyer's
// count (unless the sale's release policy is KEEP) once (the released set makes a redelivery or a republish a no-op), and
// is acked after the script answered. A Redis failure leaves the event to be
// redelivered.
import type { Consumer, JsMsg } from "@nats-io/jetstream";
import { StockReleased } from "@seckill/sdk";
import { saleOfOrderId } from "../common/ids.js";
import type { Logger } from "../common/log.js";
import type { StockStore } from "./stock-store.js";
import { errorMessage } from "../common/error-message.js";
import { keepConsuming } from "../common/keep-consuming.js";

export interface ReleaseConsumer {
  /** Events applied (released now) and skipped (released before, unknown, sale not loaded). */
  stats: { released: number; skipped: number };
  stop(): Promise<void>;
}

const RETRY_DELAY_MS = 1000;

export async function startReleaseConsumer(opts: { consumer: Consumer; stock: Pick<StockStore, "release">; log: Logger }): Promise<ReleaseConsumer> {
  const { stock, log } = opts;
  const stats = { released: 0, skipped: 0 };
  let inFlight = 0;
  let stopped = false;
  const idle: (() => void)[] = [];

  async function apply(msg: JsMsg): Promise<void> {
    let event: StockReleased;
    try {
      event = StockReleased.decode(msg.data);
    } catch {
      log.error("undecodable stock release event; terminated", { subject: msg.subject });
      msg.term();
      return;
    }
    const saleId = saleOfOrderId(event.reservationId);
    if (!saleId || saleId !== event.saleId) {
      log.error("stock release event for a malformed reservation id; terminated", { reservationId: event.reservationId });
      msg.term();
      return;
    }
    try {
      const result = await stock.release(saleId, event.reservationId);
      if (result.outcome === "RELEASED") stats.released++;
      else {
        stats.skipped++;
        // COLD: the sale is not in Redis; warming it reads sold from Postgres, which already holds the release.
        if (result.outcome === "UNKNOWN") log.warn("stock release for a reservation Redis does not know", { reservationId: event.reservationId });
      }
      msg.ack();
    } catch (error) {
      log.warn("stock release not applied; redelivered later", {
        reservationId: event.reservationId,
        err: errorMessage(error),
      });
      msg.nak(RETRY_DELAY_MS);
    }
  }

  const consumption = await keepConsuming({
    consumer: opts.consumer,
    name: "inventory release",
    maxMessages: 256,
    log,
    callback: (msg) => {
      if (stopped) return; // not acked: redelivered after AckWait
      inFlight++;
      // apply settles every failure itself (nak or term), so this cannot reject.
      void apply(msg).finally(() => {
        if (--inFlight === 0) for (const resolve of idle.splice(0)) resolve();
      });
    },
  });

  return {
    stats,
    async stop() {
      stopped = true;
      await consumption.stop();
      if (inFlight > 0) await new Promise<void>((resolve) => idle.push(resolve));
    },
  };
}
