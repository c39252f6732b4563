// A real Envoy in front of a test stack (test/support/edge.ts), with small
// limits.
//
// To tell the groups apart, the flash-sale order cluster and the default-group
// inventory cluster point at the stack, the other two at a closed port: a call
// routed to the right group is answered, one routed to the wrong group gets
// UNAVAILABLE. Purchase tokens are signed here and published by a small JWKS
// server of this file, as the gateway does.

import { generateKeyPairSync, randomBytes, type KeyObject } from "node:crypto";
import { createServer as createHttpServer, type Server } from "node:http";
import { connect as connectHttp2 } from "node:http2";
import { credentials, Metadata, status } from "@grpc/grpc-js";
import { afterAll, beforeAll, describe, expect, it } from "vitest";
import { callUnary, InventoryServiceClient, OrderServiceClient, purchaseMetadata, SaleServiceClient, SalePhase } from "@seckill/sdk";
import { signJwt } from "../gateway/access/jwt.js";
import { JWKS_PATH, TOKEN_AUDIENCE, TOKEN_ISSUER } from "./src/filters.js";
import { loopback, startEdge, type Edge as RunningEnvoy } from "../test/support/edge.js";
import { envoyForTests } from "../test/support/envoy.js";
import { eventually, refusal, startTestStack, type TestStack } from "../test/support/stack.js";

const envoyBin = envoyForTests("the live edge tests");

const MAX_CONNECTIONS = 8;
// The bucket comes before the token check: room for the token tests' refused calls too.
const PLACE_ORDER_BURST = 12;
const KID = "edge-live-1";

/** A purchase token as the gateway issues it: ES256 JWS, signature in IEEE P1363 form. */
function purchaseToken(privateKey: KeyObject, claims: { sub: string; sale: string; expSeconds?: number }, kid = KID): string {
  const now = Math.floor(Date.now() / 1000);
  return signJwt(
    { kid, privateKey },
    {
      iss: TOKEN_ISSUER,
      aud: TOKEN_AUDIENCE,
      sub: claims.sub,
      sale: claims.sale,
      iat: now,
      nbf: now,
      exp: now + (claims.expSeconds ?? 60),
      jti: randomBytes(12).toString("hex"),
    },
  );
}

interface Edge {
  stack: TestStack;
  envoy: RunningEnvoy;
  jwks: Server;
  keys: { privateKey: KeyObject };
  otherKey: KeyObject;
  orders: OrderServiceClient;
  sales: SaleServiceClient;
  inventory: InventoryServiceClient;
  listenPort: number;
}

let edge: Edge;

async function startLiveEdge(bin: string): Promise<Edge> {
  const keys = generateKeyPairSync("ec", { namedCurve: "P-256" });
  const otherKey = generateKeyPairSync("ec", { namedCurve: "P-256" }).privateKey;
  const jwk = { ...keys.publicKey.export({ format: "jwk" }), kid: KID, alg: "ES256", use: "sig" };
  const jwks = createHttpServer((req, res) => {
    if (req.url !== JWKS_PATH) return void res.writeHead(404).end();
    res.writeHead(200, { "content-type": "application/json" }).end(JSON.stringify({ keys: [jwk] }));
  });
  await new Promise<void>((resolve) => jwks.listen(0, "127.0.0.1", resolve));
  const jwksPort = (jwks.address() as { port: number }).port;

  const stack = await startTestStack({ PURCHASE_TOKEN_JWKS_URL: `http://127.0.0.1:${jwksPort}${JWKS_PATH}` });
  // No rate limit service (gateway): the global limit fails open.
  const envoy = await startEdge(bin, {
    clusters: { order_flash: loopback(stack.order.port), inventory_default: loopback(stack.inventory.port), gateway_jwks: loopback(jwksPort) },
    limits: { maxConnections: MAX_CONNECTIONS, placeOrderBurst: PLACE_ORDER_BURST, placeOrderPerSecond: 1 },
  });
  const address = envoy.address;
  const e: Edge = {
    stack,
    envoy,
    jwks,
    keys,
    otherKey,
    listenPort: envoy.port,
    orders: new OrderServiceClient(address, credentials.createInsecure()),
    sales: new SaleServiceClient(address, credentials.createInsecure()),
    inventory: new InventoryServiceClient(address, credentials.createInsecure()),
  };
  const probe = await stack.createSale();
  await eventually(
    async () =>
      callUnary(e.sales, "getSale", { saleId: probe.saleId }, { deadlineMs: 1000 }).then(
        () => true,
        () => false,
      ),
    20_000,
    "envoy to route GetSale",
  );
  // jwt_authn fetches the JWKS at start-up (async_fetch): wait until a valid token passes.
  let probes = 0;
  await eventually(
    async () => {
      const user = `probe-${++probes}`;
      const token = purchaseToken(keys.privateKey, { sub: user, sale: probe.saleId });
      return placeOrderVia(e.orders, probe.saleId, user, token).then(
        () => true,
        (err: { code: number }) => err.code !== status.UNAUTHENTICATED,
      );
    },
    20_000,
    "envoy to fetch the purchase token keys",
  );
  return e;
}

function placeOrderVia(orders: OrderServiceClient, saleId: string, userId: string, token?: string) {
  return callUnary(
    orders,
    "placeOrder",
    { saleId, quantity: 1, requestId: `r-${randomBytes(6).toString("hex")}`, purchaseToken: token ?? "", retry: false },
    { metadata: purchaseMetadata(userId, saleId, token), deadlineMs: 5000 },
  );
}

const placeOrder = (saleId: string, userId: string, token?: string) => placeOrderVia(edge.orders, saleId, userId, token);

/** Opens an HTTP/2 connection to the edge: "open" once Envoy sent its SETTINGS, "closed" when it hung up first. */
function openConnection(port: number): Promise<{ outcome: "open" | "closed"; close: () => void }> {
  return new Promise((resolve) => {
    const session = connectHttp2(`http://127.0.0.1:${port}`);
    const close = () => session.destroy();
    session.once("remoteSettings", () => resolve({ outcome: "open", close }));
    session.once("close", () => resolve({ outcome: "closed", close }));
    session.on("error", () => undefined);
  });
}

const cases: [string, () => Promise<void>][] = [
  [
    "routes the purchase to the flash-sale group and the other methods to their groups",
    async () => {
      const sale = await edge.stack.createSale({ totalStock: 50 });
      const placed = await placeOrder(sale.saleId, "alice", purchaseToken(edge.keys.privateKey, { sub: "alice", sale: sale.saleId }));
      expect(placed.order?.saleId).toBe(sale.saleId); // order_flash is the stack
      await callUnary(edge.sales, "getSale", { saleId: sale.saleId }); // inventory_default is the stack
      const user = new Metadata();
      user.set("x-user-id", "alice");
      // GetOrder goes to order_default, GetSaleStatus to inventory_flash: both closed here.
      expect((await refusal(callUnary(edge.orders, "getOrder", { orderId: placed.order!.orderId }, { metadata: user }))).code).toBe(status.UNAVAILABLE);
      expect((await refusal(callUnary(edge.sales, "getSaleStatus", { saleId: sale.saleId }))).code).toBe(status.UNAVAILABLE);
    },
  ],

  [
    "serves GetSale as JSON (GET /v1/sales/{sale_id}) and nothing else of SaleService",
    async () => {
      const sale = await edge.stack.createSale();
      const base = `http://127.0.0.1:${edge.listenPort}`;
      const got = await fetch(`${base}/v1/sales/${sale.saleId}`);
      expect(got.status).toBe(200);
      expect(((await got.json()) as { sale: { saleId: string } }).sale.saleId).toBe(sale.saleId);
      // GetSaleStatus is transcoded too, and routed to the flash-sale inventory: closed here.
      expect((await fetch(`${base}/v1/sales/${sale.saleId}/status`)).status).toBeGreaterThanOrEqual(500);
      expect((await fetch(`${base}/v1/sales/${sale.saleId}:close`, { method: "POST" })).status).toBe(404);
    },
  ],

  [
    "refuses a purchase without a valid purchase token (UNAUTHENTICATED)",
    async () => {
      const sale = await edge.stack.createSale();
      const refused = async (token?: string) => (await refusal(placeOrder(sale.saleId, "bob", token))).code;
      expect(await refused(undefined)).toBe(status.UNAUTHENTICATED);
      expect(await refused("not-a-token")).toBe(status.UNAUTHENTICATED);
      expect(await refused(purchaseToken(edge.otherKey, { sub: "bob", sale: sale.saleId }))).toBe(status.UNAUTHENTICATED);
      expect(await refused(purchaseToken(edge.keys.privateKey, { sub: "bob", sale: sale.saleId, expSeconds: -120 }))).toBe(status.UNAUTHENTICATED);
    },
  ],

  [
    "answers InventoryService and the operator methods with UNIMPLEMENTED",
    async () => {
      const sale = await edge.stack.createSale();
      expect((await refusal(callUnary(edge.inventory, "getStock", { saleId: sale.saleId }))).code).toBe(status.UNIMPLEMENTED);
      expect((await refusal(callUnary(edge.sales, "closeSale", { saleId: sale.saleId }))).code).toBe(status.UNIMPLEMENTED);
      // The sale is still open: the call never reached the inventory service.
      expect((await callUnary(edge.stack.sales, "getSaleStatus", { saleId: sale.saleId })).phase).toBe(SalePhase.SALE_PHASE_OPEN);
    },
  ],

  [
    "limits PlaceOrder to its token bucket, answering RESOURCE_EXHAUSTED",
    async () => {
      const sale = await edge.stack.createSale({ totalStock: 100 });
      const attempts = 4 * PLACE_ORDER_BURST;
      const results = await Promise.allSettled(
        Array.from({ length: attempts }, (_, i) => {
          const user = `tps-${i}`;
          return placeOrder(sale.saleId, user, purchaseToken(edge.keys.privateKey, { sub: user, sale: sale.saleId }));
        }),
      );
      const codes = results.map((r) => (r.status === "fulfilled" ? status.OK : (r.reason as { code: number }).code));
      const limited = codes.filter((c) => c === status.RESOURCE_EXHAUSTED).length;
      expect(limited).toBeGreaterThan(0);
      expect(codes.filter((c) => c !== status.OK && c !== status.RESOURCE_EXHAUSTED)).toEqual([]);
    },
  ],

  [
    "closes connections beyond the listener's connection limit",
    async () => {
      const opened: Awaited<ReturnType<typeof openConnection>>[] = [];
      try {
        // The clients of this file hold connections too: a refusal must come by the limit.
        for (let i = 0; i <= MAX_CONNECTIONS; i++) opened.push(await openConnection(edge.listenPort));
        expect(opened.some((c) => c.outcome === "closed")).toBe(true);
        expect(opened.filter((c) => c.outcome === "open").length).toBeLessThanOrEqual(MAX_CONNECTIONS);
      } finally {
        for (const c of opened) c.close();
      }
      // Once they are gone, a new connection is accepted again.
      await eventually(
        async () => {
          const c = await openConnection(edge.listenPort);
          c.close();
          return c.outcome === "open";
        },
        10_000,
        "a connection under the limit",
      );
    },
  ],
];

describe("the edge with a real Envoy", () => {
  beforeAll(async () => {
    if (envoyBin) edge = await startLiveEdge(envoyBin);
  });

  afterAll(async () => {
    if (!edge) return;
    edge.orders.close();
    edge.sales.close();
    edge.inventory.close();
    await edge.envoy.stop();
    await new Promise((resolve) => edge.jwks.close(resolve));
    await edge.stack.stop();
  });

  for (const [name, run] of cases) it.skipIf(!envoyBin)(name, run);
});
