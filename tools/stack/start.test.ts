// `npm start` as a user runs it: a real process tree on real servers, in its
// own namespace, database and ports, checked over gRPC and stopped with Ctrl-C.
import { isAlive, stackPorts, startStack, waitForOutput, within, type Started } from "./start-process.js";
import { randomBytes } from "node:crypto";
import { fileURLToPath } from "node:url";
import * as grpc from "@grpc/grpc-js";
import * as protoLoader from "@grpc/proto-loader";
import { AccessServiceClient, OrderServiceClient, SaleServiceClient, callUnary, purchaseMetadata, userMetadata } from "@seckill/sdk";
import { afterAll, describe, expect, it } from "vitest";
import { readConfig } from "../../services/common/config.js";
import { dropDatabase } from "../../services/common/db.js";
import { cleanNamespace, refusal, saleRequest } from "../../test/support/stack.js";
import { checkHealth, isListening } from "./health.js";

const REFLECTION_PROTO = fileURLToPath(new URL("../../node_modules/@grpc/reflection/build/proto/grpc/reflection/v1/reflection.proto", import.meta.url));

interface ReflectionReply {
  list_services_response?: { service: { name: string }[] };
  error_response?: unknown;
}

/** Service names the server lists over grpc.reflection.v1. */
async function listServices(address: string): Promise<string[]> {
  const definition = protoLoader.loadSync(REFLECTION_PROTO, { keepCase: true });
  const pkg = grpc.loadPackageDefinition(definition) as unknown as { grpc: { reflection: { v1: { ServerReflection: grpc.ServiceClientConstructor } } } };
  const client = new pkg.grpc.reflection.v1.ServerReflection(address, grpc.credentials.createInsecure()) as unknown as grpc.Client & {
    ServerReflectionInfo(options: { deadline: number }): grpc.ClientDuplexStream<{ list_services: string }, ReflectionReply>;
  };
  try {
    return await new Promise<string[]>((resolve, reject) => {
      const call = client.ServerReflectionInfo({ deadline: Date.now() + 5000 });
      call.on("data", (reply: ReflectionReply) => {
        if (reply.list_services_response) resolve(reply.list_services_response.service.map((s) => s.name));
        else reject(new Error(`reflection error: ${JSON.stringify(reply.error_response)}`));
        call.end();
      });
      call.on("error", reject);
      call.write({ list_services: "" });
    });
  } finally {
    client.close();
  }
}

/**
 * PlaceOrder in both groups: refused without a purchase token, accepted with
 * one from the gateway's IssuePurchaseToken (the order services verify it
 * against the gateway's JWKS).
 */
async function expectPurchaseTokensRequired(addrs: { inventory: string; order: string; flashOrder: string; gateway: string }): Promise<void> {
  const insecure = grpc.credentials.createInsecure();
  const sales = new SaleServiceClient(addrs.inventory, insecure);
  const access = new AccessServiceClient(addrs.gateway, insecure);
  try {
    const { sale } = await callUnary(sales, "createSale", saleRequest({ totalStock: 2 }));
    const saleId = sale!.saleId;
    for (const [address, userId] of [
      [addrs.order, "start-alice"],
      [addrs.flashOrder, "start-bob"],
    ]) {
      const orders = new OrderServiceClient(address, insecure);
      try {
        const request = { saleId, quantity: 1, requestId: `req-${userId}`, purchaseToken: "", retry: false };
        const refused = await refusal(callUnary(orders, "placeOrder", request, { metadata: purchaseMetadata(userId, saleId) }));
        expect(refused).toMatchObject({ code: grpc.status.PERMISSION_DENIED, reason: "PURCHASE_TOKEN_INVALID" });
        expect(refused.message).toMatch(/a purchase token is required/);

        const { token } = await callUnary(access, "issuePurchaseToken", { saleId, challengeId: "", challengeAnswer: "" }, { metadata: userMetadata(userId) });
        const { order } = await callUnary(orders, "placeOrder", request, { metadata: purchaseMetadata(userId, saleId, token) });
        expect(order).toMatchObject({ saleId, userId, quantity: 1 });
      } finally {
        orders.close();
      }
    }
  } finally {
    sales.close();
    access.close();
  }
}

describe("npm start", () => {
  const id = randomBytes(4).toString("hex");
  const base = readConfig();
  const dbUrl = new URL(base.databaseUrl);
  dbUrl.pathname = `/seckill_start_${id}`;
  const env: Record<string, string> = { SECKILL_NAMESPACE: `t${id}`, DATABASE_URL: dbUrl.toString() };
  const config = readConfig({ ...process.env, ...env });
  let stack: Started | undefined;

  afterAll(async () => {
    if (stack && stack.child.exitCode === null) {
      stack.child.kill("SIGTERM");
      await within(stack.exit, 30_000, "stack exit").catch(() => stack!.child.kill("SIGKILL"));
    }
    await dropDatabase(config.databaseAdminUrl, dbUrl.pathname.slice(1));
    await cleanNamespace(config);
  }, 60_000);

  it("brings up both RPC groups, the writer and the gateway, serves health and reflection, requires purchase tokens, and stops cleanly on SIGINT", {
    timeout: 90_000,
  }, async () => {
    const { addrs, jwksPort, metricsPort, env: ports } = await stackPorts();
    stack = startStack({
      ...env,
      ...ports,
      FLASH_GROUP_MAX_IN_FLIGHT: "300",
    });

    await waitForOutput(stack, /Press Ctrl-C to stop/, 60_000);
    const out = stack.output();
    expect(out).toContain(`namespace "t${id}"`);
    expect(out).toContain(`grpcurl -plaintext ${addrs.order} list`);
    expect(out).toContain(`postgres://seckill:***@127.0.0.1:5432/seckill_start_${id}`);
    expect(out).not.toMatch(/seckill:seckill@/);
    expect(out).toMatch(/^\[inventory\] \{/m); // child lines carry their name
    const pids = [...out.matchAll(/\(pid (\d+)\)/g)].map((m) => Number(m[1]));
    expect(pids).toHaveLength(6);
    expect(out).toMatch(/^  edge +(not started: |127\.0\.0\.1:8080)/m);
    // The flash-sale group is the same services, labelled with their group.
    expect(out).toMatch(/^\[order-flash\] \{.*"group":"flash"/m);
    expect(out).toMatch(/^\[order\] \{.*"group":"default"/m);

    for (const addr of Object.values(addrs)) expect(await checkHealth(addr)).toBe("SERVING");
    expect(await checkHealth(addrs.inventory, "seckill.v1.SaleService")).toBe("SERVING");
    expect(await listServices(addrs.order)).toContain("seckill.v1.OrderService");
    expect(await listServices(addrs.flashOrder)).toContain("seckill.v1.OrderService");
    expect(await checkHealth(addrs.flashInventory, "seckill.v1.SaleService")).toBe("SERVING");
    expect(await listServices(addrs.gateway)).toEqual(expect.arrayContaining(["envoy.service.ratelimit.v3.RateLimitService", "seckill.v1.AccessService"]));
    const jwks = (await (await fetch(`http://127.0.0.1:${jwksPort}/.well-known/jwks.json`)).json()) as { keys: { kty: string; kid: string }[] };
    expect(jwks.keys.length).toBeGreaterThan(0);
    expect(jwks.keys[0].kty).toBe("EC");
    expect(await listServices(addrs.inventory)).toEqual(expect.arrayContaining(["seckill.v1.SaleService", "seckill.v1.InventoryService"]));
    expect(out).toMatch(/PlaceOrder requires a purchase token/);
    await expectPurchaseTokensRequired(addrs);
    // Each process serves its own metrics, labelled with its name and group.
    expect(out).toContain(`http://127.0.0.1:${metricsPort + 5}/metrics`);
    const flashOrderMetrics = await (await fetch(`http://127.0.0.1:${metricsPort + 5}/metrics`)).text();
    expect(flashOrderMetrics).toMatch(/^seckill_grpc_requests_total\{method="PlaceOrder",code="OK",service="order",group="flash"\} 1$/m);
    expect(flashOrderMetrics).toMatch(/^seckill_process_resident_memory_bytes\{service="order",group="flash"\} \d+/m);

    stack.child.kill("SIGINT");
    expect(await within(stack.exit, 20_000, "exit after SIGINT")).toBe(0);
    expect(pids.filter(isAlive)).toEqual([]);
    for (const addr of Object.values(addrs)) expect(await isListening(addr)).toBe(false);
  });

  it("exits with code 2 and names the variable when the configuration is bad", { timeout: 30_000 }, async () => {
    const bad = startStack({ ...env, CALL_DEADLINE_MS: "abc" });
    expect(await within(bad.exit, 20_000, "exit on bad config")).toBe(2);
    expect(bad.output()).toMatch(/CALL_DEADLINE_MS="abc"/);
  });
});
