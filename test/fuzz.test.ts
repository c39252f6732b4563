// Property-based fuzzing of every public RPC on real servers (fast-check):
// arbitrary field values (unicode, NUL, lone surrogates, very long strings,
// integers at and beyond their bounds, enums out of range), odd metadata
// (x-user-id missing, empty, repeated, malformed, too long; stray tokens and
// account times), and raw request bytes (random, and valid messages truncated,
// flipped and extended). Every call must end with a status the RPC documents
// (proto/README.md "Refusals", gateway/README.md's AccessService table), never INTERNAL or UNKNOWN;
// the servers must still answer health afterwards; and a batch of invalid calls
// must leave every Postgres row and every Redis key of the namespace as it was.
//
// The seed is fixed (FUZZ_SEED overrides it, FUZZ_RUNS the runs per RPC); a
// failure prints fast-check's seed, path and smallest failing input, and
// `FUZZ_SEED=<seed> npx vitest run test/fuzz.test.ts` replays it.
import { readFileSync } from "node:fs";
import { freePort } from "../tools/stack/ports.js";
import { afterAll, beforeAll, describe, expect, it } from "vitest";
import fc from "fast-check";
import { credentials, Metadata, status, type Client } from "@grpc/grpc-js";
import {
  AccessServiceClient,
  AccessServiceService,
  ACCOUNT_CREATED_AT_HEADER,
  DeadLetterServiceService,
  InventoryServiceService,
  OrderServiceService,
  OrderStatus,
  PURCHASE_TOKEN_HEADER,
  SALE_ID_HEADER,
  SaleServiceService,
  USER_ID_HEADER,
  callUnary,
  purchaseMetadata,
  userMetadata,
  type Order,
  type Sale,
} from "@seckill/sdk";
import { jetstreamManager, type JetStreamManager } from "@nats-io/jetstream";
import type { NatsConnection } from "@nats-io/transport-node";
import { connectNats, deadLetterNames, eventNames } from "../services/common/event-bus.js";
import { ulid } from "../services/common/ids.js";
import { checkHealth, waitServing } from "../tools/stack/health.js";
import { spawnService, type ServiceProcess } from "../tools/stack/children.js";
import { callMethod, encodedSize, rawClient, type AnyMethod, type CallOutcome } from "./support/raw-grpc.js";
import { eventually, saleRequest, startTestStack, type TestStack } from "./support/stack.js";

const SEED = Number(process.env.FUZZ_SEED ?? 20261123);
const RUNS = Number(process.env.FUZZ_RUNS ?? 60);
const fuzzParams = (numRuns = RUNS) => ({ seed: SEED, numRuns, endOnFailure: true });

let stack: TestStack;
let nc: NatsConnection;
let jsm: JetStreamManager;
let access: AccessServiceClient;
const clients: Record<"inventory" | "order" | "writer" | "gateway", Client> = {} as never;

/** Open, no challenge, 1 per user; the owner's order is in it. */
let open: Sale;
/** Open, challenge required, "mallory" blocked, accounts of at least a day. */
let guarded: Sale;
let notStarted: Sale;
let ended: Sale;
const OWNER = "owner-1";
let ownerOrder: Order;
const realSaleIds = () => [open.saleId, guarded.saleId, notStarted.saleId, ended.saleId];

beforeAll(async () => {
  // Tokens required: no fuzzed PlaceOrder can buy (a valid ES256 token cannot be guessed).
  // No sweeper: it drops ended sales from its index in the background, which the snapshots would see.
  stack = await startTestStack({ PURCHASE_TOKEN_REQUIRED: "true", SWEEP_INTERVAL_MS: "0" }, { gateway: true });
  access = new AccessServiceClient(stack.gateway!.address, credentials.createInsecure());
  nc = await connectNats(stack.config.natsUrl, "fuzz-test");
  jsm = await jetstreamManager(nc);
  clients.inventory = rawClient(stack.inventory.address);
  clients.order = rawClient(stack.order.address);
  clients.writer = rawClient(stack.writer.address);
  clients.gateway = rawClient(stack.gateway!.address);
  const now = Date.now();
  open = await stack.createSale({ totalStock: 10, perUserLimit: 1 });
  guarded = (
    await callUnary(
      stack.sales,
      "createSale",
      saleRequest({
        name: "Guarded sale",
        accessRules: { challengeRequired: true, allowedUsers: [], blockedUsers: ["mallory"], minAccountAge: { seconds: 86_400, nanos: 0 } },
      }),
    )
  ).sale!;
  notStarted = await stack.createSale({ startsAt: new Date(now + 3600_000), endsAt: new Date(now + 7200_000) });
  ended = await stack.createSale({ startsAt: new Date(now - 7200_000), endsAt: new Date(now - 3600_000) });

  const { token } = await callUnary(access, "issuePurchaseToken", { saleId: open.saleId, challengeId: "", challengeAnswer: "" }, { metadata: userMetadata(OWNER) });
  const placed = await callUnary(
    stack.orders,
    "placeOrder",
    { saleId: open.saleId, quantity: 1, requestId: "owner-req-1", purchaseToken: "", retry: false },
    { metadata: purchaseMetadata(OWNER, open.saleId, token) },
  );
  ownerOrder = placed.order!;
  await eventually(
    async () => (await callUnary(stack.orders, "getOrder", { orderId: ownerOrder.orderId }, { metadata: userMetadata(OWNER) })).order!.status === OrderStatus.ORDER_STATUS_CREATED,
    15_000,
    "the owner's order to be stored",
  );
});

afterAll(async () => {
  for (const client of Object.values(clients)) client?.close();
  access?.close();
  await nc?.close();
  await stack?.stop();
});

// ---------------------------------------------------------------- state

/** Every row of every table, every Redis key (type and value, not TTL) of the namespace, and the streams' last sequences. */
async function snapshot(): Promise<Record<string, unknown>> {
  const state: Record<string, unknown> = {};
  for (const stream of [eventNames(stack.config.namespace).stream, deadLetterNames(stack.config.namespace).stream]) {
    state[`stream:${stream}`] = await jsm.streams.info(stream).then(
      (i) => i.state.last_seq,
      () => "none",
    );
  }
  const tables = await stack.db.raw<{ rows: { tablename: string }[] }>(
    "select tablename from pg_tables where schemaname = 'public' and tablename not like 'knex_%' order by tablename",
  );
  for (const { tablename } of tables.rows) {
    const rows = await stack.db(tablename).select("*");
    state[`pg:${tablename}`] = rows.map((r) => JSON.stringify(r)).sort();
  }
  const { redis } = stack;
  let cursor = "0";
  const keys: string[] = [];
  do {
    const [next, found] = await redis.scan(cursor, "MATCH", `${stack.config.namespace}:*`, "COUNT", 1000);
    keys.push(...found);
    cursor = next;
  } while (cursor !== "0");
  for (const key of keys.sort()) {
    const type = await redis.type(key);
    if (type === "string") state[key] = await redis.get(key);
    else if (type === "hash") state[key] = await redis.hgetall(key);
    else if (type === "set") state[key] = (await redis.smembers(key)).sort();
    else if (type === "zset") state[key] = await redis.zrange(key, 0, -1, "WITHSCORES");
    else if (type === "list") state[key] = await redis.lrange(key, 0, -1);
    else state[key] = type;
  }
  return state;
}

async function expectAllServing() {
  for (const address of [stack.inventory.address, stack.order.address, stack.writer.address, stack.gateway!.address]) {
    expect(await checkHealth(address, "", 2000), address).toBe("SERVING");
  }
}

// ---------------------------------------------------------------- arbitraries

type Headers = Record<string, readonly string[]>;

const MAX = () => stack.config.grpcMaxMessageBytes;

/** Strings a client could send: ASCII, any code point (NUL, lone surrogates, astral), tricky constants, near the 64 bound, long. */
const text: fc.Arbitrary<string> = fc.oneof(
  { weight: 4, arbitrary: fc.string({ maxLength: 80 }) },
  { weight: 4, arbitrary: fc.string({ unit: "binary", maxLength: 80 }) },
  {
    weight: 2,
    arbitrary: fc.constantFrom(
      "",
      " ",
      "\u0000",
      "nul\u0000byte",
      "\uD800",
      "😀".repeat(70),
      "../../etc/passwd",
      "' OR 1=1 --",
      "%00",
      "*",
      "{sale:x}:*",
      "a|b",
      "\r\nx-injected: 1",
      "０１２３", // full-width digits
    ),
  },
  { weight: 1, arbitrary: fc.integer({ min: 60, max: 70 }).map((n) => "r".repeat(n)) },
  { weight: 1, arbitrary: fc.integer({ min: 1000, max: 20_000 }).map((n) => "x".repeat(n)) },
);
/** Sometimes a string over the server's message limit (RESOURCE_EXHAUSTED is then the documented answer). */
const textOrHuge = fc.oneof({ weight: 30, arbitrary: text }, { weight: 1, arbitrary: fc.constant("HUGE").map(() => "h".repeat(MAX() + 1024)) });

const ulidLike = fc.oneof(
  fc.constant(null).map(() => ulid()), // well formed, unknown
  fc.constant(null).map(() => ulid().toLowerCase()),
  fc.stringMatching(/^[0-9A-Z]{26}$/), // may hold I, L, O, U: not Crockford
  fc.stringMatching(/^[0-9A-HJKMNP-TV-Z]{25,27}$/),
);
/** Sale ids that are never a real sale's. */
const unknownSaleId = fc.oneof(textOrHuge, ulidLike);
/** Order ids of no order: malformed, or well formed in a real or unknown sale. */
const unknownOrderId = fc.oneof(
  textOrHuge,
  ulidLike,
  fc.tuple(fc.constantFrom("real", "unknown"), ulidLike).map(([which, tail]) => `${which === "real" ? open.saleId : ulid()}-${tail}`),
);
// What the typed encoder can put in each field (it refuses an int32 beyond 32 bits or a negative
// uint64 before sending); values beyond a field's type on the wire are in the raw-bytes part.
const int32 = fc.oneof(fc.integer(), fc.constantFrom(0, -1, 1, 2, 59, 60, 100, 101, 512, 513, 1_000_000, 1_000_001, 604_800, 604_801, 2 ** 31 - 1, -(2 ** 31)));
const int64 = fc.oneof(fc.maxSafeInteger(), fc.constantFrom(0, -1, 1e12, 1e12 + 1, Number.MAX_SAFE_INTEGER, Number.MIN_SAFE_INTEGER));
const uint64 = fc.oneof(fc.maxSafeNat(), fc.constantFrom(0, 1, 2 ** 32, Number.MAX_SAFE_INTEGER));
const enumValue = fc.oneof(fc.integer({ min: -3, max: 8 }), fc.constantFrom(2 ** 31 - 1, -(2 ** 31)));
const date = fc.option(fc.date({ noInvalidDate: true }), { nil: undefined });
const validUser = fc.stringMatching(/^[A-Za-z0-9._:@-]{1,64}$/).filter((u) => u !== OWNER);

/** x-user-id as sent: absent, valid (never the owner), malformed, empty, too long, repeated. */
const userHeader: fc.Arbitrary<readonly string[]> = fc.oneof(
  { weight: 3, arbitrary: validUser.map((u) => [u]) },
  { weight: 1, arbitrary: fc.constant([]) },
  { weight: 2, arbitrary: fc.array(fc.string({ maxLength: 80 }), { minLength: 1, maxLength: 3 }) },
  { weight: 1, arbitrary: fc.integer({ min: 65, max: 300 }).map((n) => ["u".repeat(n)]) },
  { weight: 1, arbitrary: fc.constantFrom([""], ["has space"], ["pipe|user"], ["alice", "bob"]) },
);
/** Headers that must not matter where they are not read, and must be judged where they are. */
const extraHeaders = fc.record(
  {
    [PURCHASE_TOKEN_HEADER]: fc.array(fc.string({ maxLength: 300 }), { maxLength: 2 }),
    [ACCOUNT_CREATED_AT_HEADER]: fc.array(
      fc.oneof(
        fc.string({ maxLength: 40 }),
        fc.date({ noInvalidDate: true }).map((d) => d.toISOString()),
      ),
      { maxLength: 2 },
    ),
    [SALE_ID_HEADER]: fc.array(fc.string({ maxLength: 40 }), { maxLength: 2 }),
  },
  { requiredKeys: [] },
);
const metadataArb = fc.tuple(userHeader, extraHeaders).map(([users, extra]) => {
  const headers: Headers = { [USER_ID_HEADER]: users, ...extra };
  return headers;
});
const toMetadata = (headers: Headers): Metadata => {
  const metadata = new Metadata();
  for (const [key, values] of Object.entries(headers)) for (const value of values ?? []) metadata.add(key, value);
  return metadata;
};
const hasValidUser = (headers: Headers) => headers[USER_ID_HEADER].length === 1 && /^[A-Za-z0-9._:@-]{1,64}$/.test(headers[USER_ID_HEADER][0]);

// ---------------------------------------------------------------- the RPCs

const C = status;
type Server = keyof typeof clients;

interface Target {
  server: Server;
  method: AnyMethod;
  /** Arbitrary request (and metadata). For a state-changing RPC every one of them is invalid. */
  input: () => fc.Arbitrary<{ request: unknown; headers: Headers }>;
  /** Codes the RPC documents for these inputs (RESOURCE_EXHAUSTED is added for a message over the limit). */
  codes: status[];
  /** Further checks of one outcome. */
  // biome-ignore lint/suspicious/noExplicitAny: the request this case's own input generated, read by its check
  check?: (outcome: CallOutcome, input: { request: any; headers: Headers }) => void;
}

// Services that do not read metadata get odd metadata all the same: it must change nothing.
const withHeaders = (request: fc.Arbitrary<unknown>, headers: fc.Arbitrary<Headers> = metadataArb) => fc.record({ request, headers });

/** One field made invalid on an otherwise valid CreateSale, so the whole request is invalid whatever else is drawn. */
const badCreateFields = fc.constantFrom<Record<string, unknown>>(
  { requestId: "" },
  { requestId: "bad|id" },
  { name: "" },
  { name: "   " },
  { name: "nul\u0000byte" },
  { name: "n".repeat(201) },
  { totalStock: 0 },
  { totalStock: 1_000_001 },
  { priceMinor: -1 },
  { currency: "eur" },
  { startsAt: undefined },
  { endsAt: undefined },
  { perUserLimit: 101 },
  { paymentWindowSeconds: 59 },
  { releasePolicy: 3 },
  { accessRules: { challengeRequired: false, allowedUsers: ["bad user"], blockedUsers: [], minAccountAge: undefined } },
  { accessRules: { challengeRequired: false, allowedUsers: [], blockedUsers: [], minAccountAge: { seconds: 3651 * 86_400, nanos: 0 } } },
);

const saleIdRequest = () => withHeaders(fc.record({ saleId: unknownSaleId }));
const READ_SALE = [C.OK, C.INVALID_ARGUMENT, C.NOT_FOUND];

const TARGETS: Record<string, Target> = {
  // SaleService
  CreateSale: {
    server: "inventory",
    method: SaleServiceService.createSale,
    input: () =>
      withHeaders(
        fc
          .tuple(
            fc.record(
              {
                requestId: textOrHuge,
                name: textOrHuge,
                totalStock: int32,
                priceMinor: int64,
                currency: fc.oneof(text, fc.stringMatching(/^[A-Z]{3}$/)),
                startsAt: date,
                endsAt: date,
                perUserLimit: int32,
                paymentWindowSeconds: int32,
                releasePolicy: enumValue,
                accessRules: fc.option(
                  fc.record({
                    challengeRequired: fc.boolean(),
                    allowedUsers: fc.array(text, { maxLength: 5 }),
                    blockedUsers: fc.array(text, { maxLength: 5 }),
                    minAccountAge: fc.option(fc.record({ seconds: int64, nanos: int32 }), { nil: undefined }),
                  }),
                  { nil: undefined },
                ),
              },
              { requiredKeys: [] },
            ),
            badCreateFields,
          )
          .map(([random, bad]) => saleRequest({ ...random, ...bad } as never)),
      ),
    codes: [C.INVALID_ARGUMENT],
  },
  GetSale: { server: "inventory", method: SaleServiceService.getSale, input: saleIdRequest, codes: READ_SALE },
  ListSales: {
    server: "inventory",
    method: SaleServiceService.listSales,
    input: () =>
      withHeaders(
        fc.record({
          pageSize: int32,
          pageToken: fc.oneof(
            textOrHuge,
            text.map((t) => Buffer.from(t).toString("base64url")),
          ),
        }),
      ),
    codes: [C.OK, C.INVALID_ARGUMENT],
  },
  GetSaleStatus: { server: "inventory", method: SaleServiceService.getSaleStatus, input: saleIdRequest, codes: READ_SALE },
  OpenSale: { server: "inventory", method: SaleServiceService.openSale, input: saleIdRequest, codes: [C.INVALID_ARGUMENT, C.NOT_FOUND] },
  CloseSale: { server: "inventory", method: SaleServiceService.closeSale, input: saleIdRequest, codes: [C.INVALID_ARGUMENT, C.NOT_FOUND] },
  WarmSale: { server: "inventory", method: SaleServiceService.warmSale, input: saleIdRequest, codes: [C.INVALID_ARGUMENT, C.NOT_FOUND] },
  ReconcileSale: {
    server: "inventory",
    method: SaleServiceService.reconcileSale,
    input: () => withHeaders(fc.record({ saleId: unknownSaleId, repair: fc.boolean() })),
    codes: [C.INVALID_ARGUMENT, C.NOT_FOUND],
  },

  // InventoryService (internal)
  Reserve: {
    server: "inventory",
    method: InventoryServiceService.reserve,
    input: () =>
      withHeaders(
        fc.record({
          items: fc.oneof(
            { weight: 5, arbitrary: fc.array(reserveItem(), { minLength: 0, maxLength: 8 }) },
            {
              weight: 1,
              arbitrary: fc
                .integer({ min: 513, max: 600 })
                .map((n) => Array.from({ length: n }, (_, i) => ({ saleId: open.saleId, userId: `u${i}`, requestId: `r${i}`, quantity: 1 }))),
            },
          ),
        }),
      ),
    codes: [C.OK, C.INVALID_ARGUMENT],
    check: (outcome) => {
      // Every item is refused: none reserves.
      for (const result of (outcome.messages[0] as { results?: { reason: number; reservationId: string }[] } | undefined)?.results ?? []) {
        expect(result.reason, JSON.stringify(result)).not.toBe(0);
        expect(result.reservationId).toBe("");
      }
    },
  },
  Release: {
    server: "inventory",
    method: InventoryServiceService.release,
    input: () => withHeaders(fc.record({ reservationId: unknownOrderId, cause: text })),
    // An unknown reservation (in a known sale or not) is NOT_FOUND; nothing is released.
    codes: [C.INVALID_ARGUMENT, C.NOT_FOUND],
  },
  GetStock: { server: "inventory", method: InventoryServiceService.getStock, input: saleIdRequest, codes: READ_SALE },
  GetReservation: {
    server: "inventory",
    method: InventoryServiceService.getReservation,
    input: () =>
      withHeaders(
        fc.record({
          reservationId: fc.oneof(
            unknownOrderId,
            fc.constant(null).map(() => ownerOrder.orderId),
          ),
        }),
      ),
    codes: [C.OK, C.INVALID_ARGUMENT, C.NOT_FOUND],
  },

  // OrderService
  PlaceOrder: {
    server: "order",
    method: OrderServiceService.placeOrder,
    input: () =>
      withHeaders(
        fc.record({
          saleId: fc.oneof(unknownSaleId, fc.constantFrom(...realSaleIds())),
          quantity: int32,
          requestId: textOrHuge,
          purchaseToken: fc.oneof(
            fc.constant(""),
            textOrHuge,
            fc.integer({ min: 2040, max: 2060 }).map((n) => "t".repeat(n)),
          ),
          retry: fc.boolean(),
        }),
        metadataArb,
      ),
    codes: [C.UNAUTHENTICATED, C.INVALID_ARGUMENT, C.NOT_FOUND, C.FAILED_PRECONDITION, C.PERMISSION_DENIED, C.ALREADY_EXISTS],
  },
  GetOrder: {
    server: "order",
    method: OrderServiceService.getOrder,
    input: () => orderRequest({}),
    codes: [C.UNAUTHENTICATED, C.INVALID_ARGUMENT, C.NOT_FOUND],
    check: othersOrderNotFound,
  },
  WatchOrder: {
    server: "order",
    method: OrderServiceService.watchOrder,
    input: () => orderRequest({ lastStatus: fc.option(enumValue, { nil: undefined }) }),
    codes: [C.UNAUTHENTICATED, C.INVALID_ARGUMENT, C.NOT_FOUND],
    check: (outcome, input) => {
      othersOrderNotFound(outcome, input);
      expect(outcome.messages).toEqual([]);
    },
  },
  ListOrders: {
    server: "order",
    method: OrderServiceService.listOrders,
    input: () =>
      withHeaders(
        fc.record({
          pageSize: int32,
          pageToken: fc.oneof(
            textOrHuge,
            text.map((t) => Buffer.from(t).toString("base64url")),
          ),
          saleId: fc.oneof(
            fc.constant(""),
            unknownSaleId,
            fc.constant(null).map(() => open.saleId),
          ),
        }),
        metadataArb,
      ),
    codes: [C.OK, C.UNAUTHENTICATED, C.INVALID_ARGUMENT],
    check: (outcome) => {
      // Never anyone else's order (the only order is the owner's, and the caller is never the owner).
      if (outcome.code === C.OK) expect((outcome.messages[0] as { orders: unknown[] }).orders).toEqual([]);
    },
  },
  PayOrder: {
    server: "order",
    method: OrderServiceService.payOrder,
    input: () => orderRequest({ paymentReference: textOrHuge, requestId: textOrHuge }),
    codes: [C.UNAUTHENTICATED, C.INVALID_ARGUMENT, C.NOT_FOUND],
    check: othersOrderNotFound,
  },
  CancelOrder: {
    server: "order",
    method: OrderServiceService.cancelOrder,
    input: () => orderRequest({ requestId: textOrHuge }),
    codes: [C.UNAUTHENTICATED, C.INVALID_ARGUMENT, C.NOT_FOUND],
    check: othersOrderNotFound,
  },

  // AccessService (gateway)
  GetChallenge: {
    server: "gateway",
    method: AccessServiceService.getChallenge,
    input: () => accessInput(fc.constant(null).map(() => ({}))),
    codes: [C.UNAUTHENTICATED, C.INVALID_ARGUMENT, C.NOT_FOUND, C.FAILED_PRECONDITION, C.PERMISSION_DENIED],
  },
  IssuePurchaseToken: {
    server: "gateway",
    method: AccessServiceService.issuePurchaseToken,
    input: () => accessInput(fc.record({ challengeId: fc.oneof(textOrHuge, ulidLike), challengeAnswer: fc.oneof(text, fc.integer().map(String)) })),
    // OK: a token for the open sale (signing writes nothing, and the token buys nothing unless presented).
    codes: [C.OK, C.UNAUTHENTICATED, C.INVALID_ARGUMENT, C.NOT_FOUND, C.FAILED_PRECONDITION, C.PERMISSION_DENIED],
  },

  // DeadLetterService (writer, operators)
  ListDeadLetters: {
    server: "writer",
    method: DeadLetterServiceService.listDeadLetters,
    input: () =>
      withHeaders(
        fc.record({
          pageSize: int32,
          pageToken: fc.oneof(
            textOrHuge,
            fc.bigInt({ min: -5n, max: 10n ** 20n }).map((n) => Buffer.from(String(n)).toString("base64url")),
          ),
          startSequence: uint64,
        }),
      ),
    codes: [C.OK, C.INVALID_ARGUMENT],
  },
  ReplayDeadLetters: {
    server: "writer",
    method: DeadLetterServiceService.replayDeadLetters,
    input: () =>
      withHeaders(
        fc.record({
          sequences: fc.oneof(
            fc.array(uint64, { maxLength: 5 }),
            fc.integer({ min: 99, max: 130 }).map((n) => Array.from({ length: n }, (_, i) => i + 1)),
          ),
          all: fc.boolean(),
          requestId: textOrHuge,
        }),
      ),
    // No dead letters here: a valid request replays nothing.
    codes: [C.OK, C.INVALID_ARGUMENT],
  },
};

function reserveItem() {
  return fc.oneof(
    fc.record({ saleId: unknownSaleId, userId: fc.oneof(text, validUser), requestId: fc.oneof(text, fc.constant("r-1")), quantity: int32 }),
    // A real sale, with one thing wrong: the user, the request id, or the quantity (over the per-user limit of 1, or out of range).
    fc
      .tuple(
        fc.record({ userId: validUser, requestId: fc.stringMatching(/^[A-Za-z0-9._:-]{1,64}$/), quantity: fc.constant(1) }),
        fc.oneof(
          fc.record({ userId: fc.constantFrom("", "bad user", "u".repeat(65), "a|b") }),
          fc.record({ requestId: fc.constantFrom("", "bad|request", "r".repeat(65)) }),
          fc.record({ quantity: fc.oneof(fc.integer({ min: 2, max: 200 }), fc.integer({ max: 0 })) }),
        ),
      )
      .map(([item, bad]) => ({ saleId: open.saleId, ...item, ...bad })),
  );
}

function orderRequest(fields: Record<string, fc.Arbitrary<unknown>>) {
  return withHeaders(
    fc.record({
      orderId: fc.oneof(
        unknownOrderId,
        fc.constant(null).map(() => ownerOrder.orderId),
      ),
      ...fields,
    }),
    metadataArb,
  );
}

/** Another user asking for the owner's order gets NOT_FOUND, never the order. */
function othersOrderNotFound(outcome: CallOutcome, input: { request: { orderId: string }; headers: Headers }) {
  if (input.request.orderId === ownerOrder.orderId && hasValidUser(input.headers)) {
    // A malformed field (payment reference, request id, last status) may be named first, or the message be over the limit.
    expect([C.NOT_FOUND, C.INVALID_ARGUMENT, C.RESOURCE_EXHAUSTED]).toContain(outcome.code);
  }
  expect(JSON.stringify(outcome.messages)).not.toContain(ownerOrder.orderId);
}

/**
 * AccessService requests that are all refused: a GetChallenge an eligible buyer makes would store a
 * challenge (valid input), so real sales come only with a missing or malformed buyer or account
 * time, or, on the guarded sale, an ineligible buyer ("mallory", or an account younger than a day).
 */
function accessInput(fields: fc.Arbitrary<Record<string, unknown>>) {
  const anySale = fc.oneof(
    unknownSaleId,
    fc.integer({ min: 0, max: 3 }).map((i) => realSaleIds()[i]),
  );
  const badAccountTime = fc.constantFrom(["yesterday"], ["2024-13-01T00:00:00Z"], [""], ["2024-05-01T12:00:00Z", "2024-05-01T12:00:00Z"]);
  const cases = fc.oneof(
    fc.record({ saleId: unknownSaleId, headers: metadataArb }),
    fc.record({ saleId: anySale, headers: metadataArb.filter((h) => !hasValidUser(h)) }),
    fc.record({ saleId: anySale, headers: fc.record({ [USER_ID_HEADER]: validUser.map((u) => [u]), [ACCOUNT_CREATED_AT_HEADER]: badAccountTime }) }),
    fc.record({
      saleId: fc.constant(null).map(() => guarded.saleId),
      headers: fc.oneof(
        fc.record({ [USER_ID_HEADER]: fc.constant(["mallory"]), [ACCOUNT_CREATED_AT_HEADER]: fc.constant([new Date(Date.now() - 30 * 86_400_000).toISOString()]) }),
        fc.record({ [USER_ID_HEADER]: validUser.map((u) => [u]), [ACCOUNT_CREATED_AT_HEADER]: fc.constant([new Date().toISOString()]) }),
        fc.record({ [USER_ID_HEADER]: validUser.map((u) => [u]) }),
      ),
    }),
  );
  return fc.tuple(cases, fields).map(([{ saleId, headers }, rest]) => ({ request: { saleId, ...rest }, headers: headers as Headers }));
}

// ---------------------------------------------------------------- field-level fuzzing

const NEVER = [C.INTERNAL, C.UNKNOWN];

async function runTarget(name: string, target: Target, numRuns = RUNS) {
  const method = target.method;
  await fc.assert(
    fc.asyncProperty(target.input(), async (input) => {
      const oversized = encodedSize(method, input.request) > MAX();
      const outcome = await callMethod(clients[target.server], method, { request: input.request }, toMetadata(input.headers));
      const allowed = oversized ? [...target.codes, C.RESOURCE_EXHAUSTED] : target.codes;
      expect(NEVER, `${name}: ${outcome.details}`).not.toContain(outcome.code);
      expect(allowed, `${name} ended ${status[outcome.code]}: ${outcome.details}`).toContain(outcome.code);
      target.check?.(outcome, input);
    }),
    fuzzParams(numRuns),
  );
}

describe("fuzzed fields and metadata", () => {
  let before: Record<string, unknown>;
  beforeAll(async () => {
    before = await snapshot();
  });

  for (const [name, target] of Object.entries(TARGETS)) {
    it(`${name}: a documented status, never INTERNAL or UNKNOWN; nothing changes; the servers still answer`, async () => {
      await runTarget(name, target);
      expect(await snapshot()).toEqual(before);
      await expectAllServing();
    });
  }
});

// ---------------------------------------------------------------- raw bytes

/** A valid encoding of a typical request of each method, to mutate. */
function sampleBytes(method: AnyMethod, name: string): Buffer {
  const samples: Record<string, unknown> = {
    // Wrong in three fields: a few flipped or appended bytes cannot make it a valid sale.
    CreateSale: saleRequest({ requestId: "", totalStock: 0, currency: "eur" }),
    Reserve: { items: [{ saleId: ulid(), userId: "u", requestId: "r", quantity: 1 }] },
    PlaceOrder: { saleId: open.saleId, quantity: 1, requestId: "raw-1", purchaseToken: "x.y.z", retry: false },
    ListOrders: { pageSize: 5, pageToken: "", saleId: open.saleId },
    ListSales: { pageSize: 5, pageToken: "" },
    ListDeadLetters: { pageSize: 5, pageToken: "", startSequence: 3 },
    ReplayDeadLetters: { sequences: [1, 2], all: false, requestId: "raw-replay" },
    PayOrder: { orderId: `${open.saleId}-${ulid()}`, paymentReference: "p", requestId: "raw-pay" },
    CancelOrder: { orderId: `${open.saleId}-${ulid()}`, requestId: "raw-cancel" },
    GetOrder: { orderId: `${open.saleId}-${ulid()}` },
    WatchOrder: { orderId: `${open.saleId}-${ulid()}`, lastStatus: 1 },
    Release: { reservationId: `${open.saleId}-${ulid()}`, cause: "CANCELLED" },
    GetReservation: { reservationId: `${open.saleId}-${ulid()}` },
    IssuePurchaseToken: { saleId: ulid(), challengeId: "c", challengeAnswer: "7" },
    ReconcileSale: { saleId: ulid(), repair: true },
  };
  return method.requestSerialize(samples[name] ?? { saleId: ulid() }) as Buffer;
}

/** Random bytes, or a valid message truncated, with bytes flipped, or with bytes appended. */
function bytesFor(sample: Buffer): fc.Arbitrary<Uint8Array> {
  return fc.oneof(
    fc.uint8Array({ maxLength: 512 }),
    fc.integer({ min: 0, max: Math.max(0, sample.length - 1) }).map((n) => sample.subarray(0, n)),
    fc.array(fc.tuple(fc.nat(), fc.integer({ min: 1, max: 255 })), { minLength: 1, maxLength: 6 }).map((flips) => {
      const copy = Buffer.from(sample);
      for (const [at, mask] of flips) if (copy.length > 0) copy[at % copy.length] ^= mask;
      return copy;
    }),
    fc.uint8Array({ minLength: 1, maxLength: 64 }).map((tail) => Buffer.concat([sample, tail])),
    // A varint field set beyond its type: 2^32, 2^53 + 1, 2^64 - 1 (what an int32, an enum or a uint64 cannot hold).
    fc
      .tuple(
        fc.integer({ min: 1, max: 14 }),
        fc.constantFrom([0x80, 0x80, 0x80, 0x80, 0x10], [0x81, 0x80, 0x80, 0x80, 0x80, 0x80, 0x80, 0x10], [0xff, 0xff, 0xff, 0xff, 0xff, 0xff, 0xff, 0xff, 0xff, 0x01]),
      )
      .map(([field, varint]) => Buffer.concat([sample, Buffer.from([field << 3, ...varint])])),
  );
}

describe("raw request bytes", () => {
  let before: Record<string, unknown>;
  beforeAll(async () => {
    before = await snapshot();
  });

  for (const [name, target] of Object.entries(TARGETS)) {
    it(`${name}: INVALID_ARGUMENT or a documented status, never INTERNAL or UNKNOWN; nothing changes`, async () => {
      const sample = sampleBytes(target.method, name);
      // A well-formed caller (and, for PlaceOrder, a token that fails): the bytes are what is judged.
      const metadata = purchaseMetadata("raw-bytes", open.saleId, "not.a.token");
      await fc.assert(
        fc.asyncProperty(bytesFor(sample), async (bytes) => {
          const outcome = await callMethod(clients[target.server], target.method, { bytes }, metadata.clone());
          expect(NEVER, `${name}: ${outcome.details}`).not.toContain(outcome.code);
          // Bytes that happen to decode are a request like any other: the RPC's own codes, and OK for those that can succeed.
          expect([...target.codes, C.OK, C.INVALID_ARGUMENT, C.NOT_FOUND], `${name} ended ${status[outcome.code]}: ${outcome.details}`).toContain(outcome.code);
          if (outcome.code === C.INVALID_ARGUMENT && outcome.details.includes("not a valid protobuf message")) {
            expect(outcome.reason).toBe("INVALID_ARGUMENT");
          }
        }),
        fuzzParams(),
      );
      expect(await snapshot()).toEqual(before);
      await expectAllServing();
    });
  }
});

// ---------------------------------------------------------------- size cap and memory

/** Resident memory of a process, from /proc (Linux). */
const rssBytes = (pid: number) => Number(/VmRSS:\s+(\d+) kB/.exec(readFileSync(`/proc/${pid}/status`, "utf8"))![1]) * 1024;

describe("messages over GRPC_MAX_MESSAGE_BYTES", () => {
  // The inventory service runs as a child process here (as `npm start` runs it, with its bounded
  // heap): its resident memory is then its own, not mixed with this test's buffers and clients.
  let child: ServiceProcess;
  let client: Client;
  let address: string;
  beforeAll(async () => {
    address = `127.0.0.1:${await freePort()}`;
    child = spawnService("inventory-child", "services/inventory/main.ts", {
      cwd: process.cwd(),
      env: {
        ...process.env,
        SECKILL_NAMESPACE: stack.config.namespace,
        DATABASE_URL: stack.config.databaseUrl,
        REDIS_URL: stack.config.redisUrl,
        NATS_URL: stack.config.natsUrl,
        INVENTORY_ADDR: address,
        METRICS_ADDR: "",
        SWEEP_INTERVAL_MS: "0",
        LOG_LEVEL: "error",
      },
    });
    await waitServing(address, 30_000, () => child.running());
    client = rawClient(address);
  }, 40_000);
  afterAll(async () => {
    client?.close();
    await child?.stop(5000);
  });

  it("are RESOURCE_EXHAUSTED, malformed ones INVALID_ARGUMENT, and the server's memory stays flat over hundreds of them", async () => {
    const max = stack.config.grpcMaxMessageBytes;
    const oversized = Buffer.alloc(max + 64 * 1024, 0x0a); // field 1, length 10, over and over: well formed but too big
    const malformed = Buffer.from([0x0a, 0xff, 0xff, 0xff, 0xff, 0x0f, 0x41]); // a length far past the end
    const methods: AnyMethod[] = [SaleServiceService.createSale, SaleServiceService.getSale, InventoryServiceService.reserve, SaleServiceService.listSales];
    const round = async (n: number) => {
      const codes = new Map<string, number>();
      for (let i = 0; i < n; i += 10) {
        const batch = Array.from({ length: 10 }, (_, j) => {
          const method = methods[(i + j) % methods.length];
          return Promise.all([callMethod(client, method, { bytes: oversized }), callMethod(client, method, { bytes: malformed })]);
        });
        for (const [big, bad] of await Promise.all(batch)) {
          const key = `${status[big.code]}/${status[bad.code]}`;
          codes.set(key, (codes.get(key) ?? 0) + 1);
        }
      }
      return Object.fromEntries(codes);
    };
    expect(await round(50)).toEqual({ "RESOURCE_EXHAUSTED/INVALID_ARGUMENT": 50 }); // warm-up: code loaded, pools grown
    // Twice 400 oversized messages, 128 MB each time: more than the service's whole heap (--max-old-space-size=128).
    const rss = [rssBytes(child.pid)];
    for (let i = 0; i < 2; i++) {
      expect(await round(400)).toEqual({ "RESOURCE_EXHAUSTED/INVALID_ARGUMENT": 400 });
      rss.push(rssBytes(child.pid));
    }
    const mb = rss.map((b) => Math.round(b / 2 ** 20));
    // Generous: garbage not yet collected and allocator slack, but far below what was sent; and the
    // second round, once the process has reached its working size, adds less than the first allows.
    expect(rss[1] - rss[0], `RSS ${mb.join(" → ")} MB`).toBeLessThan(64 * 2 ** 20);
    expect(rss[2] - rss[0], `RSS ${mb.join(" → ")} MB`).toBeLessThan(64 * 2 ** 20);
    expect(await checkHealth(address, "", 2000)).toBe("SERVING");
  });
});
