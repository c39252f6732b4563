// Health as a set of components: a server is SERVING only while every
// dependency its main path needs is connected, and stays NOT_SERVING once
// shutdown began. A dependency it can do without for that path (Postgres, for
// the purchase path of inventory, order and the gateway) is watched and logged
// but does not gate health: every replica shares it, so reporting it would
// take them all out of their load balancer at once and stop what still works.
import type { NatsConnection } from "@nats-io/transport-node";
import type { RedisClient } from "./redis.js";
import type { Knex } from "knex";
import type { Logger } from "./log.js";

/** The names the watchers below report under. */
export type HealthDependency = "redis" | "nats" | "postgres";

export interface DependencyHealth {
  up(name: string): void;
  down(name: string, why?: string): void;
  readonly serving: boolean;
  /** Stops watching; health is left to the shutdown path. */
  stop(): void;
  /** Registers clean-up to run on stop(). */
  onStop(fn: () => void): void;
}

/** `ungated`: dependencies watched and logged when lost and back, without deciding SERVING. */
export function createDependencyHealth(setServing: (serving: boolean) => void, log: Logger, ungated: ReadonlySet<string> = new Set()): DependencyHealth {
  const down = new Set<string>();
  const ungatedDown = new Set<string>();
  const stoppers: (() => void)[] = [];
  let stopped = false;
  const publish = () => {
    if (!stopped) setServing(down.size === 0);
  };
  const health: DependencyHealth = {
    up(name) {
      if (stopped) return;
      const lost = ungated.has(name) ? ungatedDown : down;
      if (lost.delete(name)) log.info("dependency back", { dependency: name });
      publish();
    },
    down(name, why) {
      if (stopped) return;
      const lost = ungated.has(name) ? ungatedDown : down;
      if (!lost.has(name)) log.warn("dependency lost", { dependency: name, why, ...(ungated.has(name) && { gatesHealth: false }) });
      lost.add(name);
      publish();
    },
    get serving() {
      return !stopped && down.size === 0;
    },
    stop() {
      stopped = true;
      for (const fn of stoppers.splice(0)) fn();
    },
    onStop(fn) {
      stoppers.push(fn);
    },
  };
  return health;
}

export function watchRedis(redis: RedisClient, health: DependencyHealth): void {
  redis.on("ready", () => health.up("redis"));
  redis.on("close", () => health.down("redis", "connection closed"));
}

export function watchNats(nc: NatsConnection, health: DependencyHealth): void {
  (async () => {
    for await (const s of nc.status()) {
      if (s.type === "disconnect") health.down("nats", "disconnected");
      else if (s.type === "reconnect") health.up("nats");
    }
  })().catch(() => undefined);
}

/** How often watchPostgres pings Postgres. */
export const POSTGRES_PING_MS = 5000;

/** Postgres has no connection events at the pool level: ping it on a timer. */
export function watchPostgres(db: Knex, health: DependencyHealth, intervalMs = POSTGRES_PING_MS): void {
  const timer = setInterval(() => {
    db.raw("SELECT 1").then(
      () => health.up("postgres"),
      (error: Error) => health.down("postgres", error.message),
    );
  }, intervalMs);
  timer.unref();
  health.onStop(() => clearInterval(timer));
}
