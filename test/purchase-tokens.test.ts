// Purchase tokens at the order service, on real servers: the gateway issues
// them, PlaceOrder verifies them against the gateway's JWKS over HTTP. A token
// that fails any check is PERMISSION_DENIED PURCHASE_TOKEN_INVALID and leaves
// no trace; a token serves one purchase request, retries included; the keys
// rotate; without the keys nothing is bought on an unchecked token.
import { createPrivateKey, generateKeyPairSync } from "node:crypto";
import { readdir, readFile, utimes, writeFile } from "node:fs/promises";
import { freePort } from "../tools/stack/ports.js";
import { join } from "node:path";
import { afterAll, beforeAll, describe, expect, it } from "vitest";
import { status } from "@grpc/grpc-js";
import { callUnary, OrderStatus, purchaseMetadata, userMetadata, type OrderServiceClient, type Sale } from "@seckill/sdk";
import { signJwt, type SigningKey } from "../gateway/access/jwt.js";
import { startAccessFixture, type AccessFixture } from "./support/access.js";
import { refusal, startTestStack, type TestStack } from "./support/stack.js";

let stack: TestStack;
let gw: AccessFixture;
let order: Awaited<ReturnType<AccessFixture["startOrder"]>>;
beforeAll(async () => {
  stack = await startTestStack();
  gw = await startAccessFixture(stack);
  order = await gw.startOrder({ purchaseTokenRequired: true });
});
afterAll(async () => {
  await order?.stop();
  await gw?.stop();
  await stack?.stop();
});

let requests = 0;
const nextRequestId = () => `req-${++requests}`;

const tokenFor = async (saleId: string, userId: string) =>
  (await callUnary(gw.client, "issuePurchaseToken", { saleId, challengeId: "", challengeAnswer: "" }, { metadata: userMetadata(userId) })).token;

function place(client: OrderServiceClient, saleId: string, userId: string, token: string | undefined, requestId = nextRequestId(), field = "") {
  return callUnary(client, "placeOrder", { saleId, quantity: 1, requestId, purchaseToken: field, retry: false }, { metadata: purchaseMetadata(userId, saleId, token) });
}

/** The signing key the gateway uses now, read from its directory (to forge tokens with a real key). */
async function realKey(): Promise<SigningKey> {
  const kid = gw.access.keys.signing().kid;
  return { kid, privateKey: createPrivateKey(await readFile(join(gw.keysDir, `${kid}.pem`), "utf8")) };
}

const payloadOf = (token: string) => JSON.parse(Buffer.from(token.split(".")[1], "base64url").toString()) as Record<string, unknown>;

/** Nothing happened for the sale: full stock in Redis, no order, no token claimed. */
async function expectNoTrace(sale: Sale, userId: string) {
  expect((await callUnary(stack.inventoryClient, "getStock", { saleId: sale.saleId })).stockLeft).toBe(sale.totalStock);
  const listed = await callUnary(order.client, "listOrders", { pageSize: 0, pageToken: "", saleId: sale.saleId }, { metadata: userMetadata(userId) });
  expect(listed.orders).toEqual([]);
  expect(await claimedTokens()).toEqual(await claimedBefore);
}
const claimedTokens = async () => (await stack.redis.keys(`${stack.config.namespace}:token:*`)).sort();
let claimedBefore: Promise<string[]>;
const snapshotClaims = () => (claimedBefore = claimedTokens());

async function expectInvalid(call: Promise<unknown>, why: RegExp) {
  const r = await refusal(call);
  expect({ code: r.code, reason: r.reason }, r.message).toEqual({ code: status.PERMISSION_DENIED, reason: "PURCHASE_TOKEN_INVALID" });
  expect(r.message).toMatch(why);
}

describe("a purchase token", () => {
  it("from the gateway buys, claimed in Redis by the request id for the token's lifetime", async () => {
    const sale = await stack.createSale({ totalStock: 5 });
    const token = await tokenFor(sale.saleId, "alice");
    const { order: placed } = await place(order.client, sale.saleId, "alice", token, "alice-1");
    expect(placed!.status).toBe(OrderStatus.ORDER_STATUS_PENDING);
    const key = `${stack.config.namespace}:token:${payloadOf(token).jti}`;
    expect(await stack.redis.get(key)).toBe("alice-1");
    const ttl = await stack.redis.pttl(key);
    expect(ttl).toBeGreaterThan(0);
    expect(ttl).toBeLessThanOrEqual(stack.config.purchaseTokenTtlMs + 5000);
  });

  it("in the purchase_token field works too; field and metadata must agree", async () => {
    const sale = await stack.createSale({ totalStock: 5 });
    const token = await tokenFor(sale.saleId, "bob");
    const { order: placed } = await place(order.client, sale.saleId, "bob", undefined, "bob-1", token);
    expect(placed!.status).toBe(OrderStatus.ORDER_STATUS_PENDING);
    const other = await tokenFor(sale.saleId, "bob");
    const r = await refusal(place(order.client, sale.saleId, "bob", other, "bob-2", token));
    expect(r).toMatchObject({ code: status.INVALID_ARGUMENT });
  });

  it("retried with the same request id gets the same order", async () => {
    const sale = await stack.createSale({ totalStock: 5 });
    const token = await tokenFor(sale.saleId, "carol");
    const first = await place(order.client, sale.saleId, "carol", token, "carol-1");
    const again = await place(order.client, sale.saleId, "carol", token, "carol-1");
    expect(again.order!.orderId).toBe(first.order!.orderId);
    expect((await callUnary(stack.inventoryClient, "getStock", { saleId: sale.saleId })).stockLeft).toBe(4);
  });

  it("replayed for another request id is refused, and nothing more is reserved", async () => {
    const sale = await stack.createSale({ totalStock: 5, perUserLimit: 3 });
    const token = await tokenFor(sale.saleId, "dave");
    await place(order.client, sale.saleId, "dave", token, "dave-1");
    await expectInvalid(place(order.client, sale.saleId, "dave", token, "dave-2"), /already used for another request/);
    expect((await callUnary(stack.inventoryClient, "getStock", { saleId: sale.saleId })).stockLeft).toBe(4);
  });

  it("is required when PURCHASE_TOKEN_REQUIRED is true", async () => {
    const sale = await stack.createSale({ totalStock: 5 });
    snapshotClaims();
    await expectInvalid(place(order.client, sale.saleId, "erin", undefined), /required/);
    await expectNoTrace(sale, "erin");
  });
});

describe("a token that fails a check is PURCHASE_TOKEN_INVALID and leaves no trace", () => {
  let sale: Sale;
  let token: string;
  beforeAll(async () => {
    sale = await stack.createSale({ totalStock: 5 });
    token = await tokenFor(sale.saleId, "frank");
    snapshotClaims();
  });

  it("a changed signature", async () => {
    const [h, p, s] = token.split(".");
    const sig = Buffer.from(s, "base64url");
    sig[5] ^= 0xff;
    await expectInvalid(place(order.client, sale.saleId, "frank", `${h}.${p}.${sig.toString("base64url")}`), /bad signature/);
    await expectNoTrace(sale, "frank");
  });

  it("a changed payload", async () => {
    const [h, , s] = token.split(".");
    const p = Buffer.from(JSON.stringify({ ...payloadOf(token), sub: "mallory" })).toString("base64url");
    await expectInvalid(place(order.client, sale.saleId, "mallory", `${h}.${p}.${s}`), /bad signature/);
    await expectNoTrace(sale, "mallory");
  });

  it("alg none", async () => {
    const header = Buffer.from(JSON.stringify({ alg: "none", typ: "JWT", kid: gw.access.keys.signing().kid })).toString("base64url");
    await expectInvalid(place(order.client, sale.saleId, "frank", `${header}.${token.split(".")[1]}.`), /algorithm "none"/);
    await expectNoTrace(sale, "frank");
  });

  it("an unknown kid (a key the gateway never published)", async () => {
    const stranger: SigningKey = { kid: "stranger", privateKey: generateKeyPairSync("ec", { namedCurve: "P-256" }).privateKey };
    await expectInvalid(place(order.client, sale.saleId, "frank", signJwt(stranger, payloadOf(token))), /unknown key id/);
    await expectNoTrace(sale, "frank");
  });

  it("expired", async () => {
    const now = Math.floor(Date.now() / 1000);
    const expired = signJwt(await realKey(), { ...payloadOf(token), iat: now - 120, nbf: now - 120, exp: now - 60 });
    await expectInvalid(place(order.client, sale.saleId, "frank", expired), /expired/);
    await expectNoTrace(sale, "frank");
  });

  it("for another audience", async () => {
    await expectInvalid(place(order.client, sale.saleId, "frank", signJwt(await realKey(), { ...payloadOf(token), aud: "elsewhere" })), /audience/);
    await expectNoTrace(sale, "frank");
  });

  it("for another user", async () => {
    await expectInvalid(place(order.client, sale.saleId, "mallory", token), /another user/);
    await expectNoTrace(sale, "mallory");
  });

  it("for another sale", async () => {
    const other = await stack.createSale({ totalStock: 5 });
    await expectInvalid(place(order.client, other.saleId, "frank", token), /another sale/);
    await expectNoTrace(other, "frank");
  });

  it("garbage", async () => {
    await expectInvalid(place(order.client, sale.saleId, "frank", "not.a.token"), /malformed/);
    await expectNoTrace(sale, "frank");
  });
});

describe("when tokens are optional (PURCHASE_TOKEN_REQUIRED false)", () => {
  it("a purchase without a token is accepted, and a token that is there is still verified", async () => {
    const optional = await gw.startOrder({ purchaseTokenRequired: false });
    try {
      const sale = await stack.createSale({ totalStock: 5 });
      expect((await place(optional.client, sale.saleId, "grace", undefined)).order!.status).toBe(OrderStatus.ORDER_STATUS_PENDING);
      const token = await tokenFor(sale.saleId, "heidi");
      await expectInvalid(place(optional.client, sale.saleId, "ivan", token), /another user/);
      expect((await place(optional.client, sale.saleId, "heidi", token)).order!.status).toBe(OrderStatus.ORDER_STATUS_PENDING);
    } finally {
      await optional.stop();
    }
  });
});

describe("key rotation", () => {
  it("tokens of the old key still buy after a new key is added; new tokens carry the new kid and buy too", async () => {
    const sale = await stack.createSale({ totalStock: 5 });
    const oldToken = await tokenFor(sale.saleId, "judy");
    const oldKid = gw.access.keys.signing().kid;

    const newKid = "rotated-key";
    const path = join(gw.keysDir, `${newKid}.pem`);
    await writeFile(path, generateKeyPairSync("ec", { namedCurve: "P-256" }).privateKey.export({ format: "pem", type: "pkcs8" }), { mode: 0o600 });
    const newer = new Date(Date.now() - 1); // newer than the first key, and already due
    await utimes(path, newer, newer);
    await gw.access.keys.reload();
    expect((await readdir(gw.keysDir)).sort()).toEqual([`${oldKid}.pem`, `${newKid}.pem`].sort());

    const newToken = await tokenFor(sale.saleId, "kim");
    expect(JSON.parse(Buffer.from(newToken.split(".")[0], "base64url").toString()).kid).toBe(newKid);
    // The order service has only the old key cached: the unknown kid makes it refetch the JWKS.
    expect((await place(order.client, sale.saleId, "kim", newToken)).order!.status).toBe(OrderStatus.ORDER_STATUS_PENDING);
    expect((await place(order.client, sale.saleId, "judy", oldToken)).order!.status).toBe(OrderStatus.ORDER_STATUS_PENDING);
  });
});

describe("without the JWKS", () => {
  it("a token cannot be checked: UNAVAILABLE OVERLOADED (retry), and nothing is bought", async () => {
    const closedPort = await freePort(); // nobody listens there
    const blind = await gw.startOrder({ purchaseTokenRequired: true, purchaseTokenJwksUrl: `http://127.0.0.1:${closedPort}/.well-known/jwks.json` });
    try {
      const sale = await stack.createSale({ totalStock: 5 });
      const token = await tokenFor(sale.saleId, "leo");
      snapshotClaims();
      const r = await refusal(place(blind.client, sale.saleId, "leo", token));
      expect(r).toMatchObject({ code: status.UNAVAILABLE, reason: "OVERLOADED" });
      expect(r.retryDelayMs).toBeGreaterThan(0);
      await expectNoTrace(sale, "leo");
    } finally {
      await blind.stop();
    }
  });
});
