// Expiry of unpaid orders, run by every order process every EXPIRY_INTERVAL_MS.
// One transaction locks due CREATED orders with FOR UPDATE SKIP LOCKED (so
// replicas running at once never take the same order), releases them as
// EXPIRED (set-based, like markReleased for one order), commits, then publishes the releases through the outbox. Durable by
// construction: the state is the orders table, so a restart or a crash loses
// nothing — the next tick finds what is still due, and the outbox relay (run on
// the same tick) publishes what was committed but not published.
import type { Knex } from "knex";
import type { Logger } from "../common/log.js";
import type { OrderMetrics } from "../common/metrics.js";
import * as repo from "./order-repository.js";
import type { OrderRow } from "./order-repository.js";
import type { ReleaseOutbox } from "./release-outbox.js";
import { errorMessage } from "../common/error-message.js";

export const EXPIRY_BATCH = 500;

export interface ExpiryDeps {
  db: Knex;
  outbox: ReleaseOutbox;
  now: () => Date;
  log: Logger;
  /** Called with the orders expired by one transaction, after commit (status notifications). */
  onExpired?: (rows: OrderRow[]) => void;
  /** Counts the orders expired. */
  metrics?: OrderMetrics;
}

/** Expires one batch of due orders; returns them. */
export async function expireDue(deps: ExpiryDeps, limit = EXPIRY_BATCH): Promise<OrderRow[]> {
  const expired = await deps.db.transaction(async (trx) => {
    const ids = await repo.lockDueOrders(trx, limit);
    return repo.markExpired(trx, ids, deps.now());
  });
  if (expired.length > 0) {
    deps.metrics?.transitioned("expired", expired.length);
    deps.log.info("orders expired", { orders: expired.length });
    deps.onExpired?.(expired);
    await deps.outbox.publish(expired);
  }
  return expired;
}

export interface ExpiryLoop {
  stop(): Promise<void>;
}

/** Every intervalMs: expire due orders (batch after batch while full), then relay unpublished releases (their outbox rides the same tick). */
export function startExpiryLoop(deps: ExpiryDeps & { intervalMs: number }): ExpiryLoop {
  let stopped = false;
  let timer: NodeJS.Timeout | undefined;
  let running: Promise<void> | undefined;

  async function tick(): Promise<void> {
    try {
      while (!stopped && (await expireDue(deps)).length === EXPIRY_BATCH);
      if (!stopped) await deps.outbox.relay();
    } catch (error) {
      deps.log.warn("order expiry tick failed; retried next tick", { err: errorMessage(error) });
    }
  }

  function schedule(): void {
    if (stopped) return;
    timer = setTimeout(() => {
      running = tick().finally(() => {
        running = undefined;
        schedule();
      });
    }, deps.intervalMs);
  }
  schedule();

  return {
    async stop() {
      stopped = true;
      clearTimeout(timer);
      await running;
    },
  };
}
