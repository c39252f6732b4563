// The rules hash as inventory writes it and the gateway reads it: a real Redis,
// inventory's own stock store loading and closing a sale, and the reader the
// gateway's kill switch uses.
import { Redis } from "ioredis";
import { afterAll, beforeAll, describe, expect, it } from "vitest";
import { cleanNamespace, isolatedConfig } from "../../test/support/stack.js";
import { parseRunId } from "../inventory/redis-epoch.js";
import { createRedisStockStore, saleKeys, type SaleRules, type StockStore } from "../inventory/stock-store.js";
import type { Config } from "./config.js";
import { ulid } from "./ids.js";
import { readSaleOver, saleRulesKey } from "./sale-rules.js";

const NOW = Date.UTC(2030, 0, 1, 12, 0, 0);
const rules = (overrides: Partial<SaleRules> = {}): SaleRules => ({
  startsAtMs: NOW - 60_000,
  endsAtMs: NOW + 3600_000,
  closedAtMs: 0,
  perUserLimit: 1,
  totalStock: 10,
  releasePolicy: "RESTORE",
  ...overrides,
});

let config: Config;
let redis: Redis;
let store: StockStore;

beforeAll(async () => {
  config = await isolatedConfig();
  redis = new Redis(config.redisUrl);
  const runId = parseRunId(await redis.info("server"));
  // The connected server's run id, for a store that is given it rather than reading it in its scripts.
  const createStore = createRedisStockStore as (redis: Redis, namespace: string, epoch: () => string | undefined) => StockStore;
  store = createStore(redis, config.namespace, () => runId);
});

afterAll(async () => {
  redis?.disconnect();
  if (config) await cleanNamespace(config);
});

describe("a sale's rules in Redis", () => {
  it("are the key inventory's store keeps the sale's rules under", () => {
    const id = ulid(NOW);
    expect(saleKeys(config.namespace, id).rules).toBe(saleRulesKey(config.namespace, id));
  });

  it("read as over once inventory closes the sale, and not before", async () => {
    const id = ulid(NOW);
    expect(await readSaleOver(redis, config.namespace, id, NOW)).toBe(false); // not loaded: not judged
    await store.load(id, rules(), 10, []);
    expect(await readSaleOver(redis, config.namespace, id, NOW)).toBe(false);
    expect(await store.close(id, NOW)).toBe(NOW);
    expect(await readSaleOver(redis, config.namespace, id, NOW)).toBe(true);
  });

  it("read as over from the sale's end, as inventory loaded it", async () => {
    const id = ulid(NOW + 1);
    await store.load(id, rules({ endsAtMs: NOW + 1000 }), 10, []);
    expect(await readSaleOver(redis, config.namespace, id, NOW + 999)).toBe(false);
    expect(await readSaleOver(redis, config.namespace, id, NOW + 1000)).toBe(true);
  });

  it("read as over when loaded closed", async () => {
    const id = ulid(NOW + 2);
    await store.load(id, rules({ closedAtMs: NOW - 5 }), 10, []);
    expect(await readSaleOver(redis, config.namespace, id, NOW)).toBe(true);
  });
});
