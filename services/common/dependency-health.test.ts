import { describe, expect, it } from "vitest";
import { createDependencyHealth } from "./dependency-health.js";
import { quietLogger } from "./log.js";

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
});
