// Bad input on every public RPC, end to end on real servers: each is refused
// with the documented status code and ErrorInfo reason (INVALID_ARGUMENT with a
// BadRequest naming the field), and leaves no trace in Redis, Postgres or
// JetStream.
import { afterAll, beforeAll, describe, expect, it } from "vitest";
import { Client, credentials, Metadata, status, type ServiceError } from "@grpc/grpc-js";
import { jetstreamManager } from "@nats-io/jetstream";
import {
  callUnary,
  OrderStatus,
  Reason,
  rejectionOf,
  userMetadata,
  USER_ID_HEADER,
  type CreateSaleRequest,
  type Order,
  type PlaceOrderRequest,
  type Rejection,
  type ReleasePolicy,
  type ReserveItem,
  type Sale,
} from "@seckill/sdk";
import { connectNats, eventNames } from "../services/common/event-bus.js";
import { ulid } from "../services/common/ids.js";
import { saleKeys } from "../services/inventory/stock-store.js";
import { eventually, saleRequest, refusal, startTestStack, type TestStack } from "./support/stack.js";

let stack: TestStack;
/** Open, 10 units, 2 per user: the sale every malformed purchase aims at. */
let target: Sale;
/** Starts in an hour. */
let notStarted: Sale;
/** Ended an hour ago. */
let ended: Sale;
/** Open until an operator closed it with CloseSale. */
let closed: Sale;
/** Well-formed ids nobody created. */
const unknownSale = ulid();
const unknownOrder = () => `${target.saleId}-${ulid()}`;
let streamMessagesBefore: number;

beforeAll(async () => {
  stack = await startTestStack();
  const now = Date.now();
  target = await stack.createSale({ totalStock: 10, perUserLimit: 2 });
  notStarted = await stack.createSale({ startsAt: new Date(now + 3600_000), endsAt: new Date(now + 7200_000) });
  ended = await stack.createSale({ startsAt: new Date(now - 7200_000), endsAt: new Date(now - 3600_000) });
  closed = await stack.createSale();
  await callUnary(stack.sales, "closeSale", { saleId: closed.saleId });
  streamMessagesBefore = (await streamInfo()).state.messages;
});
afterAll(async () => {
  await stack?.stop();
});

// ---------------------------------------------------------------- helpers

async function streamInfo() {
  const nc = await connectNats(stack.config.natsUrl, "bad-input-test");
  try {
    const jsm = await jetstreamManager(nc);
    return await jsm.streams.info(eventNames(stack.config.namespace).stream, { subjects_filter: ">" });
  } finally {
    await nc.close();
  }
}

async function expectRefused(call: Promise<unknown>, code: status, reason: string, field?: string): Promise<Rejection> {
  const r = await refusal(call);
  expect({ code: r.code, reason: r.reason }, r.message).toEqual({ code, reason });
  if (field !== undefined) expect(r.fieldViolations.map((v) => v.field)).toContain(field);
  return r;
}

const expectInvalid = (call: Promise<unknown>, field: string) => expectRefused(call, status.INVALID_ARGUMENT, "INVALID_ARGUMENT", field);
const expectNotFound = (call: Promise<unknown>) => expectRefused(call, status.NOT_FOUND, "NOT_FOUND");
const expectUnauthenticated = (call: Promise<unknown>) => expectRefused(call, status.UNAUTHENTICATED, "UNAUTHENTICATED");

const placeRequest = (overrides: Partial<PlaceOrderRequest> = {}): PlaceOrderRequest => ({
  saleId: target.saleId,
  quantity: 1,
  requestId: `req-${ulid()}`,
  purchaseToken: "",
  retry: false,
  ...overrides,
});

const place = (overrides: Partial<PlaceOrderRequest> = {}, metadata: Metadata = userMetadata("alice")) =>
  callUnary(stack.orders, "placeOrder", placeRequest(overrides), { metadata });

const as = (userId: string) => ({ metadata: userMetadata(userId) });

/** Metadata with x-user-id set to each of the values (none: no entry at all). */
function rawUserMetadata(...values: string[]): Metadata {
  const metadata = new Metadata();
  for (const value of values) metadata.add(USER_ID_HEADER, value);
  return metadata;
}

/** Reads a WatchOrder stream to its end; resolves with the orders, rejects with the stream's error. */
function watch(orderId: string, metadata: Metadata, deadlineMs = 5000): Promise<Order[]> {
  return new Promise((resolve, reject) => {
    const orders: Order[] = [];
    const call = stack.orders.watchOrder({ orderId }, metadata, { deadline: Date.now() + deadlineMs });
    call.on("data", (message: { order?: Order }) => orders.push(message.order!));
    call.on("error", reject);
    call.on("end", () => resolve(orders));
  });
}

const createRequest = (overrides: Partial<CreateSaleRequest> = {}) => saleRequest({ name: "Bad input sale", ...overrides });

const saleCount = async () => Number((await stack.db("sales").count({ n: "*" }))[0].n);

const token = (text: string) => Buffer.from(text).toString("base64url");

// ---------------------------------------------------------------- PlaceOrder

describe("PlaceOrder", () => {
  it("is UNAUTHENTICATED without a well-formed x-user-id", async () => {
    await expectUnauthenticated(place({}, new Metadata()));
    await expectUnauthenticated(place({}, rawUserMetadata("")));
    await expectUnauthenticated(place({}, rawUserMetadata("u".repeat(65))));
    await expectUnauthenticated(place({}, rawUserMetadata("has space")));
    await expectUnauthenticated(place({}, rawUserMetadata("pipe|user")));
    await expectUnauthenticated(place({}, rawUserMetadata("alice", "bob")));
  });

  it("checks identity before the request: a bad request without a user is still UNAUTHENTICATED", async () => {
    await expectUnauthenticated(place({ saleId: "nope", quantity: -1 }, new Metadata()));
  });

  const invalid: [string, string, () => Partial<PlaceOrderRequest>][] = [
    ["sale_id", "empty", () => ({ saleId: "" })],
    ["sale_id", "not base32", () => ({ saleId: "not-a-sale" })],
    ["sale_id", "lower case", () => ({ saleId: ulid().toLowerCase() })],
    ["sale_id", "27 characters", () => ({ saleId: `${ulid()}0` })],
    ["request_id", "empty", () => ({ requestId: "" })],
    ["request_id", "65 characters", () => ({ requestId: "r".repeat(65) })],
    ["request_id", "with a space", () => ({ requestId: "has space" })],
    ["request_id", "with a pipe", () => ({ requestId: "pipe|request" })],
    ["request_id", "with an @", () => ({ requestId: "at@sign" })],
    ["quantity", "-1", () => ({ quantity: -1 })],
    ["quantity", "101", () => ({ quantity: 101 })],
    ["purchase_token", "2049 characters", () => ({ purchaseToken: "t".repeat(2049) })],
  ];

  it.each(invalid)("is INVALID_ARGUMENT naming %s when it is %s", async (field, _what, overrides) => {
    await expectInvalid(place(overrides()), field);
  });

  it("is NOT_FOUND for a well-formed sale id nobody created", async () => {
    await expectNotFound(place({ saleId: unknownSale }));
  });

  it("is FAILED_PRECONDITION SALE_NOT_STARTED before the sale starts", async () => {
    await expectRefused(place({ saleId: notStarted.saleId }), status.FAILED_PRECONDITION, "SALE_NOT_STARTED");
  });

  it("is FAILED_PRECONDITION SALE_ENDED after the sale ended or was closed", async () => {
    await expectRefused(place({ saleId: ended.saleId }), status.FAILED_PRECONDITION, "SALE_ENDED");
    await expectRefused(place({ saleId: closed.saleId }), status.FAILED_PRECONDITION, "SALE_ENDED");
  });

  it("is INVALID_ARGUMENT naming quantity, with the limit, for more units than the sale's per-user limit", async () => {
    for (const quantity of [3, 100]) {
      const r = await expectInvalid(place({ quantity }), "quantity");
      expect(r.fieldViolations).toEqual([{ field: "quantity", description: "at most 2, the sale's per-user limit" }]);
    }
    const limitOne = await stack.createSale({ totalStock: 10, perUserLimit: 1 });
    await expectInvalid(place({ saleId: limitOne.saleId, quantity: 2 }, userMetadata("holds-nothing")), "quantity");
    expect((await callUnary(stack.inventoryClient, "getStock", { saleId: limitOne.saleId })).stockLeft).toBe(10);
    // Checked before the sale's window: the request is wrong whatever the sale's state.
    await expectInvalid(place({ saleId: closed.saleId, quantity: 2 }), "quantity");
    await expectInvalid(place({ saleId: notStarted.saleId, quantity: 2 }), "quantity");
  });
});

// ---------------------------------------------------------------- the other OrderService methods

describe("GetOrder, WatchOrder, ListOrders, PayOrder, CancelOrder", () => {
  it("are UNAUTHENTICATED without x-user-id", async () => {
    const none = { metadata: new Metadata() };
    const orderId = unknownOrder();
    await expectUnauthenticated(callUnary(stack.orders, "getOrder", { orderId }, none));
    await expectUnauthenticated(callUnary(stack.orders, "listOrders", { pageSize: 0, pageToken: "", saleId: "" }, none));
    await expectUnauthenticated(callUnary(stack.orders, "payOrder", { orderId, paymentReference: "pay-1", requestId: "pay-req" }, none));
    await expectUnauthenticated(callUnary(stack.orders, "cancelOrder", { orderId, requestId: "cancel-req" }, none));
    await expectUnauthenticated(watch(orderId, new Metadata()));
    await expectUnauthenticated(callUnary(stack.orders, "getOrder", { orderId }, { metadata: rawUserMetadata("bad user") }));
  });

  const malformedOrderIds = () => [
    "",
    "nope",
    target.saleId,
    `${target.saleId}-`,
    `${target.saleId}-short`,
    `${target.saleId}-${ulid()}`.toLowerCase(),
    `${target.saleId}_${ulid()}`,
    `${target.saleId}-${ulid()}-${ulid()}`,
  ];

  it("are INVALID_ARGUMENT naming order_id for a malformed order id", async () => {
    for (const orderId of malformedOrderIds()) {
      await expectInvalid(callUnary(stack.orders, "getOrder", { orderId }, as("alice")), "order_id");
      await expectInvalid(callUnary(stack.orders, "payOrder", { orderId, paymentReference: "pay-1", requestId: "pay-req" }, as("alice")), "order_id");
      await expectInvalid(callUnary(stack.orders, "cancelOrder", { orderId, requestId: "cancel-req" }, as("alice")), "order_id");
      await expectInvalid(watch(orderId, userMetadata("alice")), "order_id");
    }
  });

  it("are NOT_FOUND for a well-formed order id nobody has", async () => {
    const orderId = unknownOrder();
    await expectNotFound(callUnary(stack.orders, "getOrder", { orderId }, as("alice")));
    await expectNotFound(callUnary(stack.orders, "payOrder", { orderId, paymentReference: "pay-1", requestId: "pay-req" }, as("alice")));
    await expectNotFound(callUnary(stack.orders, "cancelOrder", { orderId, requestId: "cancel-req" }, as("alice")));
    await expectNotFound(watch(orderId, userMetadata("alice")));
    // Also in a sale that does not exist (nothing warm in Redis to ask).
    await expectNotFound(callUnary(stack.orders, "getOrder", { orderId: `${unknownSale}-${ulid()}` }, as("alice")));
  });

  it("PayOrder is INVALID_ARGUMENT naming payment_reference when it is empty or longer than 128", async () => {
    const orderId = unknownOrder();
    await expectInvalid(callUnary(stack.orders, "payOrder", { orderId, paymentReference: "", requestId: "pay-req" }, as("alice")), "payment_reference");
    await expectInvalid(callUnary(stack.orders, "payOrder", { orderId, paymentReference: "p".repeat(129), requestId: "pay-req" }, as("alice")), "payment_reference");
  });

  it("ListOrders is INVALID_ARGUMENT for a bad page_size, page_token or sale_id", async () => {
    const list = (req: { pageSize?: number; pageToken?: string; saleId?: string }) =>
      callUnary(stack.orders, "listOrders", { pageSize: 0, pageToken: "", saleId: "", ...req }, as("alice"));
    await expectInvalid(list({ pageSize: -1 }), "page_size");
    await expectInvalid(list({ pageSize: 101 }), "page_size");
    await expectInvalid(list({ pageToken: "not a token" }), "page_token");
    await expectInvalid(list({ pageToken: token("garbage") }), "page_token");
    await expectInvalid(list({ pageToken: token(`12345|${target.saleId}`) }), "page_token");
    await expectInvalid(list({ pageToken: token(`x|${unknownOrder()}`) }), "page_token");
    await expectInvalid(list({ pageToken: token(`99999999999999999999999|${unknownOrder()}`) }), "page_token");
    await expectInvalid(list({ saleId: "bad" }), "sale_id");
    // The bounds themselves are fine.
    expect((await list({ pageSize: 100 })).orders).toEqual([]);
    expect((await list({ pageSize: 1 })).orders).toEqual([]);
  });
});

// ---------------------------------------------------------------- SaleService

describe("SaleService", () => {
  const badCreates: [string, string, () => Partial<CreateSaleRequest>][] = [
    ["request_id", "empty", () => ({ requestId: "" })],
    ["request_id", "65 characters", () => ({ requestId: "r".repeat(65) })],
    ["request_id", "with a pipe", () => ({ requestId: "bad|id" })],
    ["name", "empty", () => ({ name: "" })],
    ["name", "only spaces", () => ({ name: "   " })],
    ["name", "201 characters", () => ({ name: "n".repeat(201) })],
    ["name", "201 characters outside the BMP", () => ({ name: "😀".repeat(201) })],
    ["name", "with a NUL character", () => ({ name: "nul\u0000byte" })],
    ["total_stock", "0", () => ({ totalStock: 0 })],
    ["total_stock", "-5", () => ({ totalStock: -5 })],
    ["total_stock", "1,000,001", () => ({ totalStock: 1_000_001 })],
    ["price_minor", "-1", () => ({ priceMinor: -1 })],
    ["price_minor", "1,000,000,000,001", () => ({ priceMinor: 1_000_000_000_001 })],
    ["currency", "empty", () => ({ currency: "" })],
    ["currency", "lower case", () => ({ currency: "eur" })],
    ["currency", "4 letters", () => ({ currency: "EURO" })],
    ["starts_at", "missing", () => ({ startsAt: undefined })],
    ["ends_at", "missing", () => ({ endsAt: undefined })],
    ["ends_at", "before starts_at", () => ({ endsAt: new Date(Date.now() - 1000) })],
    ["ends_at", "31 days after starts_at", () => ({ endsAt: new Date(Date.now() + 31 * 24 * 3600_000) })],
    ["per_user_limit", "-1", () => ({ perUserLimit: -1 })],
    ["per_user_limit", "101", () => ({ perUserLimit: 101 })],
    ["payment_window_seconds", "59", () => ({ paymentWindowSeconds: 59 })],
    ["payment_window_seconds", "604,801", () => ({ paymentWindowSeconds: 604_801 })],
    ["payment_window_seconds", "-900", () => ({ paymentWindowSeconds: -900 })],
    ["release_policy", "3 (no such policy)", () => ({ releasePolicy: 3 as ReleasePolicy })],
    ["release_policy", "-1", () => ({ releasePolicy: -1 as ReleasePolicy })],
  ];

  it.each(badCreates)("CreateSale is INVALID_ARGUMENT naming %s when it is %s, and inserts no row", async (field, _what, overrides) => {
    const before = await saleCount();
    const req = createRequest(overrides());
    await expectInvalid(callUnary(stack.sales, "createSale", req), field);
    expect(await saleCount()).toBe(before);
    if (req.requestId) expect(await stack.db("sales").where({ create_request_id: req.requestId })).toEqual([]);
  });

  it("CreateSale does not burn the request id of a refused request", async () => {
    const requestId = `create-${ulid()}`;
    await expectInvalid(callUnary(stack.sales, "createSale", createRequest({ requestId, totalStock: 0 })), "total_stock");
    const { sale } = await callUnary(stack.sales, "createSale", createRequest({ requestId, totalStock: 7 }));
    expect(sale!.totalStock).toBe(7);
  });

  it("GetSale, GetSaleStatus, OpenSale, CloseSale and WarmSale are NOT_FOUND for an unknown sale and touch no Redis key", async () => {
    const saleId = unknownSale;
    await expectNotFound(callUnary(stack.sales, "getSale", { saleId }));
    await expectNotFound(callUnary(stack.sales, "getSaleStatus", { saleId }));
    await expectNotFound(callUnary(stack.sales, "openSale", { saleId }));
    await expectNotFound(callUnary(stack.sales, "closeSale", { saleId }));
    await expectNotFound(callUnary(stack.sales, "warmSale", { saleId }));
    expect(await stack.redis.keys(`${stack.config.namespace}:{sale:${saleId}}:*`)).toEqual([]);
    expect(await stack.db("sales").where({ id: saleId })).toEqual([]);
  });

  it("GetSale, GetSaleStatus, OpenSale, CloseSale and WarmSale are INVALID_ARGUMENT naming sale_id for a malformed id", async () => {
    for (const saleId of ["", "nope", ulid().toLowerCase(), `${ulid()}-${ulid()}`]) {
      await expectInvalid(callUnary(stack.sales, "getSale", { saleId }), "sale_id");
      await expectInvalid(callUnary(stack.sales, "getSaleStatus", { saleId }), "sale_id");
      await expectInvalid(callUnary(stack.sales, "openSale", { saleId }), "sale_id");
      await expectInvalid(callUnary(stack.sales, "closeSale", { saleId }), "sale_id");
      await expectInvalid(callUnary(stack.sales, "warmSale", { saleId }), "sale_id");
    }
  });

  it("ListSales is INVALID_ARGUMENT for a bad page_size or page_token", async () => {
    const list = (req: { pageSize?: number; pageToken?: string }) => callUnary(stack.sales, "listSales", { pageSize: 0, pageToken: "", ...req });
    await expectInvalid(list({ pageSize: -1 }), "page_size");
    await expectInvalid(list({ pageSize: 101 }), "page_size");
    await expectInvalid(list({ pageToken: "not a token" }), "page_token");
    await expectInvalid(list({ pageToken: token("garbage") }), "page_token");
    await expectInvalid(list({ pageToken: token(`12345|nope`) }), "page_token");
    await expectInvalid(list({ pageToken: token(`x|${target.saleId}`) }), "page_token");
    await expectInvalid(list({ pageToken: token(`99999999999999999999999|${target.saleId}`) }), "page_token");
    expect((await list({ pageSize: 100 })).sales.length).toBeGreaterThan(0);
  });
});

// ---------------------------------------------------------------- InventoryService (internal)

describe("InventoryService", () => {
  const items = (n: number): ReserveItem[] => Array.from({ length: n }, (_, i) => ({ saleId: target.saleId, userId: `batch-user-${i}`, requestId: `batch-${i}`, quantity: 1 }));

  it("Reserve is INVALID_ARGUMENT naming items for 0 or 513 items, and reserves none of them", async () => {
    await expectInvalid(callUnary(stack.inventoryClient, "reserve", { items: [] }), "items");
    await expectInvalid(callUnary(stack.inventoryClient, "reserve", { items: items(513) }), "items");
  });

  it("Reserve answers INVALID_ARGUMENT per malformed item without reserving", async () => {
    const bad: ReserveItem[] = [
      { saleId: "nope", userId: "u", requestId: "r", quantity: 1 },
      { saleId: target.saleId, userId: "bad user", requestId: "r", quantity: 1 },
      { saleId: target.saleId, userId: "u", requestId: "bad|request", quantity: 1 },
      { saleId: target.saleId, userId: "u", requestId: "r", quantity: 0 },
      { saleId: target.saleId, userId: "u", requestId: "r", quantity: 101 },
    ];
    const { results } = await callUnary(stack.inventoryClient, "reserve", { items: bad });
    expect(results.map((r) => r.reason)).toEqual(bad.map(() => Reason.REASON_INVALID_ARGUMENT));
    expect(results.every((r) => r.reservationId === "")).toBe(true);
  });

  it("GetStock, GetReservation and Release refuse malformed and unknown ids", async () => {
    await expectInvalid(callUnary(stack.inventoryClient, "getStock", { saleId: "nope" }), "sale_id");
    await expectInvalid(callUnary(stack.inventoryClient, "getReservation", { reservationId: "nope" }), "reservation_id");
    await expectInvalid(callUnary(stack.inventoryClient, "release", { reservationId: "nope", cause: "CANCELLED" }), "reservation_id");
    await expectNotFound(callUnary(stack.inventoryClient, "getReservation", { reservationId: unknownOrder() }));
    await expectNotFound(callUnary(stack.inventoryClient, "release", { reservationId: unknownOrder(), cause: "CANCELLED" }));
  });
});

// ---------------------------------------------------------------- oversized messages

describe("a message larger than the server's maximum", () => {
  const huge = () => "x".repeat(stack.config.grpcMaxMessageBytes + 44 * 1024);

  it("is RESOURCE_EXHAUSTED on the order and inventory services", async () => {
    expect(stack.config.grpcMaxMessageBytes).toBe(256 * 1024);
    const exhausted = async (call: Promise<unknown>) => expect((await refusal(call)).code).toBe(status.RESOURCE_EXHAUSTED);
    await exhausted(place({ requestId: huge() }));
    await exhausted(place({ purchaseToken: huge() }));
    await exhausted(callUnary(stack.orders, "getOrder", { orderId: huge() }, as("alice")));
    await exhausted(callUnary(stack.sales, "createSale", createRequest({ name: huge() })));
    await exhausted(callUnary(stack.sales, "listSales", { pageSize: 0, pageToken: huge() }));
    await exhausted(
      callUnary(stack.inventoryClient, "reserve", {
        items: [{ saleId: target.saleId, userId: "alice", requestId: huge(), quantity: 1 }],
      }),
    );
  });
});

// ---------------------------------------------------------------- no trace

describe("bytes that are not a valid protobuf message", () => {
  const rawCall = (address: string, path: string, bytes: Buffer) =>
    new Promise<ServiceError>((resolve, reject) => {
      const client = new Client(address, credentials.createInsecure());
      client.makeUnaryRequest(
        path,
        (b: Buffer) => b,
        (b: Buffer) => b,
        bytes,
        userMetadata("raw-bytes"),
        { deadline: Date.now() + 5000 },
        (error) => {
          client.close();
          error ? resolve(error) : reject(new Error("the call succeeded"));
        },
      );
    });
  // Field 4 (price_minor) as a varint of 2^60: valid wire format, beyond a JS number.
  const hugePrice = Buffer.from([0x20, 0x80, 0x80, 0x80, 0x80, 0x80, 0x80, 0x80, 0x80, 0x10]);
  const truncated = Buffer.from([0x0a, 0x10, 0x41]); // field 1, length 16, one byte

  it("are INVALID_ARGUMENT on PlaceOrder, CreateSale, Reserve and WatchOrder", async () => {
    const cases: [string, string, Buffer][] = [
      [stack.order.address, "/seckill.v1.OrderService/PlaceOrder", truncated],
      [stack.inventory.address, "/seckill.v1.SaleService/CreateSale", hugePrice],
      [stack.inventory.address, "/seckill.v1.SaleService/CreateSale", truncated],
      [stack.inventory.address, "/seckill.v1.InventoryService/Reserve", truncated],
    ];
    for (const [address, path, bytes] of cases) {
      const refusal = rejectionOf(await rawCall(address, path, bytes));
      expect(refusal, path).toMatchObject({ code: status.INVALID_ARGUMENT, reason: "INVALID_ARGUMENT" });
      expect(refusal.fieldViolations[0]?.field).toBe("request");
    }
    const stream = new Client(stack.order.address, credentials.createInsecure());
    const error = await new Promise<ServiceError>((resolve) => {
      const call = stream.makeServerStreamRequest(
        "/seckill.v1.OrderService/WatchOrder",
        (b: Buffer) => b,
        (b: Buffer) => b,
        truncated,
        userMetadata("raw-bytes"),
        { deadline: Date.now() + 5000 },
      );
      call.on("error", resolve);
      call.on("data", () => undefined);
    });
    stream.close();
    expect(rejectionOf(error).code).toBe(status.INVALID_ARGUMENT);
  });
});

describe("after all the refused calls", () => {
  it("nothing changed: stock, orders, sold, buyers, reservations and events", async () => {
    for (const sale of [target, notStarted, ended, closed]) {
      const stock = await callUnary(stack.inventoryClient, "getStock", { saleId: sale.saleId });
      expect(stock, sale.saleId).toMatchObject({ warm: true, totalStock: sale.totalStock, stockLeft: sale.totalStock });
      const keys = saleKeys(stack.config.namespace, sale.saleId);
      expect(await stack.redis.hlen(keys.requests)).toBe(0);
      expect(await stack.redis.hlen(keys.reservations)).toBe(0);
      expect(await stack.redis.hlen(keys.buyers)).toBe(0);
    }
    expect(await stack.db("orders").select("id")).toEqual([]);
    expect(await stack.db("sale_buyers").select("sale_id")).toEqual([]);
    const sold = await stack.db("sales").whereIn("id", [target.saleId, notStarted.saleId, ended.saleId, closed.saleId]).select("sold");
    expect(sold.map((r: { sold: number }) => r.sold)).toEqual([0, 0, 0, 0]);
    expect(await stack.redis.keys(`${stack.config.namespace}:{sale:${unknownSale}}:*`)).toEqual([]);

    const info = await streamInfo();
    expect(info.state.messages).toBe(streamMessagesBefore);
    const reservationSubjects = Object.keys(info.state.subjects ?? {}).filter((s) => s.startsWith(`${stack.config.namespace}.reservations.`));
    expect(reservationSubjects).toEqual([]);
  });
});

// ---------------------------------------------------------------- refusals next to real purchases

describe("refusals around real purchases", () => {
  const ordersOf = (saleId: string) => stack.db("orders").where({ sale_id: saleId }).select("id", "user_id", "quantity", "status");
  const reservationEvents = async (saleId: string) => (await streamInfo()).state.subjects?.[eventNames(stack.config.namespace).reservationSubject(saleId)] ?? 0;

  it("a purchase token of exactly 2048 characters passes validation and is verified; a buyer at the limit is ALREADY_PURCHASED, more units than the limit itself INVALID_ARGUMENT", async () => {
    const sale = await stack.createSale({ totalStock: 10, perUserLimit: 2 });
    await expectRefused(place({ saleId: sale.saleId, quantity: 2, purchaseToken: "t".repeat(2048) }, userMetadata("carol")), status.PERMISSION_DENIED, "PURCHASE_TOKEN_INVALID");
    const first = await place({ saleId: sale.saleId, quantity: 2 }, userMetadata("carol"));
    expect(first.order!.status).toBe(OrderStatus.ORDER_STATUS_PENDING);
    await expectRefused(place({ saleId: sale.saleId, quantity: 1 }, userMetadata("carol")), status.ALREADY_EXISTS, "ALREADY_PURCHASED");
    // A quantity over the limit is the request's fault, not the purchase history's: INVALID_ARGUMENT for a buyer who bought too.
    await expectInvalid(place({ saleId: sale.saleId, quantity: 3 }, userMetadata("carol")), "quantity");

    await eventually(async () => (await ordersOf(sale.saleId)).length === 1, 15_000, "the order in Postgres");
    await new Promise((r) => setTimeout(r, 300));
    expect(await ordersOf(sale.saleId)).toEqual([{ id: first.order!.orderId, user_id: "carol", quantity: 2, status: "CREATED" }]);
    expect((await callUnary(stack.inventoryClient, "getStock", { saleId: sale.saleId })).stockLeft).toBe(8);
    expect((await stack.db("sales").where({ id: sale.saleId }).first()).sold).toBe(2);
    expect(await stack.db("sale_buyers").where({ sale_id: sale.saleId }).select("user_id", "units")).toEqual([{ user_id: "carol", units: 2 }]);
    expect(await reservationEvents(sale.saleId)).toBe(1);
  });

  it("a second purchase by the same user with a new request id is ALREADY_PURCHASED", async () => {
    const sale = await stack.createSale({ totalStock: 10, perUserLimit: 1 });
    const first = await place({ saleId: sale.saleId }, userMetadata("dave"));
    await expectRefused(place({ saleId: sale.saleId }, userMetadata("dave")), status.ALREADY_EXISTS, "ALREADY_PURCHASED");
    // Also once the first order is persisted.
    await eventually(async () => (await ordersOf(sale.saleId)).length === 1, 15_000, "the order in Postgres");
    await expectRefused(place({ saleId: sale.saleId }, userMetadata("dave")), status.ALREADY_EXISTS, "ALREADY_PURCHASED");
    expect((await ordersOf(sale.saleId)).map((o: { id: string }) => o.id)).toEqual([first.order!.orderId]);
    expect((await callUnary(stack.inventoryClient, "getStock", { saleId: sale.saleId })).stockLeft).toBe(9);
    expect(await reservationEvents(sale.saleId)).toBe(1);
  });

  it("another user's order is NOT_FOUND for GetOrder, WatchOrder, PayOrder and CancelOrder, pending or persisted", async () => {
    const sale = await stack.createSale({ totalStock: 5 });
    const { order } = await place({ saleId: sale.saleId }, userMetadata("erin"));
    const orderId = order!.orderId;
    const tryAll = async () => {
      await expectNotFound(callUnary(stack.orders, "getOrder", { orderId }, as("mallory")));
      await expectNotFound(callUnary(stack.orders, "payOrder", { orderId, paymentReference: "stolen", requestId: "pay-req" }, as("mallory")));
      await expectNotFound(callUnary(stack.orders, "cancelOrder", { orderId, requestId: "cancel-req" }, as("mallory")));
      await expectNotFound(watch(orderId, userMetadata("mallory")));
    };
    await tryAll(); // most likely still PENDING (only in Redis)
    await eventually(
      async () => (await callUnary(stack.orders, "getOrder", { orderId }, as("erin"))).order!.status === OrderStatus.ORDER_STATUS_CREATED,
      15_000,
      "the order to be CREATED",
    );
    await tryAll(); // persisted in Postgres

    const mine = await callUnary(stack.orders, "getOrder", { orderId }, as("erin"));
    expect(mine.order).toMatchObject({ orderId, userId: "erin", status: OrderStatus.ORDER_STATUS_CREATED });
    const row = await stack.db("orders").where({ id: orderId }).first();
    expect(row).toMatchObject({ status: "CREATED", paid_at: null, payment_reference: null, released_at: null });
    expect((await stack.db("sales").where({ id: sale.saleId }).first()).sold).toBe(1);
    expect((await callUnary(stack.inventoryClient, "getStock", { saleId: sale.saleId })).stockLeft).toBe(4);
    const listed = await callUnary(stack.orders, "listOrders", { pageSize: 0, pageToken: "", saleId: sale.saleId }, as("mallory"));
    expect(listed.orders).toEqual([]);
  });
});
