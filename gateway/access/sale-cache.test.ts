// The gateway's sale cache against a real Postgres whose database stops
// taking connections: the last good read is served for a while (token
// issuance must not stop the sale when Postgres does), a failure with nothing
// to fall back on is the answer for a moment, and reads resume afterwards.
import { afterAll, beforeAll, describe, expect, it } from "vitest";
import { createDb, dropDatabase, ensureDatabase, migrate, type Db } from "../../services/common/db.js";
import { ulid } from "../../services/common/ids.js";
import { quietLogger } from "../../services/common/log.js";
import { insertSale } from "../../services/inventory/sale-repository.js";
import { validateCreateSale } from "../../services/inventory/sales.js";
import { saleRequest } from "../../tools/stack/fixtures.js";
import { isolatedConfig } from "../../test/support/stack.js";
import type { Config } from "../../services/common/config.js";
import { startTcpProxy } from "../../tools/chaos/tcp-proxy.js";
import { createSaleCache, FAILED_READ_TTL_MS } from "./sale-cache.js";

const TTL_MS = 1000;
const STALE_MS = 60_000;

let config: Config;
let db: Db;
let admin: Db;
let dbName: string;
let saleId: string;
beforeAll(async () => {
  config = await isolatedConfig();
  await ensureDatabase(config.databaseAdminUrl, config.databaseUrl);
  db = createDb(config.databaseUrl, 2, quietLogger());
  await migrate(db);
  admin = createDb(config.databaseAdminUrl, 1);
  dbName = new URL(config.databaseUrl).pathname.slice(1);
  saleId = ulid();
  await insertSale(db, { ...validateCreateSale(saleRequest()), id: saleId });
});
afterAll(async () => {
  await allowConnections(true).catch(() => undefined);
  await db?.destroy();
  await admin?.destroy();
  if (config) await dropDatabase(config.databaseAdminUrl, dbName);
});

/** Postgres refuses new connections to the test database (and ends the open ones), or takes them again. */
async function allowConnections(allow: boolean): Promise<void> {
  await admin.raw(`ALTER DATABASE "${dbName}" ALLOW_CONNECTIONS ${allow ? "true" : "false"}`);
  if (!allow) await admin.raw("SELECT pg_terminate_backend(pid) FROM pg_stat_activity WHERE datname = ? AND pid <> pg_backend_pid()", [dbName]);
}

const soldIn = (sale: Awaited<ReturnType<ReturnType<typeof createSaleCache>["get"]>>) => sale?.row.sold;

describe("the sale cache while Postgres does not answer", () => {
  it("serves the last good read for up to staleMs when reads fail, answers a failure for a moment when it has nothing, and reads again afterwards", async () => {
    let now = 1_000_000;
    const cache = createSaleCache(db, { ttlMs: TTL_MS, staleMs: STALE_MS, maxEntries: 100, nowMs: () => now });
    expect(soldIn(await cache.get(saleId))).toBe(0);
    const unknown = ulid();
    expect(await cache.get(unknown)).toBeUndefined();
    await db("sales").where({ id: saleId }).update({ sold: 3 }); // what a read that worked would see

    await allowConnections(false);
    try {
      now += TTL_MS;
      // The read fails: the last good one (sold 0, not 3) is served, and used until the next ttl.
      const stale = cache.get(saleId);
      expect(soldIn(await stale)).toBe(0);
      expect(cache.get(saleId)).toBe(stale);
      expect(await cache.get(unknown)).toBeUndefined(); // "no such sale" is a good read too

      // A sale never read before: the failure is the answer, the same one for FAILED_READ_TTL_MS, then it is read again.
      const never = ulid();
      const failed = cache.get(never);
      await expect(failed).rejects.toThrow();
      expect(cache.get(never)).toBe(failed);
      now += FAILED_READ_TTL_MS;
      const again = cache.get(never);
      expect(again).not.toBe(failed);
      await expect(again).rejects.toThrow();

      // Past staleMs the last good read is too old to serve.
      now += STALE_MS;
      await expect(cache.get(saleId)).rejects.toThrow();
    } finally {
      await allowConnections(true);
    }
    now += TTL_MS;
    expect(soldIn(await cache.get(saleId))).toBe(3);
  });

  it("serves the last good read when a read hangs (Postgres paused or cut off), without waiting for it", async () => {
    const proxy = await startTcpProxy({ target: new URL(config.databaseUrl).host });
    const url = new URL(config.databaseUrl);
    url.host = proxy.address;
    const proxied = createDb(url.toString(), 2, quietLogger());
    try {
      let now = 1_000_000;
      const cache = createSaleCache(proxied, { ttlMs: TTL_MS, staleMs: STALE_MS, maxEntries: 100, nowMs: () => now });
      expect((await cache.get(saleId))?.row.id).toBe(saleId);
      proxy.blackhole(); // nothing passes: the next read neither answers nor fails
      now += TTL_MS;
      let healed = false;
      const served = await cache.get(saleId).finally(() => expect(healed).toBe(false));
      expect(served?.row.id).toBe(saleId);
      healed = true;
      proxy.heal();
    } finally {
      proxy.heal();
      await proxied.destroy();
      await proxy.close();
    }
  });
});
