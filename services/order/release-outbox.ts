// The release outbox of the order service. A cancel or an expiry commits the
// release in Postgres (release_published_at NULL), then publishes StockReleased
// to JetStream (Nats-Msg-Id `release-<order id>`), waits for the PubAck and sets
// release_published_at. The relay republishes released rows still NULL after a
// while: a crash or a NATS outage between commit and publish. A duplicate is
// harmless: JetStream drops it within its duplicate window and inventory's
// release script applies a reservation's release once.
import type { Knex } from "knex";
import type { EventPublisher } from "../common/event-bus.js";
import type { Logger } from "../common/log.js";
import * as repo from "./order-repository.js";
import type { OrderRow } from "./order-repository.js";
import { errorMessage } from "../common/error-message.js";

const RELAY_BATCH = 500;

export interface ReleaseOutbox {
  /** Publishes the releases of these committed rows; returns how many were acknowledged. Never throws. */
  publish(rows: OrderRow[]): Promise<number>;
  /** Republishes releases left unpublished for at least relayAfterMs; returns how many were acknowledged. */
  relay(): Promise<number>;
}

export function createReleaseOutbox(deps: { db: Knex; publisher: EventPublisher; now: () => Date; log: Logger; relayAfterMs: number }): ReleaseOutbox {
  const { db, publisher, log } = deps;

  async function publish(rows: OrderRow[]): Promise<number> {
    const settled = await Promise.allSettled(
      rows.map((row) =>
        publisher.stockReleased({
          reservationId: row.id,
          saleId: row.sale_id,
          userId: row.user_id,
          quantity: row.quantity,
          cause: row.status,
          releasedAt: row.released_at ?? deps.now(),
        }),
      ),
    );
    const acked = rows.filter((_, k) => settled[k].status === "fulfilled").map((row) => row.id);
    const failed = settled.find((s): s is PromiseRejectedResult => s.status === "rejected");
    if (failed) {
      log.warn("stock release publish failed; the relay publishes it later", {
        failed: rows.length - acked.length,
        orderIds: rows
          .filter((_, k) => settled[k].status === "rejected")
          .slice(0, 10)
          .map((row) => row.id),
        err: errorMessage(failed.reason),
      });
    }
    try {
      await repo.markReleasesPublished(db, acked, deps.now());
    } catch (error) {
      // The relay publishes them again: a duplicate changes nothing.
      log.warn("could not record published releases", { err: errorMessage(error) });
    }
    return acked.length;
  }

  return {
    publish,
    async relay() {
      const rows = await repo.unpublishedReleases(db, deps.relayAfterMs, RELAY_BATCH);
      if (rows.length === 0) return 0;
      log.info("relaying unpublished stock releases", { orders: rows.length });
      return publish(rows);
    },
  };
}
