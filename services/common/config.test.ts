import { describe, expect, it } from "vitest";
import { ConfigError, readConfig } from "./config.js";

describe("readConfig", () => {
  it("has working defaults for a local machine", () => {
    const config = readConfig({});
    expect(config.namespace).toBe("seckill");
    expect(config.databaseUrl).toBe("postgres://seckill:seckill@127.0.0.1:5432/seckill");
    expect(config.orderAddr).toBe("127.0.0.1:50052");
    expect(config.writerBatchSize).toBe(500);
  });

  it("reads numbers and names every bad value at once", () => {
    expect(readConfig({ WRITER_BATCH_SIZE: "1000" }).writerBatchSize).toBe(1000);
    try {
      readConfig({ CALL_DEADLINE_MS: "abc", REDIS_URL: "http://x", SECKILL_NAMESPACE: "Bad.Name", WRITER_CONCURRENCY: "0" });
      expect.unreachable();
    } catch (error) {
      expect(error).toBeInstanceOf(ConfigError);
      const problems = (error as ConfigError).problems.join("\n");
      expect(problems).toMatch(/CALL_DEADLINE_MS/);
      expect(problems).toMatch(/REDIS_URL/);
      expect(problems).toMatch(/SECKILL_NAMESPACE/);
      expect(problems).toMatch(/WRITER_CONCURRENCY/);
    }
  });

  it("refuses numbers with junk, fractions and out-of-range values", () => {
    for (const bad of ["12ms", "1.5", "-1", "99999999999"]) {
      expect(() => readConfig({ CALL_DEADLINE_MS: bad })).toThrow(/CALL_DEADLINE_MS/);
    }
  });

  it("refuses addresses without a port and unknown log levels", () => {
    expect(() => readConfig({ ORDER_ADDR: "localhost" })).toThrow(/ORDER_ADDR/);
    expect(() => readConfig({ LOG_LEVEL: "verbose" })).toThrow(/LOG_LEVEL/);
  });
});

describe("readConfig: expiry and the release relay", () => {
  it("defaults to a tick a second and a relay after five seconds, and reads overrides", () => {
    expect(readConfig({})).toMatchObject({ expiryIntervalMs: 1000, releaseRelayAfterMs: 5000 });
    expect(readConfig({ EXPIRY_INTERVAL_MS: "250", RELEASE_RELAY_AFTER_MS: "0" })).toMatchObject({ expiryIntervalMs: 250, releaseRelayAfterMs: 0 });
    expect(() => readConfig({ EXPIRY_INTERVAL_MS: "0" })).toThrow(/EXPIRY_INTERVAL_MS/);
  });
});

describe("readConfig: NATS servers and JetStream replicas", () => {
  it("takes one NATS URL or a comma-separated list of a cluster's servers", () => {
    expect(readConfig({ NATS_URL: "nats://10.0.0.1:4222,nats://10.0.0.2:4222" }).natsUrl).toBe("nats://10.0.0.1:4222,nats://10.0.0.2:4222");
    expect(() => readConfig({ NATS_URL: "nats://10.0.0.1:4222,http://10.0.0.2:4222" })).toThrow(/NATS_URL/);
    expect(() => readConfig({ NATS_URL: "nats://10.0.0.1:4222," })).toThrow(/NATS_URL/);
  });

  it("keeps one copy of each stream by default, and takes an odd count up to 5", () => {
    expect(readConfig({}).jetStreamReplicas).toBe(1);
    expect(readConfig({ JETSTREAM_REPLICAS: "3" }).jetStreamReplicas).toBe(3);
    for (const bad of ["0", "2", "4", "7", "three"]) expect(() => readConfig({ JETSTREAM_REPLICAS: bad })).toThrow(/JETSTREAM_REPLICAS/);
  });
});
