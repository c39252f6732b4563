import { describe, expect, it } from "vitest";
import { createDependencyHealth } from "./dependency-health.js";
import { createLogger, quietLogger } from "./log.js";

describe("dependency health", () => {
  it("is SERVING only while every dependency is up, and never again after stop", () => {
    const reported: boolean[] = [];
    const health = createDependencyHealth((s) => reported.push(s), quietLogger());
    health.down("redis");
    health.down("nats");
    health.up("redis");
    expect(health.serving).toBe(false);
    health.up("nats");
    expect(health.serving).toBe(true);
    expect(reported).toEqual([false, false, false, true]);
    let cleaned = false;
    health.onStop(() => (cleaned = true));
    health.stop();
    health.up("redis");
    expect(health.serving).toBe(false);
    expect(reported).toHaveLength(4);
    expect(cleaned).toBe(true);
  });

  it("keeps SERVING while an ungated dependency is down, and logs its loss and return", () => {
    const reported: boolean[] = [];
    const lines: Record<string, unknown>[] = [];
    const log = createLogger({}, "info", (line) => lines.push(JSON.parse(line)));
    const health = createDependencyHealth((s) => reported.push(s), log, new Set(["postgres"]));
    health.down("postgres", "connect ECONNREFUSED");
    expect(health.serving).toBe(true);
    health.down("nats");
    expect(health.serving).toBe(false);
    health.up("nats");
    health.up("postgres");
    expect(reported).toEqual([true, false, true, true]);
    expect(lines.map(({ level, msg, dependency, gatesHealth }) => ({ level, msg, dependency, gatesHealth }))).toEqual([
      { level: "warn", msg: "dependency lost", dependency: "postgres", gatesHealth: false },
      { level: "warn", msg: "dependency lost", dependency: "nats", gatesHealth: undefined },
      { level: "info", msg: "dependency back", dependency: "nats", gatesHealth: undefined },
      { level: "info", msg: "dependency back", dependency: "postgres", gatesHealth: undefined },
    ]);
  });
});
