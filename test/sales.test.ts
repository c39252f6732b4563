// SaleService end to end on real servers: idempotent creation, the live phase
// of a sale, opening, closing, warming Redis from Postgres, and listing.
import { afterAll, beforeAll, describe, expect, it } from "vitest";
import { status, type ServiceError } from "@grpc/grpc-js";
import { callUnary, OrderStatus, rejectionOf, SalePhase, userMetadata, type CreateSaleRequest, type GetSaleStatusResponse, type Sale } from "@seckill/sdk";
import { ulid } from "../services/common/ids.js";
import { eventually, saleRequest, refusal, startTestStack, type TestStack } from "./support/stack.js";

let stack: TestStack;
beforeAll(async () => {
  stack = await startTestStack();
});
afterAll(async () => {
  await stack?.stop();
});

const HOUR = 3600_000;

const createRequest = (overrides: Partial<CreateSaleRequest> = {}) => saleRequest({ name: "Sales test", priceMinor: 2500, ...overrides });

const place = (saleId: string, userId: string, quantity = 1) =>
  callUnary(stack.orders, "placeOrder", { saleId, quantity, requestId: `req-${ulid()}`, purchaseToken: "", retry: false }, { metadata: userMetadata(userId) });

/** GetSaleStatus, checking that server_time is the server's clock at the time of the call. */
async function saleStatus(saleId: string): Promise<GetSaleStatusResponse> {
  const before = Date.now();
  const res = await callUnary(stack.sales, "getSaleStatus", { saleId });
  const after = Date.now();
  expect(res.saleId).toBe(saleId);
  expect(res.serverTime!.getTime()).toBeGreaterThanOrEqual(before - 50);
  expect(res.serverTime!.getTime()).toBeLessThanOrEqual(after + 50);
  return res;
}

const stock = (saleId: string) => callUnary(stack.inventoryClient, "getStock", { saleId });
const saleRow = (saleId: string) => stack.db("sales").where({ id: saleId }).first();

/**
 * A call made right after a sale's Redis keys were deleted: the sale counts as
 * having lost its Redis state, so it answers UNAVAILABLE until the writer has
 * caught up; retry as a client would.
 */
async function afterRedisLoss<T>(call: () => Promise<T>): Promise<T> {
  for (let attempt = 0; ; attempt++) {
    try {
      return await call();
    } catch (error) {
      if ((error as ServiceError).code !== status.UNAVAILABLE || attempt >= 100) throw error;
      await new Promise((r) => setTimeout(r, 100));
    }
  }
}

async function deleteRedisKeys(saleId: string): Promise<number> {
  const pattern = `${stack.config.namespace}:{sale:${saleId}}:*`;
  let deleted = 0;
  let cursor = "0";
  do {
    const [next, keys] = await stack.redis.scan(cursor, "MATCH", pattern, "COUNT", 1000);
    if (keys.length > 0) deleted += await stack.redis.del(...keys);
    cursor = next;
  } while (cursor !== "0");
  return deleted;
}

describe("CreateSale", () => {
  it("is idempotent on request_id: the same id gives the same sale and one row, even at once", async () => {
    const req = createRequest({ totalStock: 7 });
    const answers = await Promise.all(Array.from({ length: 8 }, () => callUnary(stack.sales, "createSale", req)));
    const ids = new Set(answers.map((a) => a.sale!.saleId));
    expect(ids.size).toBe(1);
    const [saleId] = ids;
    expect(await stack.db("sales").where({ create_request_id: req.requestId }).select("id")).toEqual([{ id: saleId }]);

    // Later, with other values: still the first sale, unchanged.
    const again = await callUnary(stack.sales, "createSale", { ...req, name: "Another name", totalStock: 99 });
    expect(again.sale).toMatchObject({ saleId, name: "Sales test", totalStock: 7 });
    expect(await stack.db("sales").where({ create_request_id: req.requestId })).toHaveLength(1);
    expect(await stock(saleId)).toMatchObject({ warm: true, totalStock: 7, stockLeft: 7 });
  });

  it("returns the sale as stored, with the defaults applied", async () => {
    const req = createRequest({ name: "  Trimmed  ", perUserLimit: 0, paymentWindowSeconds: 0 });
    const { sale } = await callUnary(stack.sales, "createSale", req);
    expect(sale).toMatchObject({
      name: "Trimmed",
      totalStock: 10,
      priceMinor: 2500,
      currency: "EUR",
      startsAt: req.startsAt,
      endsAt: req.endsAt,
      perUserLimit: 1,
      paymentWindowSeconds: 900,
      closedAt: undefined,
      sold: 0,
    });
    expect((await callUnary(stack.sales, "getSale", { saleId: sale!.saleId })).sale).toEqual(sale);
  });

  it("accepts a name of 200 characters outside the BMP, as Postgres counts characters", async () => {
    const name = "😀".repeat(200);
    const { sale } = await callUnary(stack.sales, "createSale", createRequest({ name }));
    expect(sale!.name).toBe(name);
    expect((await saleRow(sale!.saleId)).name).toBe(name);
  });
});

describe("GetSaleStatus", () => {
  it("is NOT_STARTED before the start, with the full stock and the sale's times", async () => {
    const now = Date.now();
    const sale = await stack.createSale({ totalStock: 3, startsAt: new Date(now + HOUR), endsAt: new Date(now + 2 * HOUR) });
    const s = await saleStatus(sale.saleId);
    expect(s).toMatchObject({
      phase: SalePhase.SALE_PHASE_NOT_STARTED,
      startsAt: sale.startsAt,
      endsAt: sale.endsAt,
      stockLeft: 3,
      totalStock: 3,
    });
  });

  it("is OPEN with stock left, SOLD_OUT once every unit is reserved, ENDED after CloseSale", async () => {
    const sale = await stack.createSale({ totalStock: 3, perUserLimit: 2 });
    expect(await saleStatus(sale.saleId)).toMatchObject({ phase: SalePhase.SALE_PHASE_OPEN, stockLeft: 3, totalStock: 3 });

    await place(sale.saleId, "buyer-1", 2);
    expect(await saleStatus(sale.saleId)).toMatchObject({ phase: SalePhase.SALE_PHASE_OPEN, stockLeft: 1 });

    await place(sale.saleId, "buyer-2", 1);
    expect(await saleStatus(sale.saleId)).toMatchObject({ phase: SalePhase.SALE_PHASE_SOLD_OUT, stockLeft: 0, totalStock: 3 });

    const { sale: closed } = await callUnary(stack.sales, "closeSale", { saleId: sale.saleId });
    expect(closed!.closedAt).toBeDefined();
    const s = await saleStatus(sale.saleId);
    expect(s).toMatchObject({ phase: SalePhase.SALE_PHASE_ENDED, stockLeft: 0, startsAt: sale.startsAt });
    // ends_at in the status is the effective end: when it was closed.
    expect(s.endsAt).toEqual(closed!.closedAt);
    expect(s.endsAt!.getTime()).toBeLessThan(sale.endsAt!.getTime());
  });

  it("is ENDED after ends_at, and after CloseSale even with stock left or before the start", async () => {
    const now = Date.now();
    const past = await stack.createSale({ startsAt: new Date(now - 2 * HOUR), endsAt: new Date(now - HOUR) });
    expect(await saleStatus(past.saleId)).toMatchObject({ phase: SalePhase.SALE_PHASE_ENDED, endsAt: past.endsAt, stockLeft: 10 });

    const open = await stack.createSale();
    await callUnary(stack.sales, "closeSale", { saleId: open.saleId });
    expect(await saleStatus(open.saleId)).toMatchObject({ phase: SalePhase.SALE_PHASE_ENDED, stockLeft: 10 });

    const future = await stack.createSale({ startsAt: new Date(now + HOUR), endsAt: new Date(now + 2 * HOUR) });
    await callUnary(stack.sales, "closeSale", { saleId: future.saleId });
    expect(await saleStatus(future.saleId)).toMatchObject({ phase: SalePhase.SALE_PHASE_ENDED });
  });
});

describe("CloseSale", () => {
  it("is idempotent and stops purchases", async () => {
    const sale = await stack.createSale();
    const first = await callUnary(stack.sales, "closeSale", { saleId: sale.saleId });
    const second = await callUnary(stack.sales, "closeSale", { saleId: sale.saleId });
    expect(second.sale!.closedAt).toEqual(first.sale!.closedAt);
    expect(await refusal(place(sale.saleId, "late"))).toMatchObject({ code: status.FAILED_PRECONDITION, reason: "SALE_ENDED" });
  });

  it("records the close when it takes effect: in a storm of purchases no order is reserved after closed_at, none sent after CloseSale returned wins", async () => {
    for (let round = 0; round < 3; round++) {
      const sale = await stack.createSale({ totalStock: 1_000_000 });
      let closeReturnedAt = Number.POSITIVE_INFINITY;
      let stopping = false;
      let next = 0;
      const wins: { sentAt: number }[] = [];
      const refusals = new Set<string>();
      const buyer = async () => {
        while (!stopping) {
          const sentAt = Date.now();
          try {
            await place(sale.saleId, `storm-${round}-${next++}`);
            wins.push({ sentAt });
          } catch (error) {
            refusals.add(rejectionOf(error as ServiceError).reason || String(error));
          }
        }
      };
      const buyers = Array.from({ length: 48 }, buyer);
      await new Promise((r) => setTimeout(r, 300));
      const { sale: closed } = await callUnary(stack.sales, "closeSale", { saleId: sale.saleId });
      closeReturnedAt = Date.now();
      await new Promise((r) => setTimeout(r, 150));
      stopping = true;
      await Promise.all(buyers);

      expect(wins.length, "purchases before the close").toBeGreaterThan(0);
      expect([...refusals]).toEqual(["SALE_ENDED"]);
      expect(wins.filter((w) => w.sentAt > closeReturnedAt)).toEqual([]);
      const closedAt = (await saleRow(sale.saleId)).closed_at as Date;
      expect(closedAt).toEqual(closed!.closedAt);
      await eventually(async () => Number((await stack.db("orders").where({ sale_id: sale.saleId }).count({ n: "*" }))[0].n) === wins.length, 15_000, "every order in Postgres");
      const late = (await stack.db("orders").where({ sale_id: sale.saleId }).andWhere("reserved_at", ">", closedAt).count({ n: "*" }).max({ latest: "reserved_at" }).first())!;
      expect({ late: Number(late.n), latest: late.latest }, `closed_at ${closedAt.toISOString()}, ${wins.length} orders`).toEqual({ late: 0, latest: null });
    }
  });
});

describe("OpenSale", () => {
  it("moves a future sale's start to now, after which purchases succeed; again is a no-op", async () => {
    const now = Date.now();
    const sale = await stack.createSale({ startsAt: new Date(now + HOUR), endsAt: new Date(now + 2 * HOUR) });
    expect(await refusal(place(sale.saleId, "eager"))).toMatchObject({ code: status.FAILED_PRECONDITION, reason: "SALE_NOT_STARTED" });

    const before = Date.now();
    const { sale: opened } = await callUnary(stack.sales, "openSale", { saleId: sale.saleId });
    const after = Date.now();
    expect(opened!.startsAt!.getTime()).toBeGreaterThanOrEqual(before);
    expect(opened!.startsAt!.getTime()).toBeLessThanOrEqual(after);
    expect(opened!.endsAt).toEqual(sale.endsAt);
    expect((await callUnary(stack.sales, "getSale", { saleId: sale.saleId })).sale!.startsAt).toEqual(opened!.startsAt);
    expect(await saleStatus(sale.saleId)).toMatchObject({ phase: SalePhase.SALE_PHASE_OPEN, startsAt: opened!.startsAt });

    const { order } = await place(sale.saleId, "eager");
    expect(order!.status).toBe(OrderStatus.ORDER_STATUS_PENDING);

    const { sale: again } = await callUnary(stack.sales, "openSale", { saleId: sale.saleId });
    expect(again!.startsAt).toEqual(opened!.startsAt);
  });

  it("does not move the start of a sale that is already open", async () => {
    const sale = await stack.createSale({ startsAt: new Date(Date.now() - HOUR) });
    const { sale: opened } = await callUnary(stack.sales, "openSale", { saleId: sale.saleId });
    expect(opened!.startsAt).toEqual(sale.startsAt);
  });

  it("opens a sale that is not loaded in Redis: the next purchase loads the new start", async () => {
    const now = Date.now();
    const sale = await stack.createSale({ startsAt: new Date(now + HOUR), endsAt: new Date(now + 2 * HOUR) });
    expect(await deleteRedisKeys(sale.saleId)).toBeGreaterThan(0);
    await callUnary(stack.sales, "openSale", { saleId: sale.saleId });
    const { order } = await afterRedisLoss(() => place(sale.saleId, "cold-buyer"));
    expect(order!.status).toBe(OrderStatus.ORDER_STATUS_PENDING);
  });

  it("is FAILED_PRECONDITION SALE_NOT_MODIFIABLE on an ended sale, and changes nothing", async () => {
    const now = Date.now();
    const closed = await stack.createSale({ startsAt: new Date(now + HOUR), endsAt: new Date(now + 2 * HOUR) });
    await callUnary(stack.sales, "closeSale", { saleId: closed.saleId });
    const past = await stack.createSale({ startsAt: new Date(now - 2 * HOUR), endsAt: new Date(now - HOUR) });

    for (const sale of [closed, past]) {
      const before = await saleRow(sale.saleId);
      expect(await refusal(callUnary(stack.sales, "openSale", { saleId: sale.saleId }))).toMatchObject({
        code: status.FAILED_PRECONDITION,
        reason: "SALE_NOT_MODIFIABLE",
      });
      expect(await saleRow(sale.saleId)).toEqual(before);
      expect(await refusal(place(sale.saleId, "too-late"))).toMatchObject({ reason: "SALE_ENDED" });
    }
  });
});

describe("WarmSale", () => {
  it("reloads a sale whose Redis keys are gone: stock = total - sold, per-user counts kept; a second call loads nothing", async () => {
    const sale = await stack.createSale({ totalStock: 5, perUserLimit: 2 });
    await place(sale.saleId, "warm-a", 2);
    await place(sale.saleId, "warm-b", 1);
    await eventually(async () => (await saleRow(sale.saleId)).sold === 3, 15_000, "sold = 3 in Postgres");

    expect(await deleteRedisKeys(sale.saleId)).toBeGreaterThan(0);
    expect(await stock(sale.saleId)).toMatchObject({ warm: false });

    expect(await afterRedisLoss(() => callUnary(stack.sales, "warmSale", { saleId: sale.saleId }))).toEqual({ saleId: sale.saleId, loaded: true, stockLeft: 2 });
    expect(await callUnary(stack.sales, "warmSale", { saleId: sale.saleId })).toEqual({ saleId: sale.saleId, loaded: false, stockLeft: 2 });
    expect(await stock(sale.saleId)).toEqual({ saleId: sale.saleId, warm: true, totalStock: 5, stockLeft: 2 });

    // The per-user counts came back from Postgres too.
    expect(await refusal(place(sale.saleId, "warm-a"))).toMatchObject({ code: status.ALREADY_EXISTS, reason: "ALREADY_PURCHASED" });
    await place(sale.saleId, "warm-c", 2);
    expect(await saleStatus(sale.saleId)).toMatchObject({ phase: SalePhase.SALE_PHASE_SOLD_OUT, stockLeft: 0 });
  });

  it("never overwrites a warm sale, even with reservations not yet in Postgres", async () => {
    const sale = await stack.createSale({ totalStock: 4 });
    await place(sale.saleId, "warm-d");
    expect(await callUnary(stack.sales, "warmSale", { saleId: sale.saleId })).toEqual({ saleId: sale.saleId, loaded: false, stockLeft: 3 });
    expect((await stock(sale.saleId)).stockLeft).toBe(3);
  });

  it("loads a closed sale as closed", async () => {
    const sale = await stack.createSale();
    await callUnary(stack.sales, "closeSale", { saleId: sale.saleId });
    await deleteRedisKeys(sale.saleId);
    expect((await afterRedisLoss(() => callUnary(stack.sales, "warmSale", { saleId: sale.saleId }))).loaded).toBe(true);
    expect(await refusal(place(sale.saleId, "after-close"))).toMatchObject({ reason: "SALE_ENDED" });
  });
});

describe("ListSales", () => {
  async function listAll(pageSize: number): Promise<{ sales: Sale[]; pages: number[] }> {
    const sales: Sale[] = [];
    const pages: number[] = [];
    let pageToken = "";
    for (let i = 0; i < 1000; i++) {
      const res = await callUnary(stack.sales, "listSales", { pageSize, pageToken });
      sales.push(...res.sales);
      pages.push(res.sales.length);
      pageToken = res.nextPageToken;
      if (!pageToken) return { sales, pages };
    }
    throw new Error("ListSales never reached its last page");
  }

  const totalSales = async () => Number((await stack.db("sales").count({ n: "*" }))[0].n);

  it("pages through sales newest first, page_size at a time, without duplicates", async () => {
    const mine: Sale[] = [];
    for (let i = 0; i < 5; i++) {
      mine.push(await stack.createSale());
      // Distinct milliseconds, so that newest first is this order (not the id tie-break).
      await new Promise((r) => setTimeout(r, 3));
    }

    const first = await callUnary(stack.sales, "listSales", { pageSize: 2, pageToken: "" });
    expect(first.sales.map((s) => s.saleId)).toEqual([mine[4].saleId, mine[3].saleId]);
    expect(first.nextPageToken).not.toBe("");

    const { sales, pages } = await listAll(2);
    const ids = sales.map((s) => s.saleId);
    expect(ids.slice(0, 5)).toEqual(mine.map((s) => s.saleId).reverse());
    expect(new Set(ids).size).toBe(ids.length);
    expect(ids.length).toBe(await totalSales());
    expect(pages.slice(0, -1).every((n) => n === 2)).toBe(true);
    expect(pages[pages.length - 1]).toBeGreaterThan(0);
    for (let i = 1; i < sales.length; i++) {
      expect(sales[i].createdAt!.getTime()).toBeLessThanOrEqual(sales[i - 1].createdAt!.getTime());
    }
  });

  it("skips and repeats nothing when sales are created at the same moment", async () => {
    const burst = await Promise.all(Array.from({ length: 12 }, () => callUnary(stack.sales, "createSale", createRequest())));
    for (const pageSize of [1, 2, 5]) {
      const ids = (await listAll(pageSize)).sales.map((s) => s.saleId);
      expect(new Set(ids).size).toBe(ids.length);
      expect(ids.length).toBe(await totalSales());
      for (const { sale } of burst) expect(ids).toContain(sale!.saleId);
    }
    // The page token carries created_at in milliseconds: the stored value must be exactly that.
    const finer = await stack.db("sales").whereRaw("created_at <> date_trunc('milliseconds', created_at)").count({ n: "*" });
    expect(Number(finer[0].n)).toBe(0);
  });

  it("uses 20 as the page size when it is 0", async () => {
    while ((await totalSales()) <= 20) await stack.createSale();
    const res = await callUnary(stack.sales, "listSales", { pageSize: 0, pageToken: "" });
    expect(res.sales).toHaveLength(20);
    expect(res.nextPageToken).not.toBe("");
  });
});
