// The RateLimitService as Envoy's global rate limit filter calls it: a real
// gateway on a loopback port, real Redis, and a client built from the same
// Envoy protos sending Envoy-shaped requests (domain "seckill", descriptors
// of entries, hits_addend).
import { setTimeout as sleep } from "node:timers/promises";
import { mkdtempSync, writeFileSync } from "node:fs";
import { createServer, connect, type Server, type Socket } from "node:net";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { fileURLToPath } from "node:url";
import { credentials, loadPackageDefinition, status, type Client, type ClientDuplexStream, type ServiceClientConstructor, type ServiceError } from "@grpc/grpc-js";
import * as protoLoader from "@grpc/proto-loader";
import { Redis } from "ioredis";
import { afterAll, beforeAll, describe, expect, it } from "vitest";
import type { Config } from "../../services/common/config.js";
import { quietLogger } from "../../services/common/log.js";
import { saleRulesKey } from "../../services/common/sale-rules.js";
import { sample } from "../../test/support/prometheus.js";
import { address, shouldRateLimit, user, type EnvoyRequest } from "../../test/support/rate-limit.js";
import { cleanNamespace, eventually, isolatedConfig } from "../../test/support/stack.js";
import { checkHealth } from "../../tools/stack/health.js";
import { startGateway, type GatewayApp } from "../app.js";
import { rateLimitServiceClient, type RateLimitResponse } from "./envoy-protos.js";

const LIMITS = `
domain: seckill
descriptors:
  - key: user_id
    rate_limit: { unit: minute, requests_per_unit: 3 }
  - key: remote_address
    rate_limit: { unit: second, requests_per_unit: 5 }
  - key: sale_id
    descriptors:
      - key: user_id
        rate_limit: { unit: minute, requests_per_unit: 2, name: purchases }
`;

const saleUser = (sale: string, id: string) => ({
  entries: [
    { key: "sale_id", value: sale },
    { key: "user_id", value: id },
  ],
});

async function refusal(promise: Promise<unknown>): Promise<ServiceError> {
  try {
    await promise;
  } catch (error) {
    return error as ServiceError;
  }
  throw new Error("the call succeeded");
}

const headers = (response: RateLimitResponse) => Object.fromEntries(response.response_headers_to_add.map((h) => [h.key, h.value]));

// A fixed clock in the middle of a minute: 12.5 s into it, so a minute window has 47.5 s left.
const MINUTE_START = Date.UTC(2030, 0, 1, 12, 0, 0);
let now = MINUTE_START + 12_500;

let config: Config;
let gateway: GatewayApp;
let client: Client;
let redis: Redis;
let dir: string;

beforeAll(async () => {
  dir = mkdtempSync(join(tmpdir(), "seckill-ratelimit-"));
  writeFileSync(join(dir, "ratelimit.yaml"), LIMITS);
  config = await isolatedConfig({ GATEWAY_ADDR: "127.0.0.1:0", RATE_LIMIT_CONFIG: join(dir, "ratelimit.yaml") });
  gateway = await startGateway(config, quietLogger(), { access: false, clock: () => now });
  const RateLimitService = rateLimitServiceClient();
  client = new RateLimitService(gateway.address, credentials.createInsecure());
  redis = new Redis(config.redisUrl);
});

afterAll(async () => {
  client?.close();
  await gateway?.stop();
  redis?.disconnect();
  if (config) await cleanNamespace(config);
});

const windowKey = (path: string, windowStartMs: number) => `${config.namespace}:rl:seckill:${path}:${windowStartMs / 1000}`;

describe("RateLimitService/ShouldRateLimit", () => {
  it("answers OK under the limit with the descriptor's limit, what remains, the reset and the draft headers", async () => {
    const response = await shouldRateLimit(client, { domain: "seckill", descriptors: [user("alice")] });
    expect(response.overall_code).toBe("OK");
    expect(response.statuses).toEqual([
      {
        code: "OK",
        current_limit: { name: "", requests_per_unit: 3, unit: "MINUTE" },
        limit_remaining: 2,
        duration_until_reset: { seconds: 47, nanos: 500_000_000 },
        quota: null,
      },
    ]);
    expect(headers(response)).toEqual({ "ratelimit-limit": "3, 3;w=60", "ratelimit-remaining": "2", "ratelimit-reset": "48" });
    // One counter for alice's current minute, expiring after it.
    const key = windowKey("user_id=alice", MINUTE_START);
    expect(await redis.get(key)).toBe("1");
    const ttl = await redis.pttl(key);
    expect(ttl).toBeGreaterThan(47_500);
    expect(ttl).toBeLessThanOrEqual(48_500);
  });

  it("answers OVER_LIMIT once the limit is passed, and OK again in the next window", async () => {
    const remaining: number[] = [];
    for (let i = 0; i < 2; i++) {
      const r = await shouldRateLimit(client, { domain: "seckill", descriptors: [user("bob")] });
      expect(r.overall_code).toBe("OK");
      remaining.push(r.statuses[0]!.limit_remaining);
    }
    const third = await shouldRateLimit(client, { domain: "seckill", descriptors: [user("bob")] });
    expect(third.overall_code).toBe("OK");
    expect([...remaining, third.statuses[0]!.limit_remaining]).toEqual([2, 1, 0]);

    const over = await shouldRateLimit(client, { domain: "seckill", descriptors: [user("bob")] });
    expect(over.overall_code).toBe("OVER_LIMIT");
    expect(over.statuses[0]).toMatchObject({ code: "OVER_LIMIT", limit_remaining: 0, current_limit: { requests_per_unit: 3, unit: "MINUTE" } });
    expect(headers(over)).toEqual({ "ratelimit-limit": "3, 3;w=60", "ratelimit-remaining": "0", "ratelimit-reset": "48" });
    // Another user is not affected.
    expect((await shouldRateLimit(client, { domain: "seckill", descriptors: [user("carol")] })).overall_code).toBe("OK");

    const saved = now;
    try {
      now = MINUTE_START + 60_000 + 100; // the next minute
      const next = await shouldRateLimit(client, { domain: "seckill", descriptors: [user("bob")] });
      expect(next.overall_code).toBe("OK");
      expect(next.statuses[0]).toMatchObject({ code: "OK", limit_remaining: 2, duration_until_reset: { seconds: 59, nanos: 900_000_000 } });
      expect(await redis.get(windowKey("user_id=bob", MINUTE_START + 60_000))).toBe("1");
    } finally {
      now = saved;
    }
  });

  it("counts each descriptor of a request on its own, hits_addend included, and reports each one's status", async () => {
    // What Redis is sent for this namespace: per-key commands, so each counter may live on its own Redis Cluster slot.
    const monitor = await redis.monitor();
    const sent: string[][] = [];
    monitor.on("monitor", (_time: string, args: string[]) => {
      if (args.some((a) => a.startsWith(`${config.namespace}:rl:`))) sent.push(args);
    });
    // Envoy's three descriptors on a PlaceOrder call, the request weighing 3 hits.
    const response = await shouldRateLimit(client, {
      domain: "seckill",
      descriptors: [user("dave"), address("10.0.0.7"), saleUser("01SALE", "dave")],
      hits_addend: 3,
    });
    const keys = [windowKey("user_id=dave", MINUTE_START), windowKey("remote_address=10.0.0.7", MINUTE_START + 12_000), windowKey("sale_id=01SALE/user_id=dave", MINUTE_START)];
    await eventually(async () => sent.length >= 6, 5000, "the counters' commands in MONITOR");
    monitor.disconnect();
    // INCRBY by the hits, then PEXPIRE to the end of the window and a second, on each counter alone: no script, no command over several keys.
    expect(sent.map((args) => [args[0]!.toLowerCase(), args[1]])).toEqual(
      keys.flatMap((key) => [
        ["incrby", key],
        ["pexpire", key],
      ]),
    );
    expect(sent.filter((args) => args[0]!.toLowerCase() === "incrby").map((args) => args[2])).toEqual(["3", "3", "3"]);
    expect(sent.filter((args) => args[0]!.toLowerCase() === "pexpire").map((args) => Number(args[2]))).toEqual([48_500, 1500, 48_500]);
    expect(response.overall_code).toBe("OVER_LIMIT");
    expect(response.statuses.map((s) => [s.code, s.limit_remaining, s.current_limit?.unit])).toEqual([
      ["OK", 0, "MINUTE"], // 3 of 3
      ["OK", 2, "SECOND"], // 3 of 5
      ["OVER_LIMIT", 0, "MINUTE"], // 3 of 2
    ]);
    expect(response.statuses[2]!.current_limit).toEqual({ name: "purchases", requests_per_unit: 2, unit: "MINUTE" });
    // The headers describe the tightest limit and list every limit that applied.
    expect(headers(response)["ratelimit-limit"]).toBe('3, 3;w=60, 5;w=1, 2;w=60;name="purchases"');
    expect(headers(response)["ratelimit-remaining"]).toBe("0");
    expect(await redis.mget(...keys)).toEqual(["3", "3", "3"]);

    // The address alone still has room; dave in another sale too.
    const other = await shouldRateLimit(client, { domain: "seckill", descriptors: [address("10.0.0.7"), saleUser("02SALE", "dave")] });
    expect(other.overall_code).toBe("OK");
    expect(other.statuses.map((s) => s.limit_remaining)).toEqual([1, 1]);
  });

  it("allows descriptors no rule matches, without counting them", async () => {
    const response = await shouldRateLimit(client, {
      domain: "seckill",
      descriptors: [{ entries: [{ key: "path", value: "/seckill.v1.SaleService/GetSale" }] }, { entries: [{ key: "sale_id", value: "03SALE" }] }],
    });
    expect(response.overall_code).toBe("OK");
    expect(response.statuses).toEqual([
      { code: "OK", current_limit: null, limit_remaining: 0, duration_until_reset: null, quota: null },
      { code: "OK", current_limit: null, limit_remaining: 0, duration_until_reset: null, quota: null },
    ]);
    expect(response.response_headers_to_add).toEqual([]);
    // Another domain has no rules at all.
    const elsewhere = await shouldRateLimit(client, { domain: "other", descriptors: [user("erin")] });
    expect(elsewhere.overall_code).toBe("OK");
    expect(elsewhere.statuses[0]!.current_limit).toBeNull();
    expect(await redis.keys(`${config.namespace}:rl:*03SALE*`)).toEqual([]);
    expect(await redis.keys(`${config.namespace}:rl:other:*`)).toEqual([]);
  });

  it("refuses malformed requests with INVALID_ARGUMENT and writes nothing", async () => {
    const cases: [EnvoyRequest, RegExp][] = [
      [{ domain: "", descriptors: [user("frank")] }, /domain: is required/],
      [{ domain: "seckill", descriptors: [] }, /descriptors: at least one descriptor/],
      [{ domain: "seckill", descriptors: [user("frank"), { entries: [] }] }, /descriptors\[1\]\.entries: at least one entry/],
      [{ domain: "seckill", descriptors: [user("frank"), { entries: [{ key: "user_id", value: "" }] }] }, /descriptors\[1\]\.entries\[0\]\.value: is required/],
    ];
    for (const [request, message] of cases) {
      const error = await refusal(shouldRateLimit(client, request));
      expect(error.code).toBe(status.INVALID_ARGUMENT);
      expect(error.details).toMatch(message);
    }
    expect(await redis.keys(`${config.namespace}:rl:*frank*`)).toEqual([]);
  });

  it("serves health and describes the RateLimitService by reflection", async () => {
    expect(await checkHealth(gateway.address, "envoy.service.ratelimit.v3.RateLimitService", 3000)).toBe("SERVING");
    const listed = await reflect(gateway.address, { list_services: "" });
    expect(listed.list_services_response?.service.map((s) => s.name)).toEqual(expect.arrayContaining(["envoy.service.ratelimit.v3.RateLimitService", "grpc.health.v1.Health"]));
    const files = await reflect(gateway.address, { file_containing_symbol: "envoy.service.ratelimit.v3.RateLimitService" });
    expect(files.error_response).toBeUndefined();
    expect(files.file_descriptor_response?.file_descriptor_proto.length).toBeGreaterThan(0);
  });
});

describe("the gateway's start and failures", () => {
  it("does not start with a bad rate limit file, and names the line and field", async () => {
    const bad = join(dir, "bad.yaml");
    writeFileSync(bad, "domain: seckill\ndescriptors:\n  - key: user_id\n    rate_limit: { unit: fortnight, requests_per_unit: 3 }\n");
    const badConfig = { ...config, rateLimitConfig: bad };
    await expect(startGateway(badConfig, quietLogger(), { access: false })).rejects.toThrow(
      `invalid rate limit config ${bad}:\n  ${bad}:4:25: descriptors[0].rate_limit.unit: expected second, minute, hour or day, got "fortnight"`,
    );
  });

  it("answers UNAVAILABLE at once while Redis is unreachable (Envoy then lets the call through), and counts again once it is back", async () => {
    const proxy = await startProxy(new URL(config.redisUrl));
    const viaProxy = await startGateway({ ...config, redisUrl: `redis://127.0.0.1:${proxy.port}` }, quietLogger(), { access: false, clock: () => now });
    const RateLimitService = rateLimitServiceClient();
    const c = new RateLimitService(viaProxy.address, credentials.createInsecure());
    try {
      expect((await shouldRateLimit(c, { domain: "seckill", descriptors: [user("gina")] })).overall_code).toBe("OK");
      await proxy.cut();
      // Not queued behind the dead link until the command timeout (2 s): refused, well within this deadline.
      const error = await refusal(shouldRateLimit(c, { domain: "seckill", descriptors: [user("gina")] }, 1500));
      expect(error.code).toBe(status.UNAVAILABLE);
      expect(error.details).toMatch(/rate limit counters unavailable/);
      // Unlimited descriptors need no Redis.
      expect((await shouldRateLimit(c, { domain: "seckill", descriptors: [{ entries: [{ key: "path", value: "/" }] }] })).overall_code).toBe("OK");
      await proxy.restore();
      await eventuallyOk(() => shouldRateLimit(c, { domain: "seckill", descriptors: [user("gina")] }));
      expect(Number(await redis.get(windowKey("user_id=gina", MINUTE_START)))).toBeGreaterThanOrEqual(2);
    } finally {
      c.close();
      await viaProxy.stop();
      await proxy.close();
    }
  });
});

interface ReflectionResponse {
  list_services_response?: { service: { name: string }[] };
  file_descriptor_response?: { file_descriptor_proto: Buffer[] };
  error_response?: { error_code: number; error_message: string };
}

/** One request on the server reflection stream, one answer. */
function reflect(address: string, request: Record<string, string>): Promise<ReflectionResponse> {
  const file = fileURLToPath(new URL("../../node_modules/@grpc/reflection/build/proto/grpc/reflection/v1/reflection.proto", import.meta.url));
  const root = loadPackageDefinition(protoLoader.loadSync(file, { keepCase: true, defaults: false, oneofs: true })) as unknown as {
    grpc: { reflection: { v1: { ServerReflection: ServiceClientConstructor } } };
  };
  const reflection = new root.grpc.reflection.v1.ServerReflection(address, credentials.createInsecure()) as unknown as Client & {
    ServerReflectionInfo(options: { deadline: number }): ClientDuplexStream<Record<string, string>, ReflectionResponse>;
  };
  return new Promise<ReflectionResponse>((resolve, reject) => {
    const call = reflection.ServerReflectionInfo({ deadline: Date.now() + 5000 });
    call.on("data", (response: ReflectionResponse) => {
      resolve(response);
      call.end();
    });
    call.on("error", reject);
    call.write(request);
  }).finally(() => reflection.close());
}

async function eventuallyOk(call: () => Promise<RateLimitResponse>, timeoutMs = 15_000): Promise<RateLimitResponse> {
  const deadline = Date.now() + timeoutMs;
  for (;;) {
    try {
      return await call();
    } catch (error) {
      if (Date.now() > deadline) throw error;
      await sleep(100);
    }
  }
}

/** A TCP relay to Redis that can be cut (connections reset, new ones refused) and restored. */
async function startProxy(target: URL): Promise<{ port: number; cut(): Promise<void>; restore(): Promise<void>; close(): Promise<void> }> {
  const sockets = new Set<Socket>();
  let port = 0;
  let server: Server | undefined;
  const listen = () =>
    new Promise<void>((resolve, reject) => {
      server = createServer((downstream) => {
        const upstream = connect(Number(target.port || 6379), target.hostname);
        for (const s of [downstream, upstream]) {
          sockets.add(s);
          s.on("close", () => sockets.delete(s));
          s.on("error", () => undefined);
        }
        downstream.pipe(upstream).pipe(downstream);
      });
      server.once("error", reject);
      server.listen(port, "127.0.0.1", () => {
        port = (server!.address() as { port: number }).port;
        resolve();
      });
    });
  const stop = async () => {
    const closed = server ? new Promise((r) => server!.close(r)) : Promise.resolve();
    for (const s of sockets) s.destroy();
    await closed;
    server = undefined;
  };
  await listen();
  return { port, cut: stop, restore: listen, close: stop };
}

describe("the kill switch: a closed sale is over the limit at the edge", () => {
  const SALE = "01KC5ED0000000000000000SAE";
  const rules = () => saleRulesKey(config.namespace, SALE);

  it("refuses every purchase of a sale once it is closed or has ended, and no other", async () => {
    await redis.hset(rules(), "starts", now - 60_000, "ends", now + 3600_000, "closed", 0);
    const open = await shouldRateLimit(client, { domain: "seckill", descriptors: [saleUser(SALE, "kim"), user("kim")] });
    expect(open.overall_code).toBe("OK");

    await redis.hset(rules(), "closed", now); // what `seckill sale close` writes
    const closed = await shouldRateLimit(client, { domain: "seckill", descriptors: [saleUser(SALE, "lee"), user("lee")] });
    expect(closed.overall_code).toBe("OVER_LIMIT");
    expect(closed.statuses[0]).toMatchObject({ code: "OVER_LIMIT", current_limit: { name: "sale_closed", requests_per_unit: 0 }, limit_remaining: 0 });
    expect(closed.statuses[1].code).toBe("OK"); // the user's own limit is not what refused it
    // Another sale (not loaded here) and plain user descriptors are not affected.
    const other = await shouldRateLimit(client, { domain: "seckill", descriptors: [saleUser("01K07HER0000000000000000SA", "lee")] });
    expect(other.overall_code).toBe("OK");

    await redis.hset(rules(), "closed", 0, "ends", now - 1);
    expect((await shouldRateLimit(client, { domain: "seckill", descriptors: [saleUser(SALE, "max")] })).overall_code).toBe("OVER_LIMIT");
  });
});

describe("the over-limit cache: a counter over its limit is refused without Redis until its window ends", () => {
  const cachedAnswers = async () => sample(await gateway.metrics!.registry.metrics(), "seckill_ratelimit_over_limit_cached_total") ?? 0;

  it("answers OVER_LIMIT from the cache once Redis said the counter is over, and counts again in the next window", async () => {
    for (let i = 0; i < 3; i++) expect((await shouldRateLimit(client, { domain: "seckill", descriptors: [user("olive")] })).overall_code).toBe("OK");
    const over = await shouldRateLimit(client, { domain: "seckill", descriptors: [user("olive")] });
    expect(over.overall_code).toBe("OVER_LIMIT");
    const key = windowKey("user_id=olive", MINUTE_START);
    expect(await redis.get(key)).toBe("4");

    // Redis forgetting the counter changes nothing: the answer comes from the cache, and nothing is counted.
    await redis.del(key);
    const before = await cachedAnswers();
    const cached = await shouldRateLimit(client, { domain: "seckill", descriptors: [user("olive")] });
    expect(cached).toEqual(over);
    expect(await redis.exists(key)).toBe(0);
    expect(await cachedAnswers()).toBe(before + 1);

    // Another descriptor of the same call is still counted in Redis.
    const mixed = await shouldRateLimit(client, { domain: "seckill", descriptors: [user("olive"), address("10.0.0.9")] });
    expect(mixed.statuses.map((s) => [s.code, s.limit_remaining])).toEqual([
      ["OVER_LIMIT", 0],
      ["OK", 4],
    ]);
    expect(await redis.exists(key)).toBe(0);
    expect(await cachedAnswers()).toBe(before + 2);

    const saved = now;
    try {
      now = MINUTE_START + 60_000 + 100; // the next minute: a new counter
      const next = await shouldRateLimit(client, { domain: "seckill", descriptors: [user("olive")] });
      expect(next.statuses[0]).toMatchObject({ code: "OK", limit_remaining: 2 });
      expect(await cachedAnswers()).toBe(before + 2);
    } finally {
      now = saved;
    }
  });

  it("remembers nothing with RATE_LIMIT_LOCAL_CACHE_KEYS=0: every check is counted in Redis", async () => {
    const uncached = await startGateway({ ...config, rateLimitLocalCacheKeys: 0 }, quietLogger(), { access: false, clock: () => now });
    const RateLimitService = rateLimitServiceClient();
    const c = new RateLimitService(uncached.address, credentials.createInsecure());
    try {
      const codes: string[] = [];
      for (let i = 0; i < 5; i++) codes.push((await shouldRateLimit(c, { domain: "seckill", descriptors: [user("pat")] })).overall_code);
      expect(codes).toEqual(["OK", "OK", "OK", "OVER_LIMIT", "OVER_LIMIT"]);
      expect(await redis.get(windowKey("user_id=pat", MINUTE_START))).toBe("5");
    } finally {
      c.close();
      await uncached.stop();
    }
  });
});
