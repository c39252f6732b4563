// Purchase tokens as JSON Web Tokens: the one compact-JWS format the gateway
// signs and the order service (and Envoy's jwt_authn) verifies. Only ES256 is
// accepted (ECDSA P-256 with SHA-256, the signature as r||s, 64 bytes, as JWS
// requires): the algorithm is fixed here, never taken from the token, so "none"
// or an HMAC keyed with a public key cannot get through.
import { createPublicKey, verify, type JsonWebKey, type KeyObject } from "node:crypto";

export const PURCHASE_TOKEN_ISSUER = "seckill-gateway";
export const PURCHASE_TOKEN_AUDIENCE = "seckill-order";
export const JWT_ALG = "ES256";

export interface JwtHeader {
  alg: string;
  typ?: string;
  kid: string;
}

/** The claims of a purchase token; times in seconds since the epoch. */
export interface PurchaseClaims {
  iss: string;
  aud: string;
  /** The buyer (x-user-id). */
  sub: string;
  /** The sale the token lets the buyer buy in. */
  sale: string;
  iat: number;
  nbf: number;
  exp: number;
  /** Random id: binds the token to one purchase request (see services/order/purchase-token.ts). */
  jti: string;
}

/** A public key as published in the JWKS. */
export interface PublicJwk extends JsonWebKey {
  kty: "EC";
  crv: "P-256";
  x: string;
  y: string;
  kid: string;
  alg: "ES256";
  use: "sig";
}

/** Which check a token failed; the message names it. */
export class JwtError extends Error {
  constructor(message: string) {
    super(message);
    this.name = "JwtError";
  }
}

const B64URL_RE = /^[A-Za-z0-9_-]*$/;

export const base64url = (data: Buffer | string): string => Buffer.from(data).toString("base64url");

function decodePart(part: string, what: string): unknown {
  if (!B64URL_RE.test(part)) throw new JwtError(`malformed ${what}`);
  try {
    return JSON.parse(Buffer.from(part, "base64url").toString("utf8"));
  } catch {
    throw new JwtError(`malformed ${what}`);
  }
}

export interface DecodedJwt {
  header: JwtHeader;
  payload: Record<string, unknown>;
  /** `<header>.<payload>`: the bytes the signature covers. */
  signingInput: string;
  signature: Buffer;
}

/** Splits and parses a compact JWS without trusting it: the header must name ES256 and a kid. */
export function decodeJwt(token: string): DecodedJwt {
  const parts = token.split(".");
  if (parts.length !== 3) throw new JwtError("malformed token: expected three dot-separated parts");
  const header = decodePart(parts[0], "header") as Partial<JwtHeader> | null;
  if (!header || typeof header !== "object") throw new JwtError("malformed header");
  if (header.alg !== JWT_ALG) throw new JwtError(`algorithm ${JSON.stringify(header.alg)} not accepted (only ${JWT_ALG})`);
  if (header.typ !== undefined && header.typ !== "JWT") throw new JwtError("typ is not JWT");
  if (typeof header.kid !== "string" || header.kid.length === 0 || header.kid.length > 128) throw new JwtError("missing key id (kid)");
  const payload = decodePart(parts[1], "payload") as Record<string, unknown> | null;
  if (!payload || typeof payload !== "object" || Array.isArray(payload)) throw new JwtError("malformed payload");
  if (!B64URL_RE.test(parts[2])) throw new JwtError("malformed signature");
  const signature = Buffer.from(parts[2], "base64url");
  if (signature.length !== 64) throw new JwtError("malformed signature: ES256 signatures are 64 bytes");
  return { header: header as JwtHeader, payload, signingInput: `${parts[0]}.${parts[1]}`, signature };
}

export function signatureValid(decoded: DecodedJwt, publicKey: KeyObject): boolean {
  return verify("sha256", Buffer.from(decoded.signingInput), { key: publicKey, dsaEncoding: "ieee-p1363" }, decoded.signature);
}

export interface ClaimExpectations {
  nowMs: number;
  /** Tolerated clock difference between the signer and the verifier. */
  leewayMs: number;
}

/** The payload's purchase claims, checked for issuer, audience, types and the time window. */
export function checkPurchaseClaims(payload: Record<string, unknown>, { nowMs, leewayMs }: ClaimExpectations): PurchaseClaims {
  const { iss, aud, sub, sale, iat, nbf, exp, jti } = payload;
  if (iss !== PURCHASE_TOKEN_ISSUER) throw new JwtError("wrong issuer");
  const audiences = Array.isArray(aud) ? aud : [aud];
  if (!audiences.includes(PURCHASE_TOKEN_AUDIENCE)) throw new JwtError("wrong audience");
  for (const [name, value] of Object.entries({ sub, sale, jti })) {
    if (typeof value !== "string" || value.length === 0 || value.length > 128) throw new JwtError(`missing ${name} claim`);
  }
  for (const [name, value] of Object.entries({ iat, nbf, exp })) {
    if (typeof value !== "number" || !Number.isFinite(value)) throw new JwtError(`missing ${name} claim`);
  }
  const now = nowMs / 1000;
  const leeway = leewayMs / 1000;
  if ((exp as number) <= now - leeway) throw new JwtError("token expired");
  if ((nbf as number) > now + leeway) throw new JwtError("token not valid yet (nbf)");
  return { iss, aud: PURCHASE_TOKEN_AUDIENCE, sub, sale, iat, nbf, exp, jti } as PurchaseClaims;
}

/** A JWKS entry as a verification key; undefined for an entry that is not an ES256 P-256 signing key. */
export function publicKeyOf(jwk: unknown): { kid: string; key: KeyObject } | undefined {
  const k = jwk as Partial<PublicJwk> | null;
  if (!k || typeof k !== "object" || k.kty !== "EC" || k.crv !== "P-256" || typeof k.kid !== "string") return undefined;
  if (k.alg !== undefined && k.alg !== JWT_ALG) return undefined;
  if (k.use !== undefined && k.use !== "sig") return undefined;
  try {
    return { kid: k.kid, key: createPublicKey({ key: { kty: "EC", crv: "P-256", x: k.x, y: k.y }, format: "jwk" }) };
  } catch {
    return undefined;
  }
}

/**
 * The whole check of a decoded purchase token: its key (found by kid by the
 * caller; undefined when unknown), the signature, then the claims.
 */
export function verifyPurchaseToken(decoded: DecodedJwt, key: KeyObject | undefined, expect: ClaimExpectations): PurchaseClaims {
  if (!key) throw new JwtError(`unknown key id ${JSON.stringify(decoded.header.kid)}`);
  if (!signatureValid(decoded, key)) throw new JwtError("bad signature");
  return checkPurchaseClaims(decoded.payload, expect);
}
