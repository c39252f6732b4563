// Purchase tokens checked again by the order service (defence in depth behind
// Envoy's jwt_authn, and the only check when no Envoy is in front). The keys
// come from the gateway's JWKS (PURCHASE_TOKEN_JWKS_URL), cached, refetched on
// an unknown kid at most once a second and refreshed in the background when
// older than JWKS_MAX_AGE_MS. A token must be signed by a published key, come from the
// gateway for the order service, be within its time window, and name the
// caller (sub = x-user-id) and the sale (sale = sale_id).
//
// A token is single-purpose, not single-use: the first purchase request
// (request id) that presents it claims it in Redis (`<ns>:token:<jti>` =
// request id, SET NX, for the token's lifetime); retries of that request with
// the same token pass, another request id is refused. When the keys cannot be
// fetched and a token must be checked, the answer is UNAVAILABLE (retry),
// never a purchase on an unchecked token.
import type { KeyObject } from "node:crypto";
import { setTimeout as sleep } from "node:timers/promises";
import type { RedisClient } from "../common/redis.js";
import { decodeJwt, JwtError, publicKeyOf, verifyPurchaseToken, type PurchaseClaims } from "../common/jwt.js";
import { errorMessage } from "../common/error-message.js";
import type { Logger } from "../common/log.js";
import { overloaded, refuse } from "../common/refusal.js";

const LEEWAY_MS = 5000;
const REFETCH_MIN_INTERVAL_MS = 1000;
const JWKS_MAX_AGE_MS = 300_000;
const FETCH_TIMEOUT_MS = 1000;
const MAX_JWKS_BYTES = 64 * 1024;

const KEYS_UNAVAILABLE = overloaded("the purchase-token keys could not be fetched; retry shortly", 500);
const MISSING = refuse("PURCHASE_TOKEN_INVALID", "purchase token invalid: a purchase token is required");

export interface PurchaseTokenDeps {
  jwksUrl: string;
  redis: RedisClient;
  namespace: string;
  /** A PlaceOrder without a token is refused. A token that is present is verified either way. */
  required: boolean;
  nowMs: () => number;
  log: Logger;
}

/** What PlaceOrder needs: the token's verdict for this caller, sale and request. */
export interface PurchaseTokenCheck {
  /** Verifies signature and claims (no network once the keys are cached); refuses PURCHASE_TOKEN_INVALID. */
  verify(token: string | undefined, expected: { userId: string; saleId: string }): Promise<PurchaseClaims | undefined>;
  /** Binds the verified token to the request id (or finds it bound to this one already); refuses another request id. */
  claim(claims: PurchaseClaims | undefined, requestId: string): Promise<void>;
}

const invalidToken = (why: string) => refuse("PURCHASE_TOKEN_INVALID", `purchase token invalid: ${why}`);

export function createPurchaseTokenCheck(deps: PurchaseTokenDeps): PurchaseTokenCheck {
  const { log } = deps;
  let keys = new Map<string, { kid: string; key: KeyObject }>();
  let fetchedAtMs = -Infinity;
  let lastAttemptMs = -Infinity;
  let inFlight: Promise<boolean> | undefined;

  async function fetchJwks(): Promise<boolean> {
    lastAttemptMs = deps.nowMs();
    try {
      const response = await fetch(deps.jwksUrl, { signal: AbortSignal.timeout(FETCH_TIMEOUT_MS), headers: { accept: "application/json" } });
      if (!response.ok) throw new Error(`HTTP ${response.status}`);
      const text = await response.text();
      if (text.length > MAX_JWKS_BYTES) throw new Error("JWKS too large");
      const body = JSON.parse(text) as { keys?: unknown };
      if (!Array.isArray(body.keys)) throw new Error("no keys array");
      const next = new Map<string, { kid: string; key: KeyObject }>();
      for (const jwk of body.keys) {
        const key = publicKeyOf(jwk);
        if (key) next.set(key.kid, key);
      }
      keys = next;
      fetchedAtMs = deps.nowMs();
      return true;
    } catch (error) {
      log.warn("could not fetch the purchase-token JWKS", { url: deps.jwksUrl, err: errorMessage(error) });
      return false;
    }
  }

  /** One fetch at a time, at most one a second: callers share it, waiting for the next slot. */
  function refetch(): Promise<boolean> {
    inFlight ??= (async () => {
      const wait = lastAttemptMs + REFETCH_MIN_INTERVAL_MS - deps.nowMs();
      if (wait > 0) await sleep(wait);
      return fetchJwks();
    })().finally(() => {
      inFlight = undefined;
    });
    return inFlight;
  }

  /**
   * The key of a kid. Only an unknown kid waits for a fetch; a known one is
   * used at once, and when the keys are older than JWKS_MAX_AGE_MS they are
   * refreshed behind the purchase (a JWKS that is down must not add a fetch
   * timeout to every purchase, nor refuse buyers whose key is known).
   */
  async function keyFor(kid: string) {
    const known = keys.get(kid);
    if (known) {
      if (deps.nowMs() - fetchedAtMs > JWKS_MAX_AGE_MS && !inFlight) void refetch();
      return known.key;
    }
    if (!(await refetch()) && !keys.has(kid)) throw KEYS_UNAVAILABLE;
    return keys.get(kid)?.key;
  }

  return {
    async verify(token, expected) {
      if (!token) {
        if (deps.required) throw MISSING;
        return undefined;
      }
      try {
        const decoded = decodeJwt(token);
        const key = await keyFor(decoded.header.kid);
        const claims = verifyPurchaseToken(decoded, key, { nowMs: deps.nowMs(), leewayMs: LEEWAY_MS });
        if (claims.sub !== expected.userId) throw new JwtError("the token is for another user");
        if (claims.sale !== expected.saleId) throw new JwtError("the token is for another sale");
        return claims;
      } catch (error) {
        if (error instanceof JwtError) throw invalidToken(error.message);
        throw error;
      }
    },

    async claim(claims, requestId) {
      if (!claims) return;
      const ttlMs = Math.max(1000, claims.exp * 1000 + LEEWAY_MS - deps.nowMs());
      // SET NX GET (Redis 7): sets when unclaimed, else returns the request id that claimed it.
      const previous = await deps.redis.set(`${deps.namespace}:token:${claims.jti}`, requestId, "PX", ttlMs, "NX", "GET");
      if (previous !== null && previous !== requestId) throw invalidToken("the token was already used for another request");
    },
  };
}
