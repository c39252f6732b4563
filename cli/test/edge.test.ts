// `seckill simulate` through a real Envoy (the generated edge configuration,
// test/support/edge.ts) in front of a test stack with its gateway (purchase
// tokens, RateLimitService) and purchase tokens required: the sale passes its
// checks and the summary counts the edge's refusals by kind. The refusals are
// also provoked one by one and read as the simulation reads them.
import { mkdtempSync, rmSync, writeFileSync } from "node:fs";
import { tmpdir } from "node:os";
import path from "node:path";
import { credentials, status, type ServiceError } from "@grpc/grpc-js";
import { AccessServiceClient, OrderServiceClient, SaleServiceClient, callUnary, edgeRefusalOf, purchaseMetadata, userMetadata } from "@seckill/sdk";
import { afterAll, beforeAll, describe, expect, it } from "vitest";
import { stackClusters, startEdge, type Edge } from "../../test/support/edge.js";
import { envoyForTests } from "../../test/support/envoy.js";
import { eventually, startTestStack, type TestStack } from "../../test/support/stack.js";
import type { Io } from "../src/context.js";
import { runCli } from "../src/program.js";
import type { Summary } from "../src/simulate/summary.js";

const envoyBin = envoyForTests("the CLI's edge tests");

/** Global limits low enough for a 300-user crowd from one address to meet them. */
const LIMITS = `domain: seckill
descriptors:
  - key: user_id
    value: limited-user
    rate_limit: { unit: minute, requests_per_unit: 1 }
  - key: user_id
    rate_limit: { unit: second, requests_per_unit: 20 }
  - key: remote_address
    rate_limit: { unit: second, requests_per_unit: 300 }
  - key: sale_id
    descriptors:
      - key: user_id
        rate_limit: { unit: minute, requests_per_unit: 10 }
`;

let dir: string;
let stack: TestStack;
let edge: Edge;
let clients: { orders: OrderServiceClient; sales: SaleServiceClient; access: AccessServiceClient };

const token = async (saleId: string, userId: string) =>
  (await callUnary(clients.access, "issuePurchaseToken", { saleId, challengeId: "", challengeAnswer: "" }, { metadata: userMetadata(userId) })).token;
const placeOrder = (saleId: string, userId: string, purchaseToken?: string) =>
  callUnary(
    clients.orders,
    "placeOrder",
    { saleId, quantity: 1, requestId: `r-${userId}-${Math.random()}`, purchaseToken: "", retry: false },
    { metadata: purchaseMetadata(userId, saleId, purchaseToken), deadlineMs: 3000 },
  );
/** Envoy's own counters of its refusals: the token bucket's, and the global limit's over every cluster. */
async function edgeCounters() {
  const clusters = ["order_flash", "order_default", "inventory_flash", "inventory_default", "gateway"];
  const overLimit = await Promise.all(clusters.map((c) => edge.stat(`cluster.${c}.ratelimit.over_limit`)));
  return {
    tokenBucket: await edge.stat("place_order.http_local_rate_limit.rate_limited"),
    globalLimit: overLimit.reduce((a, b) => a + b, 0),
    gatewayOverLimit: overLimit[clusters.indexOf("gateway")],
  };
}
const failure = (call: Promise<unknown>) =>
  call.then(
    () => undefined,
    (e: ServiceError) => e,
  );

describe.skipIf(!envoyBin)("seckill simulate through a real edge", () => {
  beforeAll(async () => {
    dir = mkdtempSync(path.join(tmpdir(), "seckill-cli-edge-"));
    const limits = path.join(dir, "ratelimit.yaml");
    writeFileSync(limits, LIMITS);
    stack = await startTestStack({ PURCHASE_TOKEN_REQUIRED: "true", RATE_LIMIT_CONFIG: limits }, { gateway: true });
    edge = await startEdge(envoyBin!, {
      clusters: stackClusters(stack),
      // The global limit waits for the gateway's answer: with the shipped 20 ms it fails open under this
      // crowd on a small machine (Envoy's ratelimit.failure_mode_allowed), and nothing would be refused.
      limits: { placeOrderBurst: 10, placeOrderPerSecond: 10, rateLimitTimeoutMs: 2000 },
    });
    clients = {
      orders: new OrderServiceClient(edge.address, credentials.createInsecure()),
      sales: new SaleServiceClient(edge.address, credentials.createInsecure()),
      access: new AccessServiceClient(edge.address, credentials.createInsecure()),
    };
    // jwt_authn fetches the gateway's keys after start-up: wait until a valid token passes.
    const probe = await stack.createSale({ totalStock: 1000 });
    let n = 0;
    await eventually(
      async () => {
        const user = `probe-${++n}`;
        const e = await failure(placeOrder(probe.saleId, user, await token(probe.saleId, user)));
        return e?.code !== status.UNAUTHENTICATED;
      },
      20_000,
      "the edge to fetch the purchase token keys",
    );
    // A fresh second for the token bucket and the per-address window.
    await new Promise((r) => setTimeout(r, 1500));
  });

  afterAll(async () => {
    for (const c of Object.values(clients ?? {})) c.close();
    await edge?.stop();
    await stack?.stop();
    if (dir) rmSync(dir, { recursive: true, force: true });
  });

  it("passes its checks, and counts the edge's refusals by kind and by call", { timeout: 60_000 }, async () => {
    const out: string[] = [];
    const err: string[] = [];
    const io: Io = { out: (t) => out.push(t), err: (t) => err.push(t), stderr: { write: (c: string) => err.push(c), isTTY: false } };
    const closed = "127.0.0.1:1";
    const before = await edgeCounters();
    // --gateway is not used through the edge: a closed port does not matter.
    const code = await runCli(
      // A long deadline: on a busy machine an answer lost to a 2 s deadline leaves a click unanswered, and the check fails.
      [
        "--inventory",
        stack.inventory.address,
        "--order",
        stack.order.address,
        "--gateway",
        closed,
        "--edge",
        edge.address,
        "--deadline",
        "5000",
        "simulate",
        "--users",
        "300",
        "--stock",
        "20",
        "--starts-in",
        "1s",
        "--ramp",
        "500ms",
        "--seed",
        "7",
        "--json",
      ],
      io,
    );
    const summary = JSON.parse(out.join("\n")) as Summary;
    expect(err.join("")).toContain(`buyers go through the edge at ${edge.address}`);
    expect(summary.checks.filter((c) => !c.ok)).toEqual([]);
    expect(code).toBe(0);
    expect(summary.edge.route).toBe("edge");
    expect(summary.edge.address).toBe(edge.address);
    // The token bucket (10 a second) refused purchases whatever the machine's speed; the per-address window
    // (300 a second) refuses calls when the crowd is fast enough to reach it. Tokens were all valid.
    expect(summary.edge.byKind.tokenBucket).toBeGreaterThan(0);
    expect(summary.edge.byKind.tokenCheck).toBe(0);
    expect(summary.edge.byCall.PlaceOrder).toBeGreaterThanOrEqual(summary.edge.byKind.tokenBucket);
    expect(summary.edge.refused).toBe(Object.values(summary.edge.byKind).reduce((a, b) => a + b, 0));
    // Exactly the refusals Envoy counted itself during the run.
    const after = await edgeCounters();
    expect(summary.edge.byKind.tokenBucket).toBe(after.tokenBucket - before.tokenBucket);
    expect(summary.edge.byKind.globalLimit).toBe(after.globalLimit - before.globalLimit);
    expect(summary.edge.byCall.IssuePurchaseToken).toBe(after.gatewayOverLimit - before.gatewayOverLimit);
    // Only the edge's answers and the services' own: no PlaceOrder lost its answer.
    expect(summary.gaveUp).toBe(0);
    expect(summary.unitsWon).toBeGreaterThan(0);
    expect(summary.postgres.unitsSold).toBe(summary.unitsWon);
    expect(summary.watch.created).toBe(summary.successes);
  });

  it("reads each refusal of the real edge as its kind", { timeout: 30_000 }, async () => {
    const sale = await stack.createSale({ totalStock: 1000 });
    // The token bucket runs before the token check: let the last test's purchases refill it (10 a second).
    await new Promise((resolve) => setTimeout(resolve, 1500));
    // Token check: no token, and a token with a broken signature.
    expect(edgeRefusalOf((await failure(placeOrder(sale.saleId, "nobody")))!)).toBe("tokenCheck");
    const valid = await token(sale.saleId, "tess");
    expect(edgeRefusalOf((await failure(placeOrder(sale.saleId, "tess", `${valid.slice(0, -4)}AAAA`)))!)).toBe("tokenCheck");
    // A service's own refusal through the edge: the token of another user.
    const other = await failure(placeOrder(sale.saleId, "uma", valid));
    expect(other?.code).toBe(status.PERMISSION_DENIED);
    expect(edgeRefusalOf(other!)).toBeUndefined();
    // Global limit: limited-user may make one call a minute.
    await callUnary(clients.sales, "getSale", { saleId: sale.saleId }, { metadata: userMetadata("limited-user") }).catch(() => undefined);
    const limited = await failure(callUnary(clients.sales, "getSale", { saleId: sale.saleId }, { metadata: userMetadata("limited-user") }));
    expect(limited?.code).toBe(status.RESOURCE_EXHAUSTED);
    expect(edgeRefusalOf(limited!)).toBe("globalLimit");
    // Token bucket: more purchases at once than its burst.
    await new Promise((r) => setTimeout(r, 1100));
    const users = Array.from({ length: 20 }, (_, i) => `tb-${i}`);
    const tokens = await Promise.all(users.map((u) => token(sale.saleId, u)));
    const answers = await Promise.all(users.map((u, i) => failure(placeOrder(sale.saleId, u, tokens[i]))));
    const kinds = answers.filter((e) => e !== undefined).map((e) => edgeRefusalOf(e!));
    expect(kinds.length).toBeGreaterThan(0);
    expect(new Set(kinds)).toEqual(new Set(["tokenBucket"]));
  });

  it("reads a connection the edge closes, and a service it cannot reach, as connection refusals", { timeout: 30_000 }, async () => {
    // A second edge: one connection at most, every upstream a closed port.
    const small = await startEdge(envoyBin!, { clusters: {}, limits: { maxConnections: 1 } });
    const channels = Array.from({ length: 4 }, () => new SaleServiceClient(small.address, credentials.createInsecure(), { "grpc.use_local_subchannel_pool": 1 }));
    try {
      const answers = await Promise.all(channels.map((c) => failure(callUnary(c, "getSaleStatus", { saleId: "00000000000000000000000000" }, { deadlineMs: 3000 }))));
      const details = answers.map((e) => e?.details ?? "");
      expect(details.some((d) => d.startsWith("upstream connect error"))).toBe(true);
      expect(details.some((d) => d.startsWith("No connection established"))).toBe(true);
      expect(answers.map((e) => e && edgeRefusalOf(e))).toEqual(["connection", "connection", "connection", "connection"]);
    } finally {
      for (const c of channels) c.close();
      await small.stop();
    }
  });
});
