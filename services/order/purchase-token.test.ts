// The order service's cache of the gateway's keys, against a real JWKS HTTP
// server whose answers the test holds back: a known kid never waits for the
// JWKS (a stale cache is refreshed behind the purchase), an unknown kid does.
import { setTimeout as sleep } from "node:timers/promises";
import { generateKeyPairSync } from "node:crypto";
import { createServer, type ServerResponse } from "node:http";
import type { AddressInfo } from "node:net";
import { afterEach, beforeEach, describe, expect, it } from "vitest";
import { Redis } from "ioredis";
import { signPurchaseToken, type SigningKey } from "../../gateway/access/jwt.js";
import { publicJwkOf } from "../../gateway/access/keys.js";
import { createLogger } from "../common/log.js";
import { ulid } from "../common/ids.js";
import { createPurchaseTokenCheck, type PurchaseTokenCheck } from "./purchase-token.js";

const SALE = ulid(1_900_000_000_000);
const MAX_AGE_MS = 300_000; // JWKS_MAX_AGE_MS

function newKey(kid: string): SigningKey & { jwk: ReturnType<typeof publicJwkOf> } {
  const { privateKey, publicKey } = generateKeyPairSync("ec", { namedCurve: "P-256" });
  return { kid, privateKey, jwk: publicJwkOf(kid, publicKey) };
}

/** A JWKS endpoint that answers at once, or holds every request until release(). */
function jwksEndpoint() {
  let published: ReturnType<typeof publicJwkOf>[] = [];
  let holding = false;
  const held: ServerResponse[] = [];
  let requests = 0;
  const answer = (res: ServerResponse) => res.writeHead(200, { "content-type": "application/json" }).end(JSON.stringify({ keys: published }));
  const server = createServer((_req, res) => {
    requests++;
    if (holding) held.push(res);
    else answer(res);
  });
  return {
    start: () => new Promise<string>((resolve) => server.listen(0, "127.0.0.1", () => resolve(`http://127.0.0.1:${(server.address() as AddressInfo).port}/jwks`))),
    publish: (...keys: ReturnType<typeof publicJwkOf>[]) => (published = keys),
    hold: () => (holding = true),
    release() {
      holding = false;
      for (const res of held.splice(0)) answer(res);
    },
    requests: () => requests,
    stop: () => {
      for (const res of held.splice(0)) res.destroy();
      server.closeAllConnections();
      return new Promise<void>((resolve) => server.close(() => resolve()));
    },
  };
}

let jwks: ReturnType<typeof jwksEndpoint>;
let redis: Redis;
let now: number;
let check: PurchaseTokenCheck;
const oldKey = newKey("old");
const newerKey = newKey("newer");
const tokenOf = (key: SigningKey, userId = "alice") => signPurchaseToken(key, { userId, saleId: SALE, nowMs: now, ttlMs: 60_000 }).token;
const verify = (token: string, userId = "alice") => check.verify(token, { userId, saleId: SALE });

beforeEach(async () => {
  jwks = jwksEndpoint();
  const url = await jwks.start();
  redis = new Redis({ lazyConnect: true }); // verify() never uses it
  now = Date.now();
  check = createPurchaseTokenCheck({ jwksUrl: url, redis, namespace: "unit", required: true, nowMs: () => now, log: createLogger({ test: "purchase-token" }, "error") });
});
afterEach(async () => {
  redis.disconnect();
  await jwks.stop();
});

describe("the purchase-token keys", () => {
  it("a known kid is used at once when the keys are stale; the refresh runs behind it and drops a retired key", async () => {
    jwks.publish(oldKey.jwk);
    expect((await verify(tokenOf(oldKey)))?.sub).toBe("alice");
    expect(jwks.requests()).toBe(1);

    now += MAX_AGE_MS + 1000; // stale
    jwks.hold();
    jwks.publish(newerKey.jwk); // the old key is retired meanwhile
    // Resolves while the JWKS request is held (a fetch gives up after 1 s): the purchase did not wait for it.
    const waited = sleep(500, "waited for the JWKS");
    expect(await Promise.race([verify(tokenOf(oldKey, "bob"), "bob").then((claims) => claims?.sub), waited])).toBe("bob");
    expect((await verify(tokenOf(oldKey, "carol"), "carol"))?.sub).toBe("carol");
    await expect.poll(() => jwks.requests()).toBe(2); // one refresh, shared
    jwks.release();
    now += 1000; // past the one-fetch-a-second spacing, for the refetch of the retired kid below

    // Once the refresh has landed, the retired key is unknown: its tokens are refused.
    await expect
      .poll(() =>
        verify(tokenOf(oldKey)).then(
          () => "accepted",
          (error: Error) => error.message,
        ),
      )
      .toMatch(/purchase token invalid/);
    expect((await verify(tokenOf(newerKey)))?.sub).toBe("alice");
  });

  it("an unknown kid waits for the JWKS and is served from it", async () => {
    jwks.publish(oldKey.jwk);
    await verify(tokenOf(oldKey));
    jwks.publish(oldKey.jwk, newerKey.jwk);
    now += 2000; // past the one-fetch-a-second spacing
    jwks.hold();
    let settled = false;
    const pending = verify(tokenOf(newerKey)).finally(() => (settled = true));
    await expect.poll(() => jwks.requests()).toBe(2);
    expect(settled).toBe(false); // waiting for the held answer
    jwks.release();
    expect((await pending)?.sub).toBe("alice");
  });

  it("with the JWKS down, a stale known key still verifies and an unknown kid is UNAVAILABLE", async () => {
    jwks.publish(oldKey.jwk);
    await verify(tokenOf(oldKey));
    await jwks.stop();
    now += MAX_AGE_MS + 2000;
    expect((await verify(tokenOf(oldKey)))?.sub).toBe("alice");
    await expect(verify(tokenOf(newerKey))).rejects.toMatchObject({ reason: "OVERLOADED" });
  });
});
