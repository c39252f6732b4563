// Purchase tokens as JWTs: what the gateway signs verifies, and every way of
// tampering with one is caught and named.
import { generateKeyPairSync } from "node:crypto";
import { describe, expect, it } from "vitest";
import { decodeJwt, JwtError, publicKeyOf, verifyPurchaseToken } from "./jwt.js";
import { signJwt, signPurchaseToken, type SigningKey } from "./jwt.js";
import { publicJwkOf } from "./keys.js";
import { createPublicKey } from "node:crypto";

const newKey = (kid: string): SigningKey => ({ kid, privateKey: generateKeyPairSync("ec", { namedCurve: "P-256" }).privateKey });
const key = newKey("k1");
const publicKey = createPublicKey(key.privateKey);
const NOW = Date.UTC(2026, 0, 1, 12);
const check = { nowMs: NOW, leewayMs: 5000 };

function verify(token: string, keys: Record<string, SigningKey> = { k1: key }, at = check) {
  const decoded = decodeJwt(token);
  const k = keys[decoded.header.kid];
  return verifyPurchaseToken(decoded, k ? createPublicKey(k.privateKey) : undefined, at);
}

function failure(fn: () => unknown): string {
  try {
    fn();
  } catch (error) {
    expect(error).toBeInstanceOf(JwtError);
    return (error as Error).message;
  }
  throw new Error("expected a JwtError");
}

const issued = () => signPurchaseToken(key, { userId: "alice", saleId: "SALE", nowMs: NOW, ttlMs: 60_000 });

describe("purchase tokens", () => {
  it("sign as ES256 with the kid and the claims the design names, and verify", () => {
    const { token, claims } = issued();
    const [header, payload, signature] = token.split(".");
    expect(JSON.parse(Buffer.from(header, "base64url").toString())).toEqual({ alg: "ES256", typ: "JWT", kid: "k1" });
    expect(Buffer.from(signature, "base64url")).toHaveLength(64);
    const body = JSON.parse(Buffer.from(payload, "base64url").toString());
    expect(body).toEqual({
      iss: "seckill-gateway",
      aud: "seckill-order",
      sub: "alice",
      sale: "SALE",
      iat: NOW / 1000,
      nbf: NOW / 1000,
      exp: NOW / 1000 + 60,
      jti: expect.stringMatching(/^[A-Za-z0-9_-]{22}$/),
    });
    expect(verify(token)).toEqual(claims);
  });

  it("give every token its own jti", () => {
    expect(issued().claims.jti).not.toBe(issued().claims.jti);
  });

  it("refuse a changed payload or signature", () => {
    const { token } = issued();
    const [h, p, s] = token.split(".");
    const otherPayload = Buffer.from(JSON.stringify({ ...JSON.parse(Buffer.from(p, "base64url").toString()), sub: "mallory" })).toString("base64url");
    expect(failure(() => verify(`${h}.${otherPayload}.${s}`))).toBe("bad signature");
    const flipped = Buffer.from(s, "base64url");
    flipped[10] ^= 1;
    expect(failure(() => verify(`${h}.${p}.${flipped.toString("base64url")}`))).toBe("bad signature");
  });

  it("refuse alg none, HS256 and a token without kid", () => {
    const claims = issued().claims;
    const none = `${Buffer.from(JSON.stringify({ alg: "none", typ: "JWT", kid: "k1" })).toString("base64url")}.${Buffer.from(JSON.stringify(claims)).toString("base64url")}.`;
    expect(failure(() => verify(none))).toMatch(/algorithm "none" not accepted/);
    expect(failure(() => verify(signJwt(key, { ...claims }, { alg: "HS256" })))).toMatch(/algorithm "HS256"/);
    expect(failure(() => verify(signJwt(key, { ...claims }, { kid: undefined })))).toMatch(/kid/);
  });

  it("refuse an unknown kid and a token signed by another key under a known kid", () => {
    const stranger = newKey("k9");
    expect(failure(() => verify(signPurchaseToken(stranger, { userId: "a", saleId: "S", nowMs: NOW, ttlMs: 1000 }).token))).toMatch(/unknown key id "k9"/);
    const impostor = newKey("k1");
    expect(failure(() => verify(signPurchaseToken(impostor, { userId: "a", saleId: "S", nowMs: NOW, ttlMs: 1000 }).token))).toBe("bad signature");
  });

  it("refuse an expired token after the leeway, and one not valid yet", () => {
    const { token } = issued();
    expect(() => verify(token, undefined, { nowMs: NOW + 64_000, leewayMs: 5000 })).not.toThrow();
    expect(failure(() => verify(token, undefined, { nowMs: NOW + 65_000, leewayMs: 5000 }))).toBe("token expired");
    expect(failure(() => verify(token, undefined, { nowMs: NOW - 6000, leewayMs: 5000 }))).toMatch(/not valid yet/);
  });

  it("refuse another issuer or audience, and missing claims", () => {
    const { claims } = issued();
    expect(failure(() => verify(signJwt(key, { ...claims, iss: "someone" })))).toBe("wrong issuer");
    expect(failure(() => verify(signJwt(key, { ...claims, aud: "seckill-inventory" })))).toBe("wrong audience");
    expect(verify(signJwt(key, { ...claims, aud: ["x", "seckill-order"] })).sub).toBe("alice");
    expect(failure(() => verify(signJwt(key, { ...claims, sale: undefined })))).toBe("missing sale claim");
    expect(failure(() => verify(signJwt(key, { ...claims, exp: "later" })))).toBe("missing exp claim");
  });

  it("refuse malformed tokens", () => {
    for (const token of ["", "a.b", "a.b.c.d", "!!.e30.AA", "e30.e30.AA"]) expect(() => verify(token)).toThrow(JwtError);
  });

  it("publish keys as JWKS entries that verify the key's signatures, and skip entries of other kinds", () => {
    const jwk = publicJwkOf("k1", publicKey);
    expect(jwk).toMatchObject({ kty: "EC", crv: "P-256", kid: "k1", alg: "ES256", use: "sig" });
    const { token } = issued();
    expect(verifyPurchaseToken(decodeJwt(token), publicKeyOf(jwk)!.key, check).sub).toBe("alice");
    expect(publicKeyOf({ ...jwk, alg: "RS256" })).toBeUndefined();
    expect(publicKeyOf({ ...jwk, crv: "P-384" })).toBeUndefined();
    expect(publicKeyOf({ kty: "oct", k: "c2VjcmV0", kid: "h" })).toBeUndefined();
    expect(publicKeyOf({ ...jwk, x: "AAAA" })).toBeUndefined();
  });
});
