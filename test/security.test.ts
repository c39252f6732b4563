// Security on real servers, beyond what other files already show:
// - purchase tokens: test/purchase-tokens.test.ts covers a flipped signature, an
//   edited payload, alg none, an unknown kid, expiry, another audience, user or
//   sale, replay for another request id and garbage. Here: HMAC keyed with the
//   public key, a DER signature, a key embedded in the header (jwk/jku), a kid
//   that is a path, nbf in the future, another issuer, claims missing or of the
//   wrong type, and one token replayed concurrently under many request ids;
// - other users' orders: test/bad-input.test.ts and test/orders.test.ts cover
//   GetOrder, WatchOrder, PayOrder and CancelOrder by another user (NOT_FOUND)
//   and ListOrders. Here: user ids that differ only in case or punctuation,
//   padded or repeated x-user-id, and ListOrders page tokens made from another
//   user's order;
// - the edge: envoy/config.test.ts ("rejects a route that reaches the
//   InventoryService", "rejects a catch-all that forwards the admin methods")
//   and envoy/live.test.ts (UNIMPLEMENTED through a real Envoy). Here: every
//   InventoryService, DeadLetterService and SaleService operator method read
//   from proto/ is answered by Envoy itself in both committed bootstraps;
// - rate limits: gateway/ratelimit/rate-limit-service.test.ts covers the
//   counting. Here: one user and one address flooding the shipped limits
//   concurrently, and descriptor values that try to share another's counter;
// - secrets: never in the logs of a purchase flow at debug level, never in the
//   repository;
// - oversized request metadata: refused alone, on every server, while a
//   WatchOrder stream and unary calls share the connection.
import { createHmac, createPrivateKey, createPublicKey, generateKeyPairSync, sign } from "node:crypto";
import { execFileSync } from "node:child_process";
import { mkdtemp, readdir, readFile, rm, writeFile } from "node:fs/promises";
import { readFileSync, statSync } from "node:fs";
import { tmpdir } from "node:os";
import { join, resolve } from "node:path";
import { parse } from "yaml";
import { afterAll, beforeAll, describe, expect, it } from "vitest";
import { credentials, Metadata, status, type Client, type ServiceError } from "@grpc/grpc-js";
import {
  AccessServiceClient,
  MAX_METADATA_BYTES,
  OrderServiceClient,
  OrderServiceService,
  OrderStatus,
  SaleServiceClient,
  USER_ID_HEADER,
  callUnary,
  purchaseMetadata,
  userMetadata,
  watchOrder,
  type Order,
  type Sale,
} from "@seckill/sdk";
import { OUTPUT_FILES, type Variant } from "../envoy/src/topology.js";
import { readContract } from "../envoy/src/contract.js";
import { BootstrapFacts, PUBLIC_METHODS } from "../envoy/src/semantics.js";
import { startGateway, type GatewayApp } from "../gateway/app.js";
import { signJwt, type SigningKey } from "../gateway/access/jwt.js";
import { JWKS_PATH } from "../gateway/access/jwks-server.js";
import { rateLimitServiceClient, type RateLimitDescriptor, type RateLimitResponse } from "../gateway/ratelimit/envoy-protos.js";
import { base64url } from "../services/common/jwt.js";
import { createLogger } from "../services/common/log.js";
import { startInventory, type InventoryApp } from "../services/inventory/app.js";
import { startOrder, type OrderApp } from "../services/order/app.js";
import { startWriter, type WriterApp } from "../services/order/writer/app.js";
import { address, shouldRateLimit, user } from "./support/rate-limit.js";
import { callMethod, rawClient, type AnyMethod } from "./support/raw-grpc.js";
import { eventually, refusal, saleRequest, startTestStack, type TestStack } from "./support/stack.js";

const root = resolve(import.meta.dirname, "..");

/** Every log line of the services this file starts, at debug level. */
const logLines: string[] = [];
/** Every token this file sent or received: none may be logged. */
const tokensSeen = new Set<string>();

let stack: TestStack;
let keysDir: string;
let inventory: InventoryApp;
let gateway: GatewayApp;
let order: OrderApp;
let writer: WriterApp;
let sales: SaleServiceClient;
let access: AccessServiceClient;
let orders: OrderServiceClient;

beforeAll(async () => {
  // The test stack gives the database, stream and namespace; the services under test here log at debug into logLines.
  stack = await startTestStack();
  const log = createLogger({ test: "security" }, "debug", (line) => logLines.push(line));
  keysDir = await mkdtemp(join(tmpdir(), "seckill-keys-"));
  inventory = await startInventory({ ...stack.config, inventoryAddr: "127.0.0.1:0", logLevel: "debug" }, log);
  gateway = await startGateway({ ...stack.config, gatewayAddr: "127.0.0.1:0", gatewayJwksAddr: "127.0.0.1:0", purchaseTokenKeysDir: keysDir }, log);
  const jwksUrl = `http://${gateway.access!.jwks.address}${JWKS_PATH}`;
  const config = { ...stack.config, inventoryAddr: inventory.address, purchaseTokenJwksUrl: jwksUrl, purchaseTokenRequired: true };
  order = await startOrder({ ...config, orderAddr: "127.0.0.1:0" }, log);
  writer = await startWriter({ ...config, writerAddr: "127.0.0.1:0" }, log);
  sales = new SaleServiceClient(inventory.address, credentials.createInsecure());
  access = new AccessServiceClient(gateway.address, credentials.createInsecure());
  orders = new OrderServiceClient(order.address, credentials.createInsecure());
});

afterAll(async () => {
  sales?.close();
  access?.close();
  orders?.close();
  await Promise.allSettled([order?.stop(), writer?.stop(), gateway?.stop()]);
  await inventory?.stop();
  if (keysDir) await rm(keysDir, { recursive: true, force: true });
  await stack?.stop();
});

// ---------------------------------------------------------------- helpers

const createSale = async (overrides: Parameters<typeof saleRequest>[0] = {}): Promise<Sale> =>
  (await callUnary(sales, "createSale", saleRequest({ name: "Security sale", ...overrides }))).sale!;

async function tokenFor(saleId: string, userId: string): Promise<string> {
  const { token } = await callUnary(access, "issuePurchaseToken", { saleId, challengeId: "", challengeAnswer: "" }, { metadata: userMetadata(userId) });
  tokensSeen.add(token);
  return token;
}

let requests = 0;
function place(saleId: string, userId: string, token: string, requestId = `sec-${++requests}`) {
  tokensSeen.add(token);
  return callUnary(orders, "placeOrder", { saleId, quantity: 1, requestId, purchaseToken: "", retry: false }, { metadata: purchaseMetadata(userId, saleId, token) });
}

const payloadOf = (token: string) => JSON.parse(Buffer.from(token.split(".")[1], "base64url").toString()) as Record<string, unknown>;

/** The gateway's signing key, read from its directory. */
async function realKey(): Promise<SigningKey & { pem: string }> {
  const kid = gateway.access!.keys.signing().kid;
  const pem = await readFile(join(keysDir, `${kid}.pem`), "utf8");
  return { kid, privateKey: createPrivateKey(pem), pem };
}

const stockLeft = async (saleId: string) => (await callUnary(stack.inventoryClient, "getStock", { saleId })).stockLeft;
const claims = async () => (await stack.redis.keys(`${stack.config.namespace}:token:*`)).sort();

async function expectTokenRefused(sale: Sale, userId: string, token: string, why: RegExp) {
  const claimedBefore = await claims();
  const stockBefore = await stockLeft(sale.saleId);
  const r = await refusal(place(sale.saleId, userId, token));
  expect({ code: r.code, reason: r.reason }, r.message).toEqual({ code: status.PERMISSION_DENIED, reason: "PURCHASE_TOKEN_INVALID" });
  expect(r.message).toMatch(why);
  expect(await stockLeft(sale.saleId)).toBe(stockBefore);
  expect(await claims()).toEqual(claimedBefore);
}

// ---------------------------------------------------------------- purchase tokens

describe("forged purchase tokens are PURCHASE_TOKEN_INVALID and change nothing", () => {
  let sale: Sale;
  let token: string;
  let now: number;
  beforeAll(async () => {
    sale = await createSale({ totalStock: 5, perUserLimit: 5 });
    token = await tokenFor(sale.saleId, "forger");
    now = Math.floor(Date.now() / 1000);
  });

  it("HS256 keyed with the gateway's public key (the algorithm-confusion attack)", async () => {
    const key = await realKey();
    const publicPem = createPublicKey(key.privateKey).export({ format: "pem", type: "spki" }) as string;
    const head = base64url(JSON.stringify({ alg: "HS256", typ: "JWT", kid: key.kid }));
    const body = token.split(".")[1];
    for (const secret of [publicPem, Buffer.from(JSON.stringify(createPublicKey(key.privateKey).export({ format: "jwk" })))]) {
      const mac = createHmac("sha256", secret).update(`${head}.${body}`).digest();
      await expectTokenRefused(sale, "forger", `${head}.${body}.${base64url(mac)}`, /algorithm "HS256" not accepted/);
    }
  });

  it("a valid signature in DER form instead of r||s", async () => {
    const key = await realKey();
    const [head, body] = token.split(".");
    const der = sign("sha256", Buffer.from(`${head}.${body}`), { key: key.privateKey, dsaEncoding: "der" });
    await expectTokenRefused(sale, "forger", `${head}.${body}.${base64url(der)}`, /malformed signature/);
  });

  it("the attacker's own key embedded in the header (jwk, jku, x5u) is never used", async () => {
    const attacker = generateKeyPairSync("ec", { namedCurve: "P-256" });
    const jwk = attacker.publicKey.export({ format: "jwk" });
    const embedded = { jwk: { ...jwk, kid: "attacker", alg: "ES256", use: "sig" }, jku: "http://127.0.0.1:9/jwks.json", x5u: "http://127.0.0.1:9/cert.pem" };
    const claimsOf = payloadOf(token);
    await expectTokenRefused(sale, "forger", signJwt({ kid: "attacker", privateKey: attacker.privateKey }, claimsOf, embedded), /unknown key id/);
    // Under the gateway's own kid: the published key decides, and it does not match.
    await expectTokenRefused(sale, "forger", signJwt({ kid: (await realKey()).kid, privateKey: attacker.privateKey }, claimsOf, embedded), /bad signature/);
  });

  it("a kid that is a path or a URL names no key", async () => {
    const attacker = generateKeyPairSync("ec", { namedCurve: "P-256" }).privateKey;
    // (Each unknown kid makes the order service refetch the JWKS, at most once a second: a few cases only.)
    for (const kid of ["../../../../etc/passwd", `../${(await realKey()).kid}`, "http://127.0.0.1:9/key"]) {
      await expectTokenRefused(sale, "forger", signJwt({ kid, privateKey: attacker }, payloadOf(token)), /unknown key id/);
    }
  });

  it("signed with the real key but not valid yet, from another issuer, or with claims missing or of the wrong type", async () => {
    const key = await realKey();
    const base = payloadOf(token);
    const cases: [Record<string, unknown>, RegExp][] = [
      [{ ...base, nbf: now + 600 }, /not valid yet/],
      [{ ...base, iss: "someone-else" }, /wrong issuer/],
      [{ ...base, aud: ["elsewhere", "also-elsewhere"] }, /wrong audience/],
      [{ ...base, jti: undefined }, /missing jti/],
      [{ ...base, exp: String(now + 600) }, /missing exp/],
      [{ ...base, sub: ["forger"] }, /missing sub/],
      [{ ...base, exp: undefined }, /missing exp/],
    ];
    for (const [forged, why] of cases) await expectTokenRefused(sale, "forger", signJwt(key, forged), why);
  });

  it("one token sent concurrently under many request ids buys once", async () => {
    const fresh = await tokenFor(sale.saleId, "racer");
    const before = await stockLeft(sale.saleId);
    const outcomes = await Promise.allSettled(Array.from({ length: 12 }, (_, i) => place(sale.saleId, "racer", fresh, `race-${i}`)));
    const won = outcomes.filter((o) => o.status === "fulfilled") as PromiseFulfilledResult<{ order?: Order }>[];
    expect(won).toHaveLength(1);
    for (const o of outcomes) {
      if (o.status === "rejected") expect((o.reason as ServiceError).code).toBe(status.PERMISSION_DENIED);
    }
    expect(await stockLeft(sale.saleId)).toBe(before - 1);
    const listed = await callUnary(orders, "listOrders", { pageSize: 0, pageToken: "", saleId: sale.saleId }, { metadata: userMetadata("racer") });
    await eventually(async () => (await stack.db("orders").where({ sale_id: sale.saleId, user_id: "racer" })).length === 1, 15_000, "the order stored");
    expect(listed.orders.length).toBeLessThanOrEqual(1);
    expect((await stack.db("orders").where({ sale_id: sale.saleId, user_id: "racer" })).map((r: { id: string }) => r.id)).toEqual([won[0].value.order!.orderId]);
  });
});

// ---------------------------------------------------------------- other users' orders

describe("another user's order", () => {
  let sale: Sale;
  let erins: Order;
  let mallorys: Order;
  beforeAll(async () => {
    sale = await createSale({ totalStock: 5 });
    erins = (await place(sale.saleId, "erin", await tokenFor(sale.saleId, "erin"))).order!;
    mallorys = (await place(sale.saleId, "mallory", await tokenFor(sale.saleId, "mallory"))).order!;
    for (const [o, user] of [
      [erins, "erin"],
      [mallorys, "mallory"],
    ] as const) {
      await eventually(
        async () => (await callUnary(orders, "getOrder", { orderId: o.orderId }, { metadata: userMetadata(user) })).order!.status === OrderStatus.ORDER_STATUS_CREATED,
        15_000,
        `${user}'s order to be stored`,
      );
    }
  });

  const metadataOf = (...values: string[]) => {
    const m = new Metadata();
    for (const v of values) m.add(USER_ID_HEADER, v);
    return m;
  };
  const watchCode = (orderId: string, metadata: Metadata) =>
    new Promise<{ code: status; orders: Order[] }>((resolveWatch) => {
      const got: Order[] = [];
      const call = orders.watchOrder({ orderId }, metadata, { deadline: Date.now() + 3000 });
      call.on("data", (m: { order?: Order }) => got.push(m.order!));
      call.on("error", (e: ServiceError) => resolveWatch({ code: e.code, orders: got }));
      call.on("end", () => resolveWatch({ code: status.OK, orders: got }));
    });

  async function tryEverything(metadata: Metadata): Promise<status[]> {
    const orderId = erins.orderId;
    const codes: status[] = [];
    for (const call of [
      () => callUnary(orders, "getOrder", { orderId }, { metadata }),
      () => callUnary(orders, "payOrder", { orderId, paymentReference: "stolen", requestId: "steal-pay" }, { metadata }),
      () => callUnary(orders, "cancelOrder", { orderId, requestId: "steal-cancel" }, { metadata }),
    ]) {
      codes.push((await refusal(call())).code);
    }
    const watched = await watchCode(orderId, metadata);
    expect(watched.orders).toEqual([]);
    codes.push(watched.code);
    return codes;
  }

  it("is NOT_FOUND for a user id that differs only in case or punctuation", async () => {
    for (const user of ["Erin", "ERIN", "erin.", "erin@", "erin-", ".erin", "mallory"]) {
      expect(await tryEverything(metadataOf(user)), user).toEqual([status.NOT_FOUND, status.NOT_FOUND, status.NOT_FOUND, status.NOT_FOUND]);
    }
  });

  it("is UNAUTHENTICATED for a padded or repeated x-user-id, even one naming the owner", async () => {
    for (const values of [[" erin"], ["erin "], ["mallory", "erin"], ["erin", "erin"], ["erin,mallory"]]) {
      const codes = await tryEverything(metadataOf(...values));
      expect(codes, JSON.stringify(values)).toEqual([status.UNAUTHENTICATED, status.UNAUTHENTICATED, status.UNAUTHENTICATED, status.UNAUTHENTICATED]);
    }
  });

  it("never shows in ListOrders, whatever page token the caller crafts from it", async () => {
    const created = (await stack.db("orders").where({ id: erins.orderId }).first()).created_at as Date;
    const tokens = [
      "",
      Buffer.from(`${created.getTime()}|${erins.orderId}`).toString("base64url"),
      Buffer.from(`${created.getTime() + 1}|${erins.orderId}`).toString("base64url"),
      Buffer.from(`999999999999999|${erins.orderId}`).toString("base64url"),
    ];
    for (const pageToken of tokens) {
      for (const saleId of ["", sale.saleId]) {
        const listed = await callUnary(orders, "listOrders", { pageSize: 100, pageToken, saleId }, { metadata: userMetadata("mallory") });
        expect(
          listed.orders.every((o) => o.userId === "mallory"),
          pageToken,
        ).toBe(true);
        expect(listed.orders.map((o) => o.orderId)).not.toContain(erins.orderId);
      }
    }
  });

  it("is left as it was", async () => {
    const row = await stack.db("orders").where({ id: erins.orderId }).first();
    expect(row).toMatchObject({ user_id: "erin", status: "CREATED", paid_at: null, payment_reference: null, released_at: null });
    expect(mallorys.orderId).not.toBe(erins.orderId);
  });
});

// ---------------------------------------------------------------- the edge

describe("oversized request metadata", () => {
  /** One client connection, as a BFF's channel carrying many buyers' calls. */
  let shared: OrderServiceClient;
  beforeAll(() => {
    shared = new OrderServiceClient(order.address, credentials.createInsecure());
  });
  afterAll(() => shared?.close());

  const metadataOf = (entries: [string, string][]) => {
    const m = new Metadata();
    for (const [name, value] of entries) m.add(name, value);
    return m;
  };
  const bigUser = (chars: number) => metadataOf([[USER_ID_HEADER, "u".repeat(chars)]]);
  /** `fields` entries of `chars` characters each, besides a valid x-user-id. */
  const manyFields = (fields: number, chars: number) =>
    metadataOf([[USER_ID_HEADER, "mallory"], ...Array.from({ length: fields }, (_, i): [string, string] => [`x-pad-${i}`, "x".repeat(chars)])]);
  const health: AnyMethod = {
    path: "/grpc.health.v1.Health/Check",
    requestStream: false,
    responseStream: false,
    requestSerialize: (b: Buffer) => b,
    requestDeserialize: (b: Buffer) => b,
    responseSerialize: (b: Buffer) => b,
    responseDeserialize: (b: Buffer) => b,
    originalName: "check",
  };

  it("is RESOURCE_EXHAUSTED for that call alone: another user's WatchOrder stream and calls on the same connection go on", async () => {
    const sale = await createSale({ totalStock: 5 });
    const { orderId } = (await place(sale.saleId, "watcher", await tokenFor(sale.saleId, "watcher"))).order!;
    const seen: OrderStatus[] = [];
    let ended: ServiceError | null | undefined;
    const stream = shared.watchOrder({ orderId }, userMetadata("watcher"), { deadline: Date.now() + 60_000 });
    stream.on("data", (m: { order?: Order }) => seen.push(m.order!.status));
    stream.on("error", (e: ServiceError) => (ended ??= e));
    stream.on("end", () => (ended ??= null));
    await eventually(() => seen.includes(OrderStatus.ORDER_STATUS_CREATED), 15_000, "the watched order to be stored");
    const stillServed = async () => expect((await callUnary(shared, "getOrder", { orderId }, { metadata: userMetadata("watcher") })).order!.orderId).toBe(orderId);

    // Sent as they are (no SDK check): the server refuses them, 20 KB and 60 KB x-user-id, ~90 KB in 9 entries.
    const placeOrder = { saleId: sale.saleId, quantity: 1, requestId: "oversized", purchaseToken: "", retry: false };
    for (const [what, metadata] of [
      ["20 KB x-user-id", bigUser(20_000)],
      ["60 KB x-user-id", bigUser(60_000)],
      ["9 entries of 10 KB", manyFields(9, 10_000)],
    ] as const) {
      const outcome = await callMethod(shared, OrderServiceService.placeOrder, { request: placeOrder }, metadata);
      expect(outcome.code, what).toBe(status.RESOURCE_EXHAUSTED);
      await stillServed();
    }
    // Through the SDK, metadata no server could even decode (it would close the connection) is not sent.
    for (const [what, metadata] of [
      ["1 MB x-user-id", bigUser(1 << 20)],
      ["20 entries of 10 KB", manyFields(20, 10_000)],
    ] as const) {
      const r = await refusal(callUnary(shared, "placeOrder", placeOrder, { metadata }));
      expect(r.code, what).toBe(status.RESOURCE_EXHAUSTED);
      expect(r.message).toContain(`${MAX_METADATA_BYTES}-byte limit`);
      await stillServed();
    }
    await expect(watchOrder(shared, orderId, { userId: "u".repeat(1 << 20) }).next()).rejects.toMatchObject({ code: status.RESOURCE_EXHAUSTED });

    // The stream is still open and still delivers.
    expect(ended).toBeUndefined();
    await callUnary(shared, "cancelOrder", { orderId, requestId: "watcher-cancel" }, { metadata: userMetadata("watcher") });
    await eventually(() => ended !== undefined, 10_000, "the stream to end");
    expect(ended).toBeNull();
    expect(seen.at(-1)).toBe(OrderStatus.ORDER_STATUS_CANCELLED);
  });

  it("is capped by every server: inventory, gateway, order and writer", async () => {
    for (const [name, app] of [
      ["inventory", inventory],
      ["gateway", gateway],
      ["order", order],
      ["writer", writer],
    ] as const) {
      const client = rawClient(app.address);
      try {
        const refused = await callMethod(client, health, { bytes: Buffer.alloc(0) }, manyFields(2, 10_000));
        expect(refused.code, name).toBe(status.RESOURCE_EXHAUSTED);
        const served = await callMethod(client, health, { bytes: Buffer.alloc(0) }, manyFields(1, 10_000));
        expect(served.code, name).toBe(status.OK);
      } finally {
        client.close();
      }
    }
  });
});

describe("the edge", () => {
  it("answers every InventoryService, DeadLetterService and SaleService operator method itself, in both bootstraps", () => {
    const { services } = readContract();
    const internal = Object.entries(services).flatMap(([service, methods]) => {
      const open = PUBLIC_METHODS[service];
      return methods.filter((m) => open !== "all" && !(open ?? []).includes(m)).map((m) => `/${service}/${m}`);
    });
    // Read from proto/: a method added later is covered too.
    expect(internal).toEqual(
      expect.arrayContaining([
        "/seckill.v1.InventoryService/Reserve",
        "/seckill.v1.InventoryService/Release",
        "/seckill.v1.DeadLetterService/ReplayDeadLetters",
        "/seckill.v1.SaleService/CreateSale",
        "/seckill.v1.SaleService/ReconcileSale",
      ]),
    );
    for (const variant of ["local", "production"] as Variant[]) {
      const facts = new BootstrapFacts(parse(readFileSync(resolve(root, OUTPUT_FILES[variant]), "utf8")));
      for (const path of internal) {
        const outcome = facts.outcome(path);
        expect(outcome, `${variant}: ${path}`).not.toHaveProperty("cluster");
        if ("direct" in outcome) expect(outcome.direct, `${variant}: ${path}`).toBeGreaterThanOrEqual(400);
      }
    }
  });
});

// ---------------------------------------------------------------- rate limits

describe("flooding the RateLimitService with the shipped limits (gateway/ratelimit.yaml)", () => {
  // A gateway of its own on a stopped clock: every call falls in one window. The shipped numbers,
  // but per minute: a counter expires a second after its window in real time, and a loaded
  // machine may take longer than a second over the flood.
  const now = Date.UTC(2031, 0, 1, 12, 0, 0) + 500;
  let limiter: GatewayApp;
  let client: Client;
  let dir: string;
  beforeAll(async () => {
    dir = await mkdtemp(join(tmpdir(), "seckill-ratelimit-"));
    const shipped = readFileSync(resolve(root, "gateway/ratelimit.yaml"), "utf8");
    const perSecond = /^(\s+unit:) second$/gm;
    expect(shipped.match(perSecond)).toHaveLength(2);
    await writeFile(join(dir, "ratelimit.yaml"), shipped.replace(perSecond, "$1 minute"));
    limiter = await startGateway({ ...stack.config, gatewayAddr: "127.0.0.1:0", rateLimitConfig: join(dir, "ratelimit.yaml") }, createLogger({}, "error"), {
      access: false,
      clock: () => now,
    });
    const RateLimitService = rateLimitServiceClient();
    client = new RateLimitService(limiter.address, credentials.createInsecure());
  });
  afterAll(async () => {
    client?.close();
    await limiter?.stop();
    if (dir) await rm(dir, { recursive: true, force: true });
  });

  const check = (descriptors: RateLimitDescriptor[]) => shouldRateLimit(client, { domain: "seckill", descriptors });
  /** How many of the calls were allowed, sent `concurrency` at a time. */
  async function allowed(calls: (() => Promise<RateLimitResponse>)[], concurrency = 100): Promise<number> {
    let ok = 0;
    for (let i = 0; i < calls.length; i += concurrency) {
      const answers = await Promise.all(calls.slice(i, i + concurrency).map((c) => c()));
      ok += answers.filter((a) => a.overall_code === "OK").length;
    }
    return ok;
  }

  it("one user sending 200 calls at once gets exactly 20 through; others, and the same address, are not held back", async () => {
    const flood = Array.from({ length: 200 }, () => () => check([user("flooder"), address("10.1.1.1")]));
    expect(await allowed(flood, 200)).toBe(20);
    // Still refused from any other address: the limit is the user's.
    expect((await check([user("flooder"), address("10.2.2.2")])).overall_code).toBe("OVER_LIMIT");
    // Another user behind the same address is served.
    expect((await check([user("bystander"), address("10.1.1.1")])).overall_code).toBe("OK");
  });

  it("one address sending 2,100 calls as 2,100 users gets exactly 2,000 through; another address is not held back", async () => {
    const flood = Array.from({ length: 2100 }, (_, i) => () => check([user(`bot-${i}`), address("10.3.3.3")]));
    expect(await allowed(flood)).toBe(2000);
    expect((await check([user("bot-fresh"), address("10.3.3.3")])).overall_code).toBe("OVER_LIMIT");
    expect((await check([user("neighbour"), address("10.4.4.4")])).overall_code).toBe("OK");
  });

  it("a descriptor value cannot reach another value's counter through the key's separators", async () => {
    // The counter key is <ns>:rl:<domain>:<key>=<value>…:<window>; values are URI-encoded.
    const tricky = ["victim:1924992000", "victim/sale_id=x", "victim%3A1", "victim=", "victim\u0000", "victim "];
    for (const value of tricky)
      expect(
        await allowed(
          Array.from({ length: 25 }, () => () => check([user(value)])),
          25,
        ),
      ).toBe(20);
    expect((await check([user("victim")])).overall_code).toBe("OK");
    expect((await check([user("victim")])).statuses[0]!.limit_remaining).toBe(18);
  });
});

// ---------------------------------------------------------------- secrets

describe("secrets", () => {
  it("are never logged: a purchase flow at debug level logs no token, key material or database password", async () => {
    // A full flow through these services: a token, a purchase, a refused replay, a payment.
    const sale = await createSale({ totalStock: 3 });
    const token = await tokenFor(sale.saleId, "logged-buyer");
    const { order: placed } = await place(sale.saleId, "logged-buyer", token, "logged-1");
    await refusal(place(sale.saleId, "logged-buyer", token, "logged-2"));
    await eventually(
      async () =>
        (await callUnary(orders, "getOrder", { orderId: placed!.orderId }, { metadata: userMetadata("logged-buyer") })).order!.status === OrderStatus.ORDER_STATUS_CREATED,
      15_000,
      "the order to be stored",
    );
    await callUnary(orders, "payOrder", { orderId: placed!.orderId, paymentReference: "psp-123", requestId: "logged-pay" }, { metadata: userMetadata("logged-buyer") });

    const text = logLines.join("\n");
    // The capture works and holds debug lines about these very calls.
    expect(logLines.length).toBeGreaterThan(10);
    expect(text).toContain('"level":"debug"');
    expect(text).toContain("PURCHASE_TOKEN_INVALID");

    expect(tokensSeen.size).toBeGreaterThan(5);
    for (const seen of tokensSeen) {
      const [, body, signature] = seen.split(".");
      expect(text.includes(seen), `a token was logged: ${seen.slice(0, 20)}…`).toBe(false);
      if (body && body.length > 20) expect(text.includes(body), "a token's claims were logged").toBe(false);
      if (signature && signature.length > 20) expect(text.includes(signature), "a token's signature was logged").toBe(false);
    }
    for (const file of await readdir(keysDir)) {
      const pem = await readFile(join(keysDir, file), "utf8");
      const jwk = createPrivateKey(pem).export({ format: "jwk" });
      expect(text).not.toContain(jwk.d!);
      for (const line of pem.split("\n").filter((l) => l.length > 20 && !l.startsWith("-----"))) expect(text).not.toContain(line);
    }
    expect(text).not.toMatch(/PRIVATE KEY/);
    const db = new URL(stack.config.databaseUrl);
    expect(text).not.toContain(stack.config.databaseUrl);
    expect(text).not.toContain(`${db.username}:${db.password}@`);
    expect(text).not.toContain(stack.config.databaseAdminUrl);
  });

  describe("are never in the repository", () => {
    const tracked = execFileSync("git", ["ls-files", "-z"], { cwd: root, encoding: "utf8" }).split("\0").filter(Boolean);
    const textOf = (file: string): string | undefined => {
      try {
        if (statSync(join(root, file)).size > 2_000_000) return undefined;
        const content = readFileSync(join(root, file));
        return content.includes(0) ? undefined : content.toString("utf8");
      } catch {
        return undefined; // deleted in the work tree
      }
    };

    it("holds no private key, no credentials in a URL but the documented dev default or a placeholder, no key or .local/ file", () => {
      expect(tracked.length).toBeGreaterThan(50);
      const found: string[] = [];
      // Built so that this file does not match itself.
      const pem = new RegExp(["-----BEGIN", "( [A-Z]+)* PRIVATE KEY-----"].join(""));
      const credentialsInUrl = /\b[a-z][a-z0-9+.-]*:\/\/([^\s/:@'"`]+):([^\s/@'"`]+)@/g;
      const awsKey = new RegExp(["AKIA", "[0-9A-Z]{16}"].join(""));
      for (const file of tracked) {
        if (/(^|\/)\.local\//.test(file) || /\.(pem|key|p12|pfx)$/.test(file)) found.push(`${file}: a key or .local/ file is tracked`);
        const text = textOf(file);
        if (text === undefined) continue;
        if (pem.test(text)) found.push(`${file}: a PEM private key`);
        if (awsKey.test(text)) found.push(`${file}: an AWS access key id`);
        for (const m of text.matchAll(credentialsInUrl)) {
          const [, userName, password] = m;
          // The dev default, the dev overlay's self-declared ones, a masked one, or a placeholder (PASSWORD, <password>, ${DB_PASSWORD}).
          const placeholder = /^(\*+|[A-Z][A-Z_]*|<[^>]+>|\$\{?[A-Za-z_]+\}?)$/.test(password);
          const devOnly = /^dev-only-not-a-secret(-either)?$/.test(password) && file.startsWith("k8s/overlays/dev/");
          const documented = (userName === "seckill" && password === "seckill") || placeholder || devOnly;
          if (!documented) found.push(`${file}: credentials in a URL (${userName}:…)`);
        }
      }
      expect(found).toEqual([]);
    });

    it("ignores .local/, where the keys and the private servers' data live", () => {
      const ignored = execFileSync("git", ["check-ignore", ".local/keys/gateway.pem", ".local/pg/postgresql.conf"], { cwd: root, encoding: "utf8" });
      expect(ignored.trim().split("\n")).toEqual([".local/keys/gateway.pem", ".local/pg/postgresql.conf"]);
    });
  });
});
