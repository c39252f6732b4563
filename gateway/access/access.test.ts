// AccessService on real servers (gRPC, Redis, Postgres, the JWKS over HTTP):
// challenges are answered once, in time, by their own user; tokens go only to
// eligible buyers of an open sale; every key in the directory is published.
import { setTimeout as sleep } from "node:timers/promises";
import { generateKeyPairSync } from "node:crypto";
import { stat, utimes, writeFile } from "node:fs/promises";
import { join } from "node:path";
import { afterAll, beforeAll, describe, expect, it } from "vitest";
import { Metadata, status } from "@grpc/grpc-js";
import { ACCOUNT_CREATED_AT_HEADER, callUnary, userMetadata, type IssuePurchaseTokenResponse, type Sale, type SaleAccessRules } from "@seckill/sdk";
import { decodeJwt, publicKeyOf, verifyPurchaseToken } from "./jwt.js";
import { CACHE_SECONDS } from "./jwks-server.js";
import { refusal, saleRequest, startTestStack, type TestStack } from "../../test/support/stack.js";
import { startAccessFixture, type AccessFixture } from "../../test/support/access.js";

let stack: TestStack;
let gw: AccessFixture;
beforeAll(async () => {
  stack = await startTestStack();
  gw = await startAccessFixture(stack, { challengeTtlMs: 120_000 });
});
afterAll(async () => {
  await gw?.stop();
  await stack?.stop();
});

const DAY = 24 * 3600;
const noRules: SaleAccessRules = { challengeRequired: false, allowedUsers: [], blockedUsers: [], minAccountAge: undefined };

async function createSale(rules: Partial<SaleAccessRules> = {}, overrides: Parameters<typeof saleRequest>[0] = {}): Promise<Sale> {
  const { sale } = await callUnary(stack.sales, "createSale", saleRequest({ accessRules: { ...noRules, ...rules }, ...overrides }));
  return sale!;
}

const as = (userId: string, accountCreatedAt?: string) => {
  const metadata = userMetadata(userId);
  if (accountCreatedAt) metadata.set(ACCOUNT_CREATED_AT_HEADER, accountCreatedAt);
  return { metadata };
};

const challenge = (saleId: string, userId: string, accountCreatedAt?: string) => callUnary(gw.client, "getChallenge", { saleId }, as(userId, accountCreatedAt));

const issue = (saleId: string, userId: string, challengeId = "", challengeAnswer = "", accountCreatedAt?: string) =>
  callUnary(gw.client, "issuePurchaseToken", { saleId, challengeId, challengeAnswer }, as(userId, accountCreatedAt));

/** What a person would answer. */
function solve(question: string): string {
  const words = ["zero", "one", "two", "three", "four", "five", "six", "seven", "eight", "nine", "ten", "eleven", "twelve"];
  const m = /^What is (\w+) (plus|minus|times) (\w+)\?$/.exec(question)!;
  const [a, b] = [m[1], m[3]].map((t) => (words.includes(t) ? words.indexOf(t) : Number(t)));
  return String(m[2] === "plus" ? a + b : m[2] === "minus" ? a - b : a * b);
}
const wrong = (question: string) => String(Number(solve(question)) + 1);

async function jwks() {
  const response = await fetch(gw.jwksUrl);
  return { response, body: (await response.json()) as { keys: Record<string, string>[] } };
}

async function verifiedByJwks(issued: IssuePurchaseTokenResponse) {
  const decoded = decodeJwt(issued.token);
  const { body } = await jwks();
  const key = body.keys.map(publicKeyOf).find((k) => k?.kid === decoded.header.kid);
  return verifyPurchaseToken(decoded, key?.key, { nowMs: Date.now(), leewayMs: 5000 });
}

const challengeKey = (id: string) => `${stack.config.namespace}:challenge:${id}`;

describe("challenges", () => {
  it("come as text and SVG, expire after CHALLENGE_TTL_MS, and wait in Redis bound to the user and the sale", async () => {
    const sale = await createSale({ challengeRequired: true });
    const before = Date.now();
    const c = await challenge(sale.saleId, "alice");
    expect(c.challengeId).toMatch(/^[A-Za-z0-9_-]{22}$/);
    expect(c.question).toMatch(/^What is \w+ (plus|minus|times) \w+\?$/);
    expect(c.imageType).toBe("image/svg+xml");
    expect(Buffer.from(c.image).toString()).toMatch(/^<svg .*<\/svg>$/);
    expect(c.expiresAt!.getTime()).toBeGreaterThanOrEqual(before + 120_000);
    expect(c.expiresAt!.getTime()).toBeLessThanOrEqual(Date.now() + 120_000);
    const ttl = await stack.redis.pttl(challengeKey(c.challengeId));
    expect(ttl).toBeGreaterThan(100_000);
    expect(ttl).toBeLessThanOrEqual(120_000);
    expect(JSON.parse((await stack.redis.get(challengeKey(c.challengeId)))!)).toMatchObject({ userId: "alice", saleId: sale.saleId });
  });

  it("answered right give a purchase token for the user and the sale, signed by a published key", async () => {
    const sale = await createSale({ challengeRequired: true });
    const c = await challenge(sale.saleId, "alice");
    const issued = await issue(sale.saleId, "alice", c.challengeId, ` ${solve(c.question)} `);
    const claims = await verifiedByJwks(issued);
    expect(claims).toMatchObject({ iss: "seckill-gateway", aud: "seckill-order", sub: "alice", sale: sale.saleId });
    expect(decodeJwt(issued.token).header.kid).toBe(issued.keyId);
    expect(issued.expiresAt!.getTime()).toBe(claims.exp * 1000);
    expect(claims.exp - claims.iat).toBe(stack.config.purchaseTokenTtlMs / 1000);
    expect(await stack.redis.exists(challengeKey(c.challengeId))).toBe(0);
  });

  it("answered twice: the second answer is refused", async () => {
    const sale = await createSale({ challengeRequired: true });
    const c = await challenge(sale.saleId, "bob");
    await issue(sale.saleId, "bob", c.challengeId, solve(c.question));
    const r = await refusal(issue(sale.saleId, "bob", c.challengeId, solve(c.question)));
    expect(r).toMatchObject({ code: status.PERMISSION_DENIED, reason: "CHALLENGE_FAILED" });
  });

  it("answered wrong are refused and gone: the right answer afterwards is refused too", async () => {
    const sale = await createSale({ challengeRequired: true });
    const c = await challenge(sale.saleId, "carol");
    const r = await refusal(issue(sale.saleId, "carol", c.challengeId, wrong(c.question)));
    expect(r).toMatchObject({ code: status.PERMISSION_DENIED, reason: "CHALLENGE_FAILED" });
    expect(r.message).toMatch(/wrong answer/);
    expect(await stack.redis.exists(challengeKey(c.challengeId))).toBe(0);
    expect(await refusal(issue(sale.saleId, "carol", c.challengeId, solve(c.question)))).toMatchObject({ reason: "CHALLENGE_FAILED" });
  });

  it("answered late are refused", async () => {
    const sale = await createSale({ challengeRequired: true });
    const c = await challenge(sale.saleId, "dave");
    gw.skew(120_001);
    try {
      const r = await refusal(issue(sale.saleId, "dave", c.challengeId, solve(c.question)));
      expect(r).toMatchObject({ code: status.PERMISSION_DENIED, reason: "CHALLENGE_FAILED" });
      expect(r.message).toMatch(/expired/);
    } finally {
      gw.skew(0);
    }
  });

  it("vanish from Redis when their time is up", async () => {
    const short = await startAccessFixture(stack, { challengeTtlMs: 200 });
    try {
      const sale = await createSale({ challengeRequired: true });
      const c = await callUnary(short.client, "getChallenge", { saleId: sale.saleId }, as("erin"));
      await sleep(400);
      const r = await refusal(callUnary(short.client, "issuePurchaseToken", { saleId: sale.saleId, challengeId: c.challengeId, challengeAnswer: solve(c.question) }, as("erin")));
      expect(r).toMatchObject({ code: status.PERMISSION_DENIED, reason: "CHALLENGE_FAILED" });
    } finally {
      await short.stop();
    }
  });

  it("of another user or another sale are refused (and used up)", async () => {
    const sale = await createSale({ challengeRequired: true });
    const other = await createSale({ challengeRequired: true });
    const c = await challenge(sale.saleId, "frank");
    expect(await refusal(issue(sale.saleId, "mallory", c.challengeId, solve(c.question)))).toMatchObject({ reason: "CHALLENGE_FAILED" });
    const d = await challenge(sale.saleId, "frank");
    expect(await refusal(issue(other.saleId, "frank", d.challengeId, solve(d.question)))).toMatchObject({ reason: "CHALLENGE_FAILED" });
  });

  it("are required when the sale says so, and not otherwise", async () => {
    const sale = await createSale({ challengeRequired: true });
    expect(await refusal(issue(sale.saleId, "grace"))).toMatchObject({ code: status.FAILED_PRECONDITION, reason: "CHALLENGE_REQUIRED" });
    const free = await createSale();
    expect((await verifiedByJwks(await issue(free.saleId, "grace"))).sub).toBe("grace");
  });

  it("refuse malformed input and unknown sales", async () => {
    const sale = await createSale({ challengeRequired: true });
    expect(await refusal(issue(sale.saleId, "heidi", "not-an-id", "1"))).toMatchObject({ code: status.INVALID_ARGUMENT });
    expect(await refusal(issue(sale.saleId, "heidi", "A".repeat(22), "1".repeat(65)))).toMatchObject({ code: status.INVALID_ARGUMENT });
    expect(await refusal(issue("nope", "heidi"))).toMatchObject({ code: status.INVALID_ARGUMENT });
    expect(await refusal(challenge("01ARZ3NDEKTSV4RRFFQ69G5FAV", "heidi"))).toMatchObject({ code: status.NOT_FOUND });
    expect(await refusal(callUnary(gw.client, "getChallenge", { saleId: sale.saleId }, { metadata: new Metadata() }))).toMatchObject({
      code: status.UNAUTHENTICATED,
    });
    expect(await refusal(challenge(sale.saleId, "heidi", "last tuesday"))).toMatchObject({ code: status.INVALID_ARGUMENT });
  });
});

describe("eligibility", () => {
  it("refuses a blocked user a challenge and a token", async () => {
    const sale = await createSale({ blockedUsers: ["mallory"] });
    expect(await refusal(challenge(sale.saleId, "mallory"))).toMatchObject({ code: status.PERMISSION_DENIED, reason: "NOT_ELIGIBLE" });
    expect(await refusal(issue(sale.saleId, "mallory"))).toMatchObject({ code: status.PERMISSION_DENIED, reason: "NOT_ELIGIBLE" });
    expect((await verifiedByJwks(await issue(sale.saleId, "alice"))).sub).toBe("alice");
  });

  it("refuses a user not on the allow list", async () => {
    const sale = await createSale({ allowedUsers: ["vip-1", "vip-2"] });
    expect(await refusal(issue(sale.saleId, "alice"))).toMatchObject({ code: status.PERMISSION_DENIED, reason: "NOT_ELIGIBLE" });
    expect((await verifiedByJwks(await issue(sale.saleId, "vip-2"))).sub).toBe("vip-2");
  });

  it("refuses an account younger than the minimum age, and one whose age the BFF did not give", async () => {
    const sale = await createSale({ minAccountAge: { seconds: 30 * DAY, nanos: 0 } });
    const daysAgo = (days: number) => new Date(Date.now() - days * DAY * 1000).toISOString();
    expect(await refusal(issue(sale.saleId, "newbie", "", "", daysAgo(29)))).toMatchObject({ code: status.PERMISSION_DENIED, reason: "NOT_ELIGIBLE" });
    const r = await refusal(issue(sale.saleId, "unknown"));
    expect(r).toMatchObject({ code: status.PERMISSION_DENIED, reason: "NOT_ELIGIBLE" });
    expect(r.message).toMatch(/x-account-created-at/);
    expect((await verifiedByJwks(await issue(sale.saleId, "veteran", "", "", daysAgo(31)))).sub).toBe("veteran");
  });

  it("checks eligibility before the challenge, so an ineligible user does not use one up", async () => {
    const sale = await createSale({ challengeRequired: true, blockedUsers: ["mallory"] });
    const c = await challenge(sale.saleId, "alice");
    expect(await refusal(issue(sale.saleId, "mallory", c.challengeId, solve(c.question)))).toMatchObject({ reason: "NOT_ELIGIBLE" });
    expect(await stack.redis.exists(challengeKey(c.challengeId))).toBe(1);
  });

  it("rules are stored with the sale and shown by GetSale", async () => {
    const sale = await createSale({ challengeRequired: true, allowedUsers: ["a", "b"], blockedUsers: ["c"], minAccountAge: { seconds: DAY, nanos: 0 } });
    const { sale: read } = await callUnary(stack.sales, "getSale", { saleId: sale.saleId });
    expect(read!.accessRules).toEqual({ challengeRequired: true, allowedUsers: ["a", "b"], blockedUsers: ["c"], minAccountAge: { seconds: DAY, nanos: 0 } });
    const { sale: plain } = await callUnary(stack.sales, "getSale", { saleId: (await createSale()).saleId });
    expect(plain!.accessRules).toEqual(noRules);
    const bad = await refusal(callUnary(stack.sales, "createSale", saleRequest({ accessRules: { ...noRules, blockedUsers: ["no spaces"] } })));
    expect(bad).toMatchObject({ code: status.INVALID_ARGUMENT });
    expect(bad.fieldViolations[0].field).toBe("access_rules.blocked_users");
  });
});

describe("tokens only while the sale is open", () => {
  it("refuses before the start, after the end or close, and once Postgres counts every unit sold", async () => {
    const later = await createSale({}, { startsAt: new Date(Date.now() + 3600_000), endsAt: new Date(Date.now() + 7200_000) });
    expect(await refusal(issue(later.saleId, "alice"))).toMatchObject({ code: status.FAILED_PRECONDITION, reason: "SALE_NOT_STARTED" });
    // A challenge can be fetched while waiting for the start.
    expect((await challenge(later.saleId, "alice")).question).toBeTruthy();

    const closed = await createSale();
    await callUnary(stack.sales, "closeSale", { saleId: closed.saleId });
    expect(await refusal(issue(closed.saleId, "alice"))).toMatchObject({ code: status.FAILED_PRECONDITION, reason: "SALE_ENDED" });
    expect(await refusal(challenge(closed.saleId, "alice"))).toMatchObject({ code: status.FAILED_PRECONDITION, reason: "SALE_ENDED" });

    const gone = await createSale();
    await stack.db("sales").where({ id: gone.saleId }).update({ sold: gone.totalStock });
    expect(await refusal(issue(gone.saleId, "alice"))).toMatchObject({ code: status.FAILED_PRECONDITION, reason: "SOLD_OUT" });
  });
});

describe("the JWKS", () => {
  it("publishes the key that signs, cacheable, at /.well-known/jwks.json only", async () => {
    const { response, body } = await jwks();
    expect(response.status).toBe(200);
    expect(response.headers.get("content-type")).toBe("application/json");
    expect(response.headers.get("cache-control")).toBe(`public, max-age=${CACHE_SECONDS}`);
    expect(body.keys).toHaveLength(1);
    expect(body.keys[0]).toMatchObject({ kty: "EC", crv: "P-256", alg: "ES256", use: "sig", kid: gw.access.keys.signing().kid });
    expect(body.keys[0]).not.toHaveProperty("d");
    expect((await fetch(gw.jwksUrl.replace("jwks.json", "other"))).status).toBe(404);
    expect((await fetch(gw.jwksUrl, { method: "POST" })).status).toBe(405);
  });

  it("the first key is created with mode 0600", async () => {
    const kid = gw.access.keys.signing().kid;
    expect((await stat(join(gw.keysDir, `${kid}.pem`))).mode & 0o777).toBe(0o600);
  });

  it("rotation: a newer key signs, the old one stays published so its tokens still verify; a key dated ahead only publishes", async () => {
    const sale = await createSale();
    const oldToken = await issue(sale.saleId, "alice");
    const oldKid = oldToken.keyId;

    const staged = "k-staged";
    await writeFile(join(gw.keysDir, `${staged}.pem`), generateKeyPairSync("ec", { namedCurve: "P-256" }).privateKey.export({ format: "pem", type: "pkcs8" }), { mode: 0o600 });
    const inAnHour = new Date(Date.now() + 3600_000);
    await utimes(join(gw.keysDir, `${staged}.pem`), inAnHour, inAnHour);
    await gw.access.keys.reload();
    expect((await jwks()).body.keys.map((k) => k.kid).sort()).toEqual([oldKid, staged].sort());
    expect((await issue(sale.saleId, "alice")).keyId).toBe(oldKid);

    const next = "k-next";
    await writeFile(join(gw.keysDir, `${next}.pem`), generateKeyPairSync("ec", { namedCurve: "P-256" }).privateKey.export({ format: "pem", type: "pkcs8" }), { mode: 0o600 });
    const soon = new Date(Date.now() + 1000);
    await utimes(join(gw.keysDir, `${next}.pem`), soon, soon);
    await gw.access.keys.reload();
    gw.skew(2000);
    try {
      const newToken = await issue(sale.saleId, "alice");
      expect(newToken.keyId).toBe(next);
      expect(decodeJwt(newToken.token).header.kid).toBe(next);
      expect((await verifiedByJwks(newToken)).sub).toBe("alice");
      expect((await verifiedByJwks(oldToken)).sub).toBe("alice");
    } finally {
      gw.skew(0);
    }
  });
});
