// Purchase tokens at a real Envoy (jwt_authn) in front of a test stack, with
// the gateway's own AccessService and JWKS (test/support/access.ts: the code
// the gateway runs, with a key directory this file can add keys to) and an
// order service that verifies tokens too. Tokens are issued through the edge
// (AccessService route) as a buyer gets them.
//
// The contract (ARCHITECTURE.md, status codes): a missing, invalid or expired
// token is UNAUTHENTICATED, refused by Envoy before the order service (its
// cluster's request counter does not move); a valid token for another user or
// another sale passes Envoy's signature check and is PERMISSION_DENIED by the
// order service, which checks sub and sale. Nothing is reserved either way.
//
// Key rotation without restarting Envoy: Envoy 1.40 does not refetch the JWKS
// on an unknown kid, so the generator keeps its cache short
// (JWKS_CACHE_SECONDS in envoy/src/filters.ts). A key the gateway publishes
// ahead of use (file time in the future) buys from its first token on; a key
// that signs at once is accepted within a bounded time.

import { createPrivateKey, generateKeyPairSync } from "node:crypto";
import { readFile, rename, utimes, writeFile } from "node:fs/promises";
import { join } from "node:path";
import { credentials, status, type ServiceError } from "@grpc/grpc-js";
import { afterAll, beforeAll, describe, expect, it } from "vitest";
import { AccessServiceClient, callUnary, OrderServiceClient, OrderStatus, purchaseMetadata, rejectionOf, userMetadata, type Sale } from "@seckill/sdk";
import { KEY_RELOAD_MS } from "../gateway/access/index.js";
import { signJwt, type SigningKey } from "../gateway/access/jwt.js";
import { JWKS_CACHE_SECONDS, JWKS_REFETCH_SECONDS, TOKEN_AUDIENCE, TOKEN_ISSUER } from "./src/filters.js";
import { startAccessFixture, type AccessFixture } from "../test/support/access.js";
import { loopback, startEdge, type Edge } from "../test/support/edge.js";
import { envoyForTests } from "../test/support/envoy.js";
import { eventually, refusal, startTestStack, type TestStack } from "../test/support/stack.js";

const envoyBin = envoyForTests("the live edge purchase-token tests");

const JWKS_FETCHES = "http.edge.jwt_authn.jwks_fetch_success";
const DENIED = "http.edge.jwt_authn.denied";
const ALLOWED = "http.edge.jwt_authn.allowed";
const TO_ORDER = "cluster.order_flash.upstream_rq_total";
/** From a key file's appearance to every Envoy holding it: the gateway's reread, then Envoy's next fetch. */
const KEY_KNOWN_WITHIN_MS = KEY_RELOAD_MS + JWKS_REFETCH_SECONDS * 1000;

let stack: TestStack;
let gw: AccessFixture;
let order: Awaited<ReturnType<AccessFixture["startOrder"]>>;
let envoy: Edge;
let orders: OrderServiceClient;
let access: AccessServiceClient;
let requests = 0;

const issue = async (saleId: string, userId: string) =>
  (await callUnary(access, "issuePurchaseToken", { saleId, challengeId: "", challengeAnswer: "" }, { metadata: userMetadata(userId) })).token;

const place = (saleId: string, userId: string, token: string | undefined, requestId = `req-${++requests}`) =>
  callUnary(orders, "placeOrder", { saleId, quantity: 1, requestId, purchaseToken: "", retry: false }, { metadata: purchaseMetadata(userId, saleId, token), deadlineMs: 5000 });

const partOf = (token: string, i: 0 | 1) => JSON.parse(Buffer.from(token.split(".")[i], "base64url").toString()) as Record<string, unknown>;
const kidOf = (token: string) => partOf(token, 0).kid as string;

const stockLeft = async (saleId: string) => (await callUnary(stack.inventoryClient, "getStock", { saleId })).stockLeft;

/** A key of the gateway, read from its key directory (to sign tokens whose signature is genuine). */
const keyOf = async (kid: string): Promise<SigningKey> => ({ kid, privateKey: createPrivateKey(await readFile(join(gw.keysDir, `${kid}.pem`), "utf8")) });
/** The key the gateway signs with now. */
const gatewayKey = () => keyOf(gw.access.keys.signing().kid);

function claimsFor(saleId: string, userId: string, nowS = Math.floor(Date.now() / 1000)) {
  return { iss: TOKEN_ISSUER, aud: TOKEN_AUDIENCE, sub: userId, sale: saleId, iat: nowS, nbf: nowS, exp: nowS + 60, jti: `forged-${++requests}` };
}

/** Adds a key file to the gateway's directory, dated `mtime`: it appears under its final name with that date already set. */
async function addGatewayKey(kid: string, mtime: Date): Promise<void> {
  const pem = generateKeyPairSync("ec", { namedCurve: "P-256" }).privateKey.export({ format: "pem", type: "pkcs8" });
  const staging = join(gw.keysDir, `${kid}.staging`);
  await writeFile(staging, pem, { mode: 0o600 });
  await utimes(staging, mtime, mtime);
  await rename(staging, join(gw.keysDir, `${kid}.pem`));
}

const publishedKids = async () => ((await (await fetch(gw.jwksUrl)).json()) as { keys: { kid: string }[] }).keys.map((k) => k.kid);

/** The counters that tell where a purchase was refused. */
const counters = async () => ({ denied: await envoy.stat(DENIED), allowed: await envoy.stat(ALLOWED), toOrder: await envoy.stat(TO_ORDER) });

describe.skipIf(!envoyBin)("purchase tokens at the edge (jwt_authn)", () => {
  let sale: Sale;
  beforeAll(async () => {
    sale = await stack.createSale({ totalStock: 100 });
  });

  it("a token the gateway issued buys: Envoy lets it through and the order service accepts it", async () => {
    const token = await issue(sale.saleId, "alice");
    const before = await counters();
    const placed = await place(sale.saleId, "alice", token);
    expect(placed.order?.status).toBe(OrderStatus.ORDER_STATUS_PENDING);
    expect(await counters()).toEqual({ ...before, allowed: before.allowed + 1, toOrder: before.toOrder + 1 });
    expect(await stockLeft(sale.saleId)).toBe(sale.totalStock - 1);
  });

  const unauthenticated: [string, () => Promise<string | undefined>, RegExp][] = [
    ["missing", async () => undefined, /^Jwt is missing$/],
    [
      "expired (signed by the gateway's key, exp past the 5 s skew)",
      async () => {
        const nowS = Math.floor(Date.now() / 1000);
        return signJwt(await gatewayKey(), { ...claimsFor(sale.saleId, "bob", nowS - 120), exp: nowS - 30 });
      },
      /^Jwt is expired$/,
    ],
    [
      "tampered (the payload names another user, the signature is the original's)",
      async () => {
        const real = await issue(sale.saleId, "carol");
        const [head, , signature] = real.split(".");
        const payload = Buffer.from(JSON.stringify({ ...partOf(real, 1), sub: "bob" })).toString("base64url");
        return `${head}.${payload}.${signature}`;
      },
      /^Jwt verification fails$/,
    ],
    [
      "signed by a key the gateway never published (unknown kid)",
      async () => {
        const stranger = { kid: "not-published", privateKey: generateKeyPairSync("ec", { namedCurve: "P-256" }).privateKey };
        return signJwt(stranger, claimsFor(sale.saleId, "bob"));
      },
      /^Jwks doesn't have key to match kid or alg from Jwt$/,
    ],
    ["from another issuer", async () => signJwt(await gatewayKey(), { ...claimsFor(sale.saleId, "bob"), iss: "someone-else" }), /^Jwt issuer is not configured$/],
    ["not a JWT", async () => "garbage", /^Jwt is not in the form of Header.Payload.Signature/],
    ["three parts, none of them JSON", async () => "not.a.token", /^Jwt header is an invalid JSON$/],
  ];
  for (const [what, token, message] of unauthenticated) {
    it(`UNAUTHENTICATED from Envoy, never reaching the order service: ${what}`, async () => {
      const t = await token();
      const before = await counters();
      const r = await refusal(place(sale.saleId, "bob", t));
      expect({ code: r.code, message: r.message }).toEqual({ code: status.UNAUTHENTICATED, message: expect.stringMatching(message) });
      expect(await counters()).toEqual({ ...before, denied: before.denied + 1 });
      expect(await stockLeft(sale.saleId)).toBe(sale.totalStock - 1); // alice's unit only
    });
  }

  it("a token for another audience, signed by the gateway's key: PERMISSION_DENIED from Envoy (jwt_authn answers 403 for an audience), never reaching the order service", async () => {
    const token = signJwt(await gatewayKey(), { ...claimsFor(sale.saleId, "bob"), aud: "someone-else" });
    const before = await counters();
    const r = await refusal(place(sale.saleId, "bob", token));
    expect({ code: r.code, message: r.message }).toEqual({ code: status.PERMISSION_DENIED, message: "Audiences in Jwt are not allowed" });
    expect(await counters()).toEqual({ ...before, denied: before.denied + 1 });
  });

  it("PERMISSION_DENIED from the order service for a genuine token of another user: Envoy checks the signature, the service checks sub", async () => {
    const token = await issue(sale.saleId, "dave");
    const before = await counters();
    const r = await refusal(place(sale.saleId, "erin", token));
    expect({ code: r.code, reason: r.reason }).toEqual({ code: status.PERMISSION_DENIED, reason: "PURCHASE_TOKEN_INVALID" });
    expect(r.message).toMatch(/another user/);
    expect(await counters()).toEqual({ ...before, allowed: before.allowed + 1, toOrder: before.toOrder + 1 });
    expect(await stockLeft(sale.saleId)).toBe(sale.totalStock - 1);
    // dave's token still buys for dave: the refused call did not claim it.
    expect((await place(sale.saleId, "dave", token)).order?.status).toBe(OrderStatus.ORDER_STATUS_PENDING);
  });

  it("PERMISSION_DENIED from the order service for a genuine token of another sale", async () => {
    const other = await stack.createSale({ totalStock: 5 });
    const token = await issue(sale.saleId, "frank");
    const before = await counters();
    const r = await refusal(place(other.saleId, "frank", token));
    expect({ code: r.code, reason: r.reason }).toEqual({ code: status.PERMISSION_DENIED, reason: "PURCHASE_TOKEN_INVALID" });
    expect(r.message).toMatch(/another sale/);
    expect(await counters()).toEqual({ ...before, allowed: before.allowed + 1, toOrder: before.toOrder + 1 });
    expect(await stockLeft(other.saleId)).toBe(other.totalStock);
  });
});

describe.skipIf(!envoyBin)("key rotation, Envoy running throughout", () => {
  let sale: Sale;
  let pid: number | undefined;
  beforeAll(async () => {
    sale = await stack.createSale({ totalStock: 100 });
    pid = envoy.process.pid;
  });

  it(`a key the gateway publishes ahead of use buys from its first token: Envoy holds it within ${KEY_KNOWN_WITHIN_MS / 1000} s`, async () => {
    const oldKid = gw.access.keys.signing().kid;
    const kid = "rotated-ahead";
    // Dated past the gateway's reread and Envoy's next fetch, with a margin.
    const switchAt = Date.now() + KEY_KNOWN_WITHIN_MS + 4000;
    await addGatewayKey(kid, new Date(switchAt));
    await eventually(async () => (await publishedKids()).includes(kid), KEY_RELOAD_MS + 2000, "the gateway to publish the new key");
    expect(Date.now()).toBeLessThan(switchAt - 1000);
    // Until its time comes, tokens are still signed with the old key, and buy.
    const early = await issue(sale.saleId, "gina");
    expect(kidOf(early)).toBe(oldKid);
    expect((await place(sale.saleId, "gina", early)).order?.status).toBe(OrderStatus.ORDER_STATUS_PENDING);

    const fetches = await envoy.stat(JWKS_FETCHES);
    await new Promise((r) => setTimeout(r, switchAt - Date.now() + 50));
    expect(await envoy.stat(JWKS_FETCHES)).toBeGreaterThan(fetches);
    const first = await issue(sale.saleId, "hank");
    expect(kidOf(first)).toBe(kid);
    // One attempt, no retry: Envoy fetched the key before the gateway signed with it.
    const before = await counters();
    expect((await place(sale.saleId, "hank", first)).order?.status).toBe(OrderStatus.ORDER_STATUS_PENDING);
    expect(await envoy.stat(DENIED)).toBe(before.denied);
    // Tokens of the old key, still published, buy too.
    const oldKeyToken = signJwt(await keyOf(oldKid), claimsFor(sale.saleId, "ivan"));
    expect((await place(sale.saleId, "ivan", oldKeyToken)).order?.status).toBe(OrderStatus.ORDER_STATUS_PENDING);
    expect({ pid: envoy.process.pid, exitCode: envoy.process.exitCode }).toEqual({ pid, exitCode: null });
  });

  it(`a key that signs at once is accepted at the edge within ${(KEY_KNOWN_WITHIN_MS + 3000) / 1000} s of its file, without restarting Envoy`, async () => {
    const kid = "rotated-now";
    const addedAt = Date.now();
    await addGatewayKey(kid, new Date(addedAt)); // the newest key, due now: signs once the gateway rereads the directory
    let user = "";
    let token = "";
    let n = 0;
    await eventually(
      async () => {
        user = `judy-${++n}`;
        token = await issue(sale.saleId, user);
        return kidOf(token) === kid;
      },
      KEY_RELOAD_MS + 2000,
      "the gateway to sign with the new key",
      200,
    );

    // Envoy knows the kid after its next JWKS fetch; until then it refuses the token (no refetch on an unknown kid).
    const refusals: string[] = [];
    const requestId = `rotated-${user}`;
    await eventually(
      async () => {
        try {
          await place(sale.saleId, user, token, requestId);
          return true;
        } catch (error) {
          const r = rejectionOf(error as ServiceError);
          refusals.push(`${status[r.code]}: ${r.message}`);
          return false;
        }
      },
      KEY_KNOWN_WITHIN_MS + 3000,
      "Envoy to accept the new key's token",
      200,
    );
    const acceptedAfterMs = Date.now() - addedAt;
    expect(acceptedAfterMs).toBeLessThan(KEY_KNOWN_WITHIN_MS + 3000);
    expect(new Set(refusals)).toEqual(new Set(refusals.length ? ["UNAUTHENTICATED: Jwks doesn't have key to match kid or alg from Jwt"] : []));
    expect({ pid: envoy.process.pid, exitCode: envoy.process.exitCode }).toEqual({ pid, exitCode: null });
    console.log(`rotated key accepted ${acceptedAfterMs} ms after its file appeared (${refusals.length} refusals before; JWKS cache ${JWKS_CACHE_SECONDS} s)`);
  });
});

beforeAll(async () => {
  if (!envoyBin) return;
  stack = await startTestStack();
  gw = await startAccessFixture(stack);
  order = await gw.startOrder({ purchaseTokenRequired: true });
  // No RateLimitService on this gateway: the global limit fails open.
  envoy = await startEdge(envoyBin, {
    clusters: {
      order_flash: loopback(order.app.port),
      inventory_default: loopback(stack.inventory.port),
      inventory_flash: loopback(stack.inventory.port),
      gateway: loopback(gw.app.port),
      gateway_jwks: loopback(Number(new URL(gw.jwksUrl).port)),
    },
  });
  orders = new OrderServiceClient(envoy.address, credentials.createInsecure());
  access = new AccessServiceClient(envoy.address, credentials.createInsecure());
  await eventually(async () => (await envoy.stat(JWKS_FETCHES)) > 0, 20_000, "envoy to fetch the gateway's JWKS");
});

afterAll(async () => {
  orders?.close();
  access?.close();
  await envoy?.stop();
  await order?.stop();
  await gw?.stop();
  await stack?.stop();
});
