// Smoke test of the bench's load generator: a few hundred calls against the
// no-op baseline server and against a real test stack, and every call is
// accounted for. It asserts counts only, never speed (benchmarks are not tests).
import { afterAll, beforeAll, describe, expect, it } from "vitest";
import { callUnary } from "@seckill/sdk";
import { readConfig } from "../services/common/config.js";
import { quietLogger } from "../services/common/log.js";
import { eventually, startTestStack, type TestStack } from "../test/support/stack.js";
import { countOf, latencyOf, runLoadInChild } from "./h2-load.js";
import { startNoopServer } from "./noop-server.js";

const SALE_ID = "01KAAAAAAAAAAAAAAAAAAAAAAA";

describe("against the no-op server", () => {
  let noop: Awaited<ReturnType<typeof startNoopServer>>;
  beforeAll(async () => {
    noop = await startNoopServer("127.0.0.1:0", readConfig(), quietLogger());
  });
  afterAll(async () => {
    await noop?.stop();
  });

  it("closed loop: sends exactly the calls asked for, each answered OK and timed", async () => {
    const result = await runLoadInChild({ address: noop.address, saleId: SALE_ID, mode: "closed", connections: 2, streams: 8, calls: 300, tag: "smoke-noop" }, 30_000);
    expect(result.sent).toBe(300);
    expect(result.statuses).toEqual({ OK: 300 });
    expect(latencyOf(result, "OK").count).toBe(300);
    expect(result.window.completed).toEqual({ OK: 300 });
    expect(result.errors).toEqual([]);
  });

  it("open loop: offers no more than the asked rate and accounts for every call", async () => {
    const result = await runLoadInChild(
      { address: noop.address, saleId: SALE_ID, mode: "open", connections: 2, streams: 1, rate: 400, seconds: 1, warmupSeconds: 0, poolSize: 2000, tag: "smoke-open" },
      30_000,
    );
    expect(result.sent).toBeGreaterThan(0);
    expect(result.sent + result.notSent).toBeLessThanOrEqual(401);
    expect(countOf(result)).toBe(result.sent);
    expect(result.statuses.OK).toBe(result.sent);
  });
});

describe("against a real stack", () => {
  let stack: TestStack;
  beforeAll(async () => {
    stack = await startTestStack();
  });
  afterAll(async () => {
    await stack?.stop();
  });

  it("unique buyers: exactly the stock is sold, the rest hear SOLD_OUT, and every order is distinct", async () => {
    const sale = await stack.createSale({ totalStock: 100, perUserLimit: 1 });
    const result = await runLoadInChild(
      { address: stack.order.address, saleId: sale.saleId, mode: "closed", connections: 2, streams: 8, calls: 300, tag: "smoke-stack" },
      30_000,
    );
    const ok = result.statuses.OK ?? 0;
    const soldOut = result.statuses.FAILED_PRECONDITION ?? 0;
    expect(result.sent).toBe(300);
    expect(ok).toBe(100);
    expect(ok + soldOut).toBe(result.sent);
    expect(result.reasons).toEqual({ SOLD_OUT: soldOut });
    expect(result.lastOkAt).toBeGreaterThan(0);

    const { stockLeft } = await callUnary(stack.inventoryClient, "getStock", { saleId: sale.saleId });
    expect(stockLeft).toBe(0);
    await eventually(async () => (await stack.db("sales").where({ id: sale.saleId }).first("sold")).sold === ok, 10_000, "the orders in Postgres");
    const [row] = await stack.db("orders")
      .where({ sale_id: sale.saleId })
      .select(stack.db.raw("count(*)::int AS n, count(DISTINCT id)::int AS ids, count(DISTINCT user_id)::int AS users, count(DISTINCT request_id)::int AS requests"));
    expect(row).toEqual({ n: ok, ids: ok, users: ok, requests: ok });
  });
});
