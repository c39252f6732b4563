// Signing purchase tokens (ES256 compact JWS). Verification lives in
// services/common/jwt.ts, shared with the order service; this re-exports it so
// the gateway's code and tests have one module for both directions.
import { randomBytes, sign, type KeyObject } from "node:crypto";
import { JWT_ALG, PURCHASE_TOKEN_AUDIENCE, PURCHASE_TOKEN_ISSUER, base64url, type PurchaseClaims } from "../../services/common/jwt.js";

export { JwtError, decodeJwt, verifyPurchaseToken, publicKeyOf, type PurchaseClaims } from "../../services/common/jwt.js";

export interface SigningKey {
  kid: string;
  privateKey: KeyObject;
}

/** Signs any header and claims: also what tests use to forge tokens with a real key. */
export function signJwt(key: SigningKey, claims: Record<string, unknown>, header: Record<string, unknown> = {}): string {
  const head = base64url(JSON.stringify({ alg: JWT_ALG, typ: "JWT", kid: key.kid, ...header }));
  const body = base64url(JSON.stringify(claims));
  const signature = sign("sha256", Buffer.from(`${head}.${body}`), { key: key.privateKey, dsaEncoding: "ieee-p1363" });
  return `${head}.${body}.${base64url(signature)}`;
}

/** The purchase token for a user and a sale, valid from nowMs for ttlMs. */
export function signPurchaseToken(
  key: SigningKey,
  input: { userId: string; saleId: string; nowMs: number; ttlMs: number },
): {
  token: string;
  claims: PurchaseClaims;
} {
  const iat = Math.floor(input.nowMs / 1000);
  const claims: PurchaseClaims = {
    iss: PURCHASE_TOKEN_ISSUER,
    aud: PURCHASE_TOKEN_AUDIENCE,
    sub: input.userId,
    sale: input.saleId,
    iat,
    nbf: iat,
    exp: Math.floor((input.nowMs + input.ttlMs) / 1000),
    jti: randomBytes(16).toString("base64url"),
  };
  return { token: signJwt(key, { ...claims }), claims };
}
