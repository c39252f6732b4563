// Notices a sale's lost Redis state on its own, within REDIS_CHECK_INTERVAL_MS,
// instead of waiting for the next purchase: every open sale that was loaded
// before is looked at, and one that Redis no longer holds (a restart without
// persistence, a flush) or holds from another Redis server (restored from a
// snapshot or a replica) is rebuilt (lost-sale-rebuild.ts): it fails closed until
// the queue has drained into Postgres, then loads from Postgres. A change of Redis
// server (redis-epoch.ts) triggers a check at once.
import type { Knex } from "knex";
import { Refusal } from "../common/refusal.js";
import type { Logger } from "../common/log.js";
import type { InventoryMetrics } from "../common/metrics.js";
import { poll } from "../common/poll.js";
import type { RedisEpoch } from "./redis-epoch.js";
import { openWarmedSales } from "./sale-repository.js";
import type { SaleService } from "./sales.js";
import type { StockStore } from "./stock-store.js";

export interface RedisLossWatch {
  /** Sales found lost and not rebuilt yet. */
  readonly lost: ReadonlySet<string>;
  /** One pass over the open sales; resolves when it is done. */
  check(): Promise<void>;
  stop(): Promise<void>;
}

export function startRedisLossWatch(deps: {
  db: Knex;
  stock: Pick<StockStore, "live">;
  sales: Pick<SaleService, "warm">;
  epoch: RedisEpoch;
  log: Logger;
  now: () => Date;
  intervalMs: number;
  metrics?: Pick<InventoryMetrics, "redisLostSales">;
}): RedisLossWatch {
  const { stock, log } = deps;
  const lost = new Set<string>();

  async function rebuild(saleId: string): Promise<void> {
    if (!lost.has(saleId)) {
      lost.add(saleId);
      deps.metrics?.redisLostSales(lost.size);
      log.warn("sale's redis state is lost: it refuses purchases until the queue has drained, then is rebuilt from postgres", { saleId });
    }
    try {
      await deps.sales.warm(saleId);
      lost.delete(saleId);
      deps.metrics?.redisLostSales(lost.size);
      log.info("sale rebuilt in redis from postgres", { saleId });
    } catch (error) {
      // Still draining (OVERLOADED): looked at again on the next pass.
      if (!(error instanceof Refusal)) throw error;
    }
  }

  async function pass(): Promise<void> {
    for (const saleId of await openWarmedSales(deps.db, deps.now())) {
      if (lost.has(saleId) || !(await stock.live(saleId)).warm) await rebuild(saleId);
    }
  }

  // A failed pass (Redis or Postgres unreachable: health reports it) is tried again next time.
  const passes = poll(pass, deps.intervalMs, log, "redis state check failed");
  deps.epoch.onChange(() => void passes.run());

  return { lost, check: passes.run, stop: passes.stop };
}
