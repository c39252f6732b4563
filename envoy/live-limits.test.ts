// The edge's limits, measured on a real Envoy (test/support/edge.ts) in front
// of a real stack whose services run as child processes that can be paused and
// killed (test/support/fault-stack.ts), the gateway's RateLimitService among
// them:
// - the flash-sale BFF's numbers (20 connections, 100 PlaceOrder/s) set
//   through EdgeLimits, the excess refused by Envoy and never seen upstream;
// - the global limits of gateway/ratelimit.yaml (per user, per address, per
//   user and sale) answered by the gateway and enforced by Envoy;
// - the kill switch: a sale closed at inventory is refused at the edge, with no
//   change to Envoy;
// - the RateLimitService paused or killed: Envoy lets calls through after its
//   timeout (failure_mode_deny: false);
// - the order service paused or killed under load: circuit breaker, route
//   timeout and outlier detection answer UNAVAILABLE in bounded time, and the
//   edge serves again once the service is back.
// Purchase tokens are signed here and published by a small JWKS server of this
// file, which Envoy and the order service both read.
import { setTimeout as sleep } from "node:timers/promises";
import { generateKeyPairSync, randomBytes, type KeyObject } from "node:crypto";
import { mkdtempSync, readFileSync, rmSync, writeFileSync } from "node:fs";
import { createServer as createHttpServer, type Server } from "node:http";
import { connect as connectHttp2, type ClientHttp2Session } from "node:http2";
import { connect as connectTcp } from "node:net";
import { tmpdir } from "node:os";
import { join, resolve } from "node:path";
import { credentials, status, type ServiceError } from "@grpc/grpc-js";
import { afterAll, beforeAll, beforeEach, describe, expect, it } from "vitest";
import { parse, stringify } from "yaml";
import { callUnary, GetSaleRequest, OrderServiceClient, purchaseMetadata, rejectionOf, SaleServiceClient, userMetadata } from "@seckill/sdk";
import { signJwt } from "../gateway/access/jwt.js";
import { findLimit, parseRateLimitConfig, type RateLimitUnit } from "../gateway/ratelimit/limits-file.js";
import { JWKS_PATH, TOKEN_AUDIENCE, TOKEN_ISSUER } from "./src/filters.js";
import type { EdgeLimits } from "./src/limits.js";
import { loopback, startEdge, type Edge } from "../test/support/edge.js";
import { envoyForTests } from "../test/support/envoy.js";
import { startFaultStack, type FaultStack } from "../test/support/fault-stack.js";
import { eventually } from "../test/support/stack.js";

const envoyBin = envoyForTests("the live edge limit tests");

/** The seed's figures for the flash-sale BFF. */
const BFF_CONNECTIONS = 20;
const PLACE_ORDER_PER_SECOND = 100;
/**
 * Small next to what passes in a few seconds (the refill rate), yet enough to
 * cover a 200 ms stall of the load generator (which then catches up).
 */
const PLACE_ORDER_BURST = 20;
/** Envoy's wait for the gateway's answer: roomy enough that a busy 2-core machine answers in time. */
const RATE_LIMIT_TIMEOUT_MS = 250;

/** The shipped gateway/ratelimit.yaml, and the limits of it the tests below check. */
const SHIPPED_RULES = readFileSync(resolve(import.meta.dirname, "../gateway/ratelimit.yaml"), "utf8");
function shippedLimit(entries: { key: string; value: string }[], unit: RateLimitUnit): number {
  const limit = findLimit(parseRateLimitConfig(SHIPPED_RULES), entries);
  if (limit?.unit !== unit) throw new Error(`gateway/ratelimit.yaml: expected a limit a ${unit} for ${JSON.stringify(entries)}, found ${JSON.stringify(limit)}`);
  return limit.requestsPerUnit;
}
const USER_PER_SECOND = shippedLimit([{ key: "user_id", value: "u" }], "second");
const USER_SALE_PER_MINUTE = shippedLimit(
  [
    { key: "sale_id", value: "s" },
    { key: "user_id", value: "u" },
  ],
  "minute",
);
/** A second loopback address with a small limit of its own, added to the shipped file for this test. */
const OTHER_ADDRESS = "127.0.0.2";
const OTHER_ADDRESS_PER_SECOND = 30;

const KID = "edge-limits-1";

const portOf = (addr: string) => Number(addr.slice(addr.lastIndexOf(":") + 1));

let stack: FaultStack;
let jwks: Server;
let jwksPort: number;
let privateKey: KeyObject;
let edge: Edge;
let ruleDir: string;

function purchaseToken(sub: string, sale: string): string {
  const now = Math.floor(Date.now() / 1000);
  return signJwt(
    { kid: KID, privateKey },
    {
      iss: TOKEN_ISSUER,
      aud: TOKEN_AUDIENCE,
      sub,
      sale,
      iat: now,
      nbf: now,
      exp: now + 120,
      jti: randomBytes(12).toString("hex"),
    },
  );
}

interface Outcome {
  code: status;
  details?: string;
  reason?: string;
  /** Refused by the PlaceOrder token bucket of Envoy itself (its x-seckill-limited header). */
  localLimit: boolean;
  /** Refused by Envoy on the gateway's OVER_LIMIT (the ratelimit filter's x-envoy-ratelimited header). */
  globalLimit: boolean;
  headers: Record<string, string>;
  /** performance.now() when the call was made, and how long it took. */
  at: number;
  ms: number;
}

async function outcome(call: () => Promise<unknown>): Promise<Outcome> {
  const at = performance.now();
  try {
    await call();
    return { code: status.OK, localLimit: false, globalLimit: false, headers: {}, at, ms: performance.now() - at };
  } catch (error) {
    const e = error as ServiceError;
    const headers = Object.fromEntries(Object.entries(e.metadata?.getMap() ?? {}).map(([k, v]) => [k, String(v)]));
    return {
      code: e.code,
      details: e.details,
      reason: rejectionOf(e).reason,
      localLimit: headers["x-seckill-limited"] === "edge",
      globalLimit: headers["x-envoy-ratelimited"] === "true",
      headers,
      at,
      ms: performance.now() - at,
    };
  }
}

function placeOrder(orders: OrderServiceClient, saleId: string, userId: string, token = purchaseToken(userId, saleId)): Promise<Outcome> {
  return outcome(() =>
    callUnary(
      orders,
      "placeOrder",
      { saleId, quantity: 1, requestId: `r-${randomBytes(6).toString("hex")}`, purchaseToken: token, retry: false },
      { metadata: purchaseMetadata(userId, saleId, token), deadlineMs: 10_000 },
    ),
  );
}

const getSale = (sales: SaleServiceClient, saleId: string, userId: string): Promise<Outcome> =>
  outcome(() => callUnary(sales, "getSale", { saleId }, { metadata: userMetadata(userId), deadlineMs: 10_000 }));

const count = (results: Outcome[], code: status) => results.filter((r) => r.code === code).length;
const codes = (results: Outcome[]) => [...new Set(results.map((r) => status[r.code]))].sort();

/** Grpc-js shares one connection between clients of one address; these get one each. */
const OWN_CONNECTION = { "grpc.use_local_subchannel_pool": 1 };

/** Calls send(i) at `rate` a second, on time whatever the answers do (open loop), while more(elapsed ms, calls made) holds. */
async function openLoop(rate: number, more: (elapsedMs: number, made: number) => boolean, send: (i: number) => Promise<Outcome>) {
  const calls: Promise<Outcome>[] = [];
  const start = performance.now();
  await new Promise<void>((done) => {
    const tick = () => {
      const elapsed = performance.now() - start;
      const due = Math.floor((elapsed / 1000) * rate) + 1;
      while (calls.length < due && more(performance.now() - start, calls.length)) calls.push(send(calls.length));
      if (!more(performance.now() - start, calls.length)) done();
      else setTimeout(tick, 2);
    };
    tick();
  });
  const offeredMs = performance.now() - start;
  return { start, offeredMs, results: await Promise.all(calls) };
}

/** Opens an HTTP/2 connection to the edge: "open" once Envoy sent its SETTINGS, "closed" when it hung up first. */
function openConnection(port: number): Promise<{ outcome: "open" | "closed"; close: () => void }> {
  return new Promise((done) => {
    const session = connectHttp2(`http://127.0.0.1:${port}`);
    const close = () => session.destroy();
    session.once("remoteSettings", () => done({ outcome: "open", close }));
    session.once("close", () => done({ outcome: "closed", close }));
    session.on("error", () => undefined);
  });
}

/** An HTTP/2 connection to the edge from another loopback address (grpc-js cannot choose its source address). */
function connectFrom(localAddress: string, port: number): Promise<ClientHttp2Session> {
  return new Promise((done, fail) => {
    const session = connectHttp2(`http://127.0.0.1:${port}`, { createConnection: () => connectTcp({ host: "127.0.0.1", port, localAddress }) });
    session.on("error", () => undefined);
    session.once("remoteSettings", () => done(session));
    session.once("close", () => fail(new Error(`the edge closed the connection from ${localAddress}`)));
  });
}

/** GetSale by hand on an HTTP/2 session: the grpc-status it ended with, and whether Envoy's ratelimit filter refused it. */
function rawGetSale(session: ClientHttp2Session, saleId: string, userId: string): Promise<{ code: status; globalLimit: boolean }> {
  return new Promise((done, fail) => {
    const body = GetSaleRequest.encode({ saleId }).finish();
    const frame = Buffer.alloc(5 + body.length);
    frame.writeUInt32BE(body.length, 1);
    frame.set(body, 5);
    const req = session.request({
      ":method": "POST",
      ":path": "/seckill.v1.SaleService/GetSale",
      "content-type": "application/grpc",
      te: "trailers",
      "x-user-id": userId,
    });
    let code: string | undefined;
    let globalLimit = false;
    req.on("response", (headers) => {
      code ??= headers["grpc-status"] as string | undefined;
      globalLimit = headers["x-envoy-ratelimited"] === "true";
    });
    req.on("trailers", (trailers) => (code ??= trailers["grpc-status"] as string | undefined));
    req.on("error", fail);
    req.on("close", () => (code === undefined ? fail(new Error("no grpc-status")) : done({ code: Number(code) as status, globalLimit })));
    req.resume();
    req.end(frame);
  });
}

/**
 * Runs `burst` inside one fixed window of the gateway's counters (`unitMs` long,
 * aligned on the clock the gateway shares with this process): waits for a
 * window with `needMs` left, and runs it again (with the next attempt number,
 * for fresh keys) when it spilled into the next window on a busy machine.
 */
async function inOneWindow<T>(unitMs: number, needMs: number, burst: (attempt: number) => Promise<T>): Promise<T> {
  for (let attempt = 0; ; attempt++) {
    const left = unitMs - (Date.now() % unitMs);
    if (left < needMs) await sleep(left + 10);
    const started = Date.now();
    const result = await burst(attempt);
    if (Math.floor(started / unitMs) === Math.floor(Date.now() / unitMs) || attempt === 2) return result;
  }
}

/**
 * Envoy's access log lines of PlaceOrder calls that started at or after `sinceMs`
 * (its default format: start time, then request line, response code and flags;
 * RL is its own rate limit), in start order.
 */
function placeOrderLog(e: Edge, sinceMs: number): { at: number; limited: boolean }[] {
  const line = /^\[(\S+)\] "POST \/seckill\.v1\.OrderService\/PlaceOrder HTTP\/2" \d+ (\S+) /;
  return e.output
    .join("")
    .split("\n")
    .flatMap((l) => {
      const m = line.exec(l);
      if (!m) return [];
      const at = Date.parse(m[1]!);
      return at >= sinceMs ? [{ at, limited: m[2]!.split(",").includes("RL") }] : [];
    })
    .sort((a, b) => a.at - b.at);
}

/** These counters of Envoy's admin, by name, for the deltas the tests compare. */
async function stats(e: Edge, names: string[]): Promise<Record<string, number>> {
  return Object.fromEntries(await Promise.all(names.map(async (n) => [n, await e.stat(n)] as const)));
}
const delta = (before: Record<string, number>, after: Record<string, number>) => Object.fromEntries(Object.keys(after).map((k) => [k, after[k]! - (before[k] ?? 0)]));

/** The upstreams of an edge in front of the stack. */
const stackClusters = () => ({
  order_flash: loopback(portOf(stack.config.orderAddr)),
  inventory_default: loopback(portOf(stack.config.inventoryAddr)),
  gateway: loopback(portOf(stack.config.gatewayAddr)),
  gateway_jwks: loopback(jwksPort),
});

/** Waits until `e` takes purchases: routes to the stack, and has fetched the token keys (jwt_authn fetches them asynchronously). */
async function untilTakingPurchases(e: Edge): Promise<void> {
  const orders = new OrderServiceClient(e.address, credentials.createInsecure());
  try {
    const probe = await stack.createSale({ totalStock: 1000 });
    let n = 0;
    await eventually(async () => (await placeOrder(orders, probe.saleId, `probe-${randomBytes(4).toString("hex")}-${++n}`)).code === status.OK, 20_000, "envoy to take purchases");
  } finally {
    orders.close();
  }
}

describe.skipIf(!envoyBin)("the edge's limits on a real Envoy and stack", () => {
  beforeAll(async () => {
    const keys = generateKeyPairSync("ec", { namedCurve: "P-256" });
    privateKey = keys.privateKey;
    const jwk = { ...keys.publicKey.export({ format: "jwk" }), kid: KID, alg: "ES256", use: "sig" };
    jwks = createHttpServer((req, res) => {
      if (req.url !== JWKS_PATH) return void res.writeHead(404).end();
      res.writeHead(200, { "content-type": "application/json" }).end(JSON.stringify({ keys: [jwk] }));
    });
    await new Promise<void>((done) => jwks.listen(0, "127.0.0.1", done));
    jwksPort = (jwks.address() as { port: number }).port;

    // The shipped rate limit file, plus a small limit for one other client address
    // (a rule with a value is matched before the rule for any address).
    const rules = parse(SHIPPED_RULES) as { descriptors: object[] };
    rules.descriptors.unshift({ key: "remote_address", value: OTHER_ADDRESS, rate_limit: { unit: "second", requests_per_unit: OTHER_ADDRESS_PER_SECOND } });
    ruleDir = mkdtempSync(join(tmpdir(), "seckill-ratelimit-"));
    writeFileSync(join(ruleDir, "ratelimit.yaml"), stringify(rules));

    stack = await startFaultStack({
      gateway: true,
      env: { PURCHASE_TOKEN_JWKS_URL: `http://127.0.0.1:${jwksPort}${JWKS_PATH}`, RATE_LIMIT_CONFIG: join(ruleDir, "ratelimit.yaml") },
    });
    edge = await startEdge(envoyBin!, {
      clusters: stackClusters(),
      limits: {
        maxConnections: BFF_CONNECTIONS,
        placeOrderBurst: PLACE_ORDER_BURST,
        placeOrderPerSecond: PLACE_ORDER_PER_SECOND,
        rateLimitTimeoutMs: RATE_LIMIT_TIMEOUT_MS,
      },
    });
    await untilTakingPurchases(edge);
  }, 90_000);

  afterAll(async () => {
    await edge?.stop();
    await stack?.stop();
    if (jwks) await new Promise((done) => jwks.close(done));
    if (ruleDir) rmSync(ruleDir, { recursive: true, force: true });
  });

  // Each test starts with no client connected to the edge (a failed test's clients may still be closing).
  beforeEach(async () => {
    await eventually(async () => (await edge.stat("connection_limit.edge_connections.active_connections")) === 0, 10_000, "the edge to have no connection");
  });

  it("holds the flash-sale BFF to 20 connections and 100 PlaceOrder/s, refusing the rest at the edge", async () => {
    const rate = 500;
    const seconds = 3;
    const total = rate * seconds;
    const stock = 5000;
    const sale = await stack.createSale({ totalStock: stock });
    const tokens = Array.from({ length: total }, (_, i) => purchaseToken(`bff-${i}`, sale.saleId));
    const connections = "connection_limit.edge_connections.active_connections";

    const clients = Array.from({ length: BFF_CONNECTIONS }, () => new OrderServiceClient(edge.address, credentials.createInsecure(), OWN_CONNECTION));
    try {
      await Promise.all(clients.map((c) => new Promise<void>((ok, fail) => c.waitForReady(Date.now() + 5000, (e) => (e ? fail(e) : ok())))));
      expect(await edge.stat(connections)).toBe(BFF_CONNECTIONS);
      // The 21st connection is closed at once.
      const limitedBefore = await edge.stat("connection_limit.edge_connections.limited_connections");
      const extra = await openConnection(edge.port);
      extra.close();
      expect(extra.outcome).toBe("closed");
      expect(await edge.stat("connection_limit.edge_connections.limited_connections")).toBe(limitedBefore + 1);
      expect(await edge.stat(connections)).toBe(BFF_CONNECTIONS);

      const counters = ["cluster.order_flash.upstream_rq_total", "place_order.http_local_rate_limit.rate_limited", "place_order.http_local_rate_limit.ok"];
      const before = await stats(edge, counters);
      const loadStart = Date.now();
      const { offeredMs, results } = await openLoop(
        rate,
        (_, made) => made < total,
        (i) => placeOrder(clients[i % BFF_CONNECTIONS]!, sale.saleId, `bff-${i}`, tokens[i]),
      );
      const d = delta(before, await stats(edge, counters));

      const admitted = count(results, status.OK);
      const refused = results.filter((r) => r.code === status.RESOURCE_EXHAUSTED && r.localLimit).length;
      // Envoy's view, from its access log: when each call reached it (on a busy machine, later and more
      // bunched than the client sent them), and whether its bucket refused it.
      await fetch(`http://127.0.0.1:${edge.adminPort}/reopen_logs`, { method: "POST" });
      await eventually(() => placeOrderLog(edge, loadStart - 50).length >= total, 15_000, "envoy's access log of the load");
      const seen = placeOrderLog(edge, loadStart - 50);
      const first = seen[0]!.at;
      const spanMs = seen.at(-1)!.at - first;
      // What a token bucket of that burst and rate (full at the start) admits of those arrivals, in three
      // equal windows of the span, next to what Envoy admitted; and the refill it loses while it stands
      // full (a pause of the calls longer than it takes to fill; none when they come steadily).
      const windowMs = spanMs / seconds;
      const inWindow = (at: number) => Math.min(seconds - 1, Math.floor((at - first) / windowMs));
      const model = Array.from({ length: seconds }, () => 0);
      let bucket = PLACE_ORDER_BURST;
      let lostTokens = 0;
      seen.forEach((l, i) => {
        if (i > 0) {
          const filled = bucket + ((l.at - seen[i - 1]!.at) * PLACE_ORDER_PER_SECOND) / 1000;
          lostTokens += Math.max(0, filled - PLACE_ORDER_BURST);
          bucket = Math.min(PLACE_ORDER_BURST, filled);
        }
        if (bucket >= 1) {
          bucket -= 1;
          model[inWindow(l.at)]!++;
        }
      });
      // Envoy's refill rate: what it admitted beyond the first burst (and what the bucket still holds),
      // over the time its bucket was refilling.
      const refillMs = spanMs - (lostTokens * 1000) / PLACE_ORDER_PER_SECOND;
      const ratePerSecond = ((admitted - PLACE_ORDER_BURST + bucket) * 1000) / refillMs;
      const perWindow = Array.from({ length: seconds }, (_, w) => seen.filter((l) => !l.limited && inWindow(l.at) === w).length);
      const summary = JSON.stringify({ offeredMs: Math.round(offeredMs), spanMs, refillMs, admitted, refused, ratePerSecond, perWindow, model, codes: codes(results), envoy: d });
      // Every call was admitted, or refused by Envoy's token bucket; the log says the same.
      expect(admitted + refused, summary).toBe(total);
      expect(seen.length, summary).toBe(total);
      expect(seen.filter((l) => l.limited).length, summary).toBe(refused);
      // The load kept the bucket busy: Envoy saw over twice its rate (500/s was sent).
      expect((total * 1000) / refillMs, summary).toBeGreaterThan(2 * PLACE_ORDER_PER_SECOND);
      // 100 ± 10 % a second: the burst, then the refill rate.
      expect(ratePerSecond, summary).toBeGreaterThanOrEqual(PLACE_ORDER_PER_SECOND * 0.9);
      expect(ratePerSecond, summary).toBeLessThanOrEqual(PLACE_ORDER_PER_SECOND * 1.1);
      // And second by second: in each window, what the bucket admits of the calls as they came ± 10 %.
      for (const [w, n] of perWindow.entries()) expect(Math.abs(n - model[w]!), summary).toBeLessThanOrEqual(Math.max(3, model[w]! * 0.1));
      // Envoy counted the same, and sent only the admitted calls upstream...
      expect(d["place_order.http_local_rate_limit.rate_limited"]).toBe(refused);
      expect(d["place_order.http_local_rate_limit.ok"]).toBe(admitted);
      expect(d["cluster.order_flash.upstream_rq_total"]).toBe(admitted);
      // ...which inventory reserved, one unit each; nothing of the refused ones.
      const { stockLeft } = await callUnary(stack.sales, "getSaleStatus", { saleId: sale.saleId });
      expect(stock - stockLeft).toBe(admitted);
    } finally {
      for (const c of clients) c.close();
    }
    // Once the BFF's connections are gone, a new one is accepted.
    await eventually(
      async () => {
        const c = await openConnection(edge.port);
        c.close();
        return c.outcome === "open";
      },
      10_000,
      "a connection under the limit",
    );
  });

  it("refuses calls over the per-user, per-address and per-user-and-sale limits of the gateway at the edge; others pass", async () => {
    const sales = new SaleServiceClient(edge.address, credentials.createInsecure());
    const orders = new OrderServiceClient(edge.address, credentials.createInsecure());
    const other = await connectFrom(OTHER_ADDRESS, edge.port);
    try {
      const sale = await stack.createSale({ totalStock: 100 });
      const counters = [
        "cluster.inventory_default.upstream_rq_total",
        "cluster.inventory_default.ratelimit.over_limit",
        "cluster.inventory_default.ratelimit.ok",
        "cluster.order_flash.upstream_rq_total",
        "cluster.order_flash.ratelimit.over_limit",
      ];

      // Per user: one user's calls over the limit in one second window, another user's 5.
      const floodSize = USER_PER_SECOND + 10;
      let before: Record<string, number> = {};
      const [flood, calm] = await inOneWindow(1000, 800, async (attempt) => {
        before = await stats(edge, counters);
        return Promise.all([
          Promise.all(Array.from({ length: floodSize }, () => getSale(sales, sale.saleId, `mallory-${attempt}`))),
          Promise.all(Array.from({ length: 5 }, () => getSale(sales, sale.saleId, `bob-${attempt}`))),
        ]);
      });
      let d = delta(before, await stats(edge, counters));
      const perUser = JSON.stringify({ flood: codes(flood), calm: codes(calm), envoy: d, headers: flood.find((r) => r.code !== status.OK)?.headers });
      expect(count(flood, status.OK), perUser).toBe(USER_PER_SECOND);
      expect(flood.filter((r) => r.code === status.RESOURCE_EXHAUSTED && r.globalLimit).length, perUser).toBe(floodSize - USER_PER_SECOND);
      expect(flood.find((r) => r.globalLimit)?.headers["ratelimit-limit"], perUser).toMatch(new RegExp(`^${USER_PER_SECOND}, ${USER_PER_SECOND};w=1`));
      expect(count(calm, status.OK), perUser).toBe(5);
      expect(d["cluster.inventory_default.ratelimit.over_limit"], perUser).toBe(floodSize - USER_PER_SECOND);
      expect(d["cluster.inventory_default.upstream_rq_total"], perUser).toBe(USER_PER_SECOND + 5);

      // Per address: users from another client address over its limit in one second window, 5 from the usual one.
      const addressFlood = OTHER_ADDRESS_PER_SECOND + 10;
      const [fromOther, fromUsual] = await inOneWindow(1000, 800, async (attempt) => {
        before = await stats(edge, counters);
        return Promise.all([
          Promise.all(Array.from({ length: addressFlood }, (_, i) => rawGetSale(other, sale.saleId, `addr-${attempt}-${i}`))),
          Promise.all(Array.from({ length: 5 }, (_, i) => getSale(sales, sale.saleId, `usual-${attempt}-${i}`))),
        ]);
      });
      d = delta(before, await stats(edge, counters));
      const perAddress = JSON.stringify({ fromOther, fromUsual: codes(fromUsual), envoy: d });
      expect(fromOther.filter((r) => r.code === status.OK).length, perAddress).toBe(OTHER_ADDRESS_PER_SECOND);
      expect(fromOther.filter((r) => r.code === status.RESOURCE_EXHAUSTED && r.globalLimit).length, perAddress).toBe(addressFlood - OTHER_ADDRESS_PER_SECOND);
      expect(count(fromUsual, status.OK), perAddress).toBe(5);
      expect(d["cluster.inventory_default.upstream_rq_total"], perAddress).toBe(OTHER_ADDRESS_PER_SECOND + 5);

      // Per user and sale: a buyer's attempts at one sale, a minute window.
      const { attempts, frank } = await inOneWindow(60_000, 3000, async (attempt) => {
        before = await stats(edge, counters);
        const out: Outcome[] = [];
        for (let i = 0; i < USER_SALE_PER_MINUTE + 4; i++) {
          out.push(await placeOrder(orders, sale.saleId, `eve-${attempt}`));
          await sleep(1000 / PLACE_ORDER_PER_SECOND + 5); // under the token bucket
        }
        return { attempts: out, frank: await placeOrder(orders, sale.saleId, `frank-${attempt}`) };
      });
      d = delta(before, await stats(edge, counters));
      const perSale = {
        attempts: attempts.map((a) => `${status[a.code]}${a.reason ? `/${a.reason}` : ""}`),
        frank: status[frank.code],
        envoy: d,
        headers: attempts.at(-1)?.headers,
      };
      // The first buys, the next ones up to the limit reach the service (which knows she bought), the rest
      // are stopped at the edge.
      expect(attempts[0]!.code).toBe(status.OK);
      expect(
        attempts.slice(1, USER_SALE_PER_MINUTE).every((a) => a.code === status.ALREADY_EXISTS),
        JSON.stringify(perSale),
      ).toBe(true);
      expect(
        attempts.slice(USER_SALE_PER_MINUTE).every((a) => a.code === status.RESOURCE_EXHAUSTED && a.globalLimit),
        JSON.stringify(perSale),
      ).toBe(true);
      expect(frank.code).toBe(status.OK);
      expect(d["cluster.order_flash.upstream_rq_total"]).toBe(USER_SALE_PER_MINUTE + 1);
      expect(d["cluster.order_flash.ratelimit.over_limit"]).toBe(attempts.length - USER_SALE_PER_MINUTE);
    } finally {
      sales.close();
      orders.close();
      other.destroy();
    }
  });

  it("refuses a sale's purchases at the edge once an operator closed it at inventory, with no change to Envoy", async () => {
    const orders = new OrderServiceClient(edge.address, credentials.createInsecure());
    try {
      const [closing, open] = [await stack.createSale({ totalStock: 100 }), await stack.createSale({ totalStock: 100 })];
      expect((await placeOrder(orders, closing.saleId, "kim")).code).toBe(status.OK);
      // The operator's call goes to inventory itself: the edge does not route CloseSale.
      await callUnary(stack.sales, "closeSale", { saleId: closing.saleId });

      const counters = ["cluster.order_flash.upstream_rq_total", "cluster.order_flash.ratelimit.over_limit"];
      const before = await stats(edge, counters);
      const refused = await placeOrder(orders, closing.saleId, "lee");
      const passed = await placeOrder(orders, open.saleId, "lee");
      const d = delta(before, await stats(edge, counters));
      const seen = { refused, passed: status[passed.code], envoy: d };
      // The gateway's sale_closed limit (no requests), checked on the sale_id descriptor, answered by Envoy.
      expect(refused.code, JSON.stringify(seen)).toBe(status.RESOURCE_EXHAUSTED);
      expect(refused.globalLimit, JSON.stringify(seen)).toBe(true);
      expect(refused.headers["ratelimit-limit"], JSON.stringify(seen)).toMatch(/^0, 0;w=86400;name="sale_closed"/);
      expect(passed.code, JSON.stringify(seen)).toBe(status.OK);
      expect(d).toEqual({ "cluster.order_flash.upstream_rq_total": 1, "cluster.order_flash.ratelimit.over_limit": 1 });
    } finally {
      orders.close();
    }
  });

  it("lets calls through when the RateLimitService hangs or is gone (failure_mode_deny: false), within its timeout", async () => {
    const orders = new OrderServiceClient(edge.address, credentials.createInsecure());
    const [closed, open] = [await stack.createSale({ totalStock: 100 }), await stack.createSale({ totalStock: 100 })];
    await callUnary(stack.sales, "closeSale", { saleId: closed.saleId });
    const counters = ["cluster.order_flash.ratelimit.error", "cluster.order_flash.ratelimit.failure_mode_allowed", "cluster.order_flash.ratelimit.over_limit"];
    /** A few purchases, one after another under the token bucket: at the open sale, and one at the closed sale. */
    const purchases = async (who: string) => {
      const out: Outcome[] = [];
      for (let i = 0; i < 5; i++) {
        out.push(await placeOrder(orders, open.saleId, `${who}-${i}`));
        await sleep(1000 / PLACE_ORDER_PER_SECOND + 5);
      }
      return { open: out, closed: await placeOrder(orders, closed.saleId, `${who}-closed`) };
    };
    const describeRun = (r: Awaited<ReturnType<typeof purchases>>, d: Record<string, number>) =>
      JSON.stringify({ open: r.open.map((o) => [status[o.code], Math.round(o.ms)]), closed: [status[r.closed.code], r.closed.reason, Math.round(r.closed.ms)], envoy: d });
    try {
      // Up: the kill switch holds at the edge.
      const up = await placeOrder(orders, closed.saleId, "up");
      expect(up.code).toBe(status.RESOURCE_EXHAUSTED);
      expect(up.globalLimit).toBe(true);

      // Hung: Envoy waits its timeout, then lets the call through; the service refuses the closed sale itself.
      await stack.kill("gateway", "SIGSTOP");
      let before = await stats(edge, counters);
      const hung = await purchases("hung");
      let d = delta(before, await stats(edge, counters));
      for (const r of [...hung.open, hung.closed]) {
        expect(r.ms, describeRun(hung, d)).toBeGreaterThanOrEqual(RATE_LIMIT_TIMEOUT_MS - 5);
        expect(r.ms, describeRun(hung, d)).toBeLessThan(RATE_LIMIT_TIMEOUT_MS + 750);
      }
      expect(
        hung.open.every((r) => r.code === status.OK),
        describeRun(hung, d),
      ).toBe(true);
      expect([hung.closed.code, hung.closed.reason], describeRun(hung, d)).toEqual([status.FAILED_PRECONDITION, "SALE_ENDED"]);
      expect(d["cluster.order_flash.ratelimit.failure_mode_allowed"]).toBe(6);
      expect(d["cluster.order_flash.ratelimit.over_limit"]).toBe(0);

      // Gone: refused connections, through at once.
      await stack.kill("gateway", "SIGKILL");
      before = await stats(edge, counters);
      const gone = await purchases("gone");
      d = delta(before, await stats(edge, counters));
      const goneMs = [...gone.open, gone.closed].map((r) => r.ms).sort((a, b) => a - b);
      expect(goneMs[Math.floor(goneMs.length / 2)], describeRun(gone, d)).toBeLessThan(RATE_LIMIT_TIMEOUT_MS);
      expect(goneMs.at(-1), describeRun(gone, d)).toBeLessThan(RATE_LIMIT_TIMEOUT_MS + 750);
      expect(
        gone.open.every((r) => r.code === status.OK),
        describeRun(gone, d),
      ).toBe(true);
      expect([gone.closed.code, gone.closed.reason], describeRun(gone, d)).toEqual([status.FAILED_PRECONDITION, "SALE_ENDED"]);
      expect(d["cluster.order_flash.ratelimit.failure_mode_allowed"]).toBe(6);

      // Back: the limits hold again.
      await stack.restart("gateway");
      let n = 0;
      await eventually(async () => (await placeOrder(orders, closed.saleId, `back-${++n}`)).globalLimit, 15_000, "the kill switch at the edge again");
    } finally {
      orders.close();
      if (stack.state("gateway") !== "running") await stack.restart("gateway");
    }
  });

  describe("with the order service paused or killed under load", () => {
    /**
     * PlaceOrder's route timeout on this edge, and a circuit breaker that trips at 40 calls a second to a
     * hung service (at most 24 of them wait, each for the route timeout) but not at 40 answered within
     * 600 ms, as on a busy machine.
     */
    const ROUTE_TIMEOUT_MS = 1000;
    const MAX_UPSTREAM_REQUESTS = 24;
    const RATE = 40;
    /** Slack for a busy 2-core machine on top of the route timeout, far below the client's 10 s deadline. */
    const SLACK_MS = 750;
    const TIMED_OUT = "upstream request timeout";
    const OVERFLOW = "reset reason: overflow";
    const CONNECT_FAILED = "reset reason: remote connection failure";
    let edge2: Edge;
    let orders: OrderServiceClient;
    const counters = [
      "cluster.order_flash.upstream_rq_timeout",
      "cluster.order_flash.upstream_rq_active_overflow",
      "cluster.order_flash.upstream_cx_connect_fail",
      "cluster.order_flash.outlier_detection.ejections_enforced_consecutive_local_origin_failure",
    ];

    beforeAll(async () => {
      const limits: Partial<EdgeLimits> = {
        placeOrderTimeoutMs: ROUTE_TIMEOUT_MS,
        upstreamMaxRequests: MAX_UPSTREAM_REQUESTS,
        rateLimitTimeoutMs: RATE_LIMIT_TIMEOUT_MS,
      };
      edge2 = await startEdge(envoyBin!, { clusters: stackClusters(), limits });
      await untilTakingPurchases(edge2);
      orders = new OrderServiceClient(edge2.address, credentials.createInsecure());
    }, 60_000);

    afterAll(async () => {
      orders?.close();
      await edge2?.stop();
      if (stack.state("order") !== "running") await stack.restart("order");
    });

    const load = (saleId: string, who: string, more: (elapsedMs: number) => boolean) =>
      openLoop(
        RATE,
        (elapsed) => more(elapsed),
        (i) => placeOrder(orders, saleId, `${who}-${i}`),
      );
    const show = (results: Outcome[], d: Record<string, number>, marks: Record<string, number>) =>
      JSON.stringify({
        envoy: d,
        marks: Object.fromEntries(Object.entries(marks).map(([k, v]) => [k, Math.round(v)])),
        calls: results.map(
          (r) => `${Math.round(r.at)}:${status[r.code]}:${Math.round(r.ms)}${r.details ? `:${r.details.replace(/^.*(reset reason|upstream request)/, "$1")}` : ""}`,
        ),
      });
    const saying = (results: Outcome[], what: string) => results.filter((r) => r.code === status.UNAVAILABLE && r.details?.includes(what));

    it("answers UNAVAILABLE within the route timeout while the service hangs (route timeout, circuit breaker), and serves again when it resumes", async () => {
      const sale = await stack.createSale({ totalStock: 5000 });
      const before = await stats(edge2, counters);
      const marks: Record<string, number> = {};
      const run = load(sale.saleId, "hang", (elapsed) => elapsed < 5000);
      await sleep(800);
      marks.stopped = performance.now();
      await stack.kill("order", "SIGSTOP");
      await sleep(2500);
      await stack.kill("order", "SIGCONT");
      marks.resumed = performance.now();
      const { results } = await run;
      const d = delta(before, await stats(edge2, counters));
      const why = show(results, d, marks);

      // Never a hang: every call ended within the route timeout.
      expect(Math.max(...results.map((r) => r.ms)), why).toBeLessThan(ROUTE_TIMEOUT_MS + SLACK_MS);
      // OK or UNAVAILABLE; but a call whose answer the service had begun when it stopped, or began when it
      // resumed and did not finish in time, can only be reset by Envoy at the route timeout (INTERNAL).
      const across = (r: Outcome, mark: number) => r.at < mark && r.at + r.ms > mark;
      const inFlight = (r: Outcome) => across(r, marks.stopped!) || across(r, marks.resumed!);
      expect(codes(results.filter((r) => !inFlight(r))), why).toEqual(["OK", "UNAVAILABLE"]);
      expect(
        results.filter((r) => r.code === status.INTERNAL).every((r) => inFlight(r) && r.ms >= ROUTE_TIMEOUT_MS),
        why,
      ).toBe(true);
      // Answered before the pause.
      expect(
        results.filter((r) => r.at + r.ms < marks.stopped!).every((r) => r.code === status.OK),
        why,
      ).toBe(true);
      // While paused: the calls Envoy sent waited for the route timeout; once MAX_UPSTREAM_REQUESTS of
      // them were waiting, the circuit breaker refused the rest at once.
      const whilePaused = results.filter((r) => r.at > marks.stopped! + 50 && r.at + ROUTE_TIMEOUT_MS + SLACK_MS < marks.resumed!);
      expect(whilePaused.length, why).toBeGreaterThan(RATE / 2);
      expect(
        whilePaused.every((r) => r.code === status.UNAVAILABLE),
        why,
      ).toBe(true);
      const timedOut = saying(results, TIMED_OUT);
      const overflowed = saying(results, OVERFLOW);
      const waited = [...timedOut, ...results.filter((r) => r.code === status.INTERNAL)];
      expect(timedOut.length, why).toBeGreaterThanOrEqual(MAX_UPSTREAM_REQUESTS);
      expect(
        timedOut.every((r) => r.ms >= ROUTE_TIMEOUT_MS),
        why,
      ).toBe(true);
      expect(overflowed.length, why).toBeGreaterThan(whilePaused.length / 4);
      expect(
        overflowed.every((r) => r.ms < SLACK_MS),
        why,
      ).toBe(true);
      // At no time (the middle of each waiting call) did more than the breaker's number wait; the client
      // sees each wait a little longer than Envoy does, so 25 ms at either end are not counted.
      const waitingAt = (t: number) => waited.filter((r) => r.at + 25 <= t && t <= r.at + r.ms - 25).length;
      expect(Math.max(...waited.map((r) => waitingAt(r.at + r.ms / 2))), why).toBeLessThanOrEqual(MAX_UPSTREAM_REQUESTS);
      expect(timedOut.length + overflowed.length, why).toBe(count(results, status.UNAVAILABLE));
      expect(d["cluster.order_flash.upstream_rq_timeout"], why).toBe(timedOut.length + count(results, status.INTERNAL));
      expect(d["cluster.order_flash.upstream_rq_active_overflow"], why).toBe(overflowed.length);
      // Served again soon after it resumed.
      expect(
        results.filter((r) => r.at > marks.resumed! + 1000).every((r) => r.code === status.OK),
        why,
      ).toBe(true);
    });

    it("answers UNAVAILABLE at once while the service is dead (outlier detection ejects it), and serves again once it is restarted on its port", async () => {
      const sale = await stack.createSale({ totalStock: 5000 });
      const before = await stats(edge2, counters);
      const marks: Record<string, number> = {};
      let until = Infinity;
      const run = load(sale.saleId, "kill", (elapsed) => performance.now() < until && elapsed < 30_000);
      await sleep(800);
      marks.killed = performance.now();
      await stack.kill("order", "SIGKILL");
      await sleep(1000);
      await stack.restart("order");
      marks.restarted = performance.now();
      until = marks.restarted + 3000;
      const { results } = await run;
      const d = delta(before, await stats(edge2, counters));
      const why = show(results, d, marks);

      expect(Math.max(...results.map((r) => r.ms)), why).toBeLessThan(ROUTE_TIMEOUT_MS + SLACK_MS);
      expect(
        results.filter((r) => r.at + r.ms < marks.killed!).every((r) => r.code === status.OK),
        why,
      ).toBe(true);
      // The calls the service had when it died may end in a reset stream (INTERNAL) once it had begun
      // to answer; every later call ended OK or UNAVAILABLE.
      expect(codes(results.filter((r) => r.at > marks.killed! + 100)), why).toEqual(["OK", "UNAVAILABLE"]);
      // Dead: refused connections, answered at once; after 5 in a row, outlier detection ejected it.
      const whileDead = results.filter((r) => r.at > marks.killed! + 100 && r.at < marks.killed! + 1000);
      expect(whileDead.length, why).toBeGreaterThan(RATE / 2);
      expect(
        whileDead.every((r) => r.code === status.UNAVAILABLE && r.details?.includes(CONNECT_FAILED) && r.ms < SLACK_MS),
        why,
      ).toBe(true);
      expect(d["cluster.order_flash.upstream_cx_connect_fail"], why).toBeGreaterThanOrEqual(whileDead.length);
      expect(d["cluster.order_flash.outlier_detection.ejections_enforced_consecutive_local_origin_failure"], why).toBeGreaterThanOrEqual(1);
      // Back on its port: served again (the restarted process is slow for a moment, and the circuit
      // breaker sheds what it cannot take meanwhile), then every call.
      const back = results.filter((r) => r.at > marks.restarted!);
      expect(
        back.some((r) => r.code === status.OK && r.at < marks.restarted! + 1000),
        why,
      ).toBe(true);
      expect(
        back.filter((r) => r.at > marks.restarted! + 2000).every((r) => r.code === status.OK),
        why,
      ).toBe(true);
    });
  });
});
