// The Python SDK's purchase (sdk-python/examples/place_order.py) run by the
// pinned Python environment against a test stack with its gateway and purchase
// tokens required: through a real Envoy when there is one, straight to the
// services otherwise; and with PlaceOrder's first answer lost on the way, so
// that it asks again with the same request id.
import { execFile } from "node:child_process";
import { fileURLToPath } from "node:url";
import { OrderStatus, callUnary, userMetadata } from "@seckill/sdk";
import { afterAll, beforeAll, describe, expect, it } from "vitest";
import { startTcpProxy, type TcpProxy } from "../../tools/chaos/tcp-proxy.js";
import { ensurePythonSdk, PythonSdkUnavailableError } from "../../tools/python/sdk.js";
import { stackClusters, startEdge, type Edge } from "../../test/support/edge.js";
import { envoyForTests } from "../../test/support/envoy.js";
import { eventually, startTestStack, type TestStack } from "../../test/support/stack.js";

const EXAMPLE = fileURLToPath(new URL("../examples/place_order.py", import.meta.url));

/** The environment's python, installed on first use; under CI a missing one fails the file instead of skipping it. */
function pythonForTests(): string | undefined {
  try {
    return ensurePythonSdk((line) => console.warn(line)).python;
  } catch (error) {
    if (!(error instanceof PythonSdkUnavailableError) || process.env.CI === "true") throw error;
    console.warn(`${error.message}: the Python SDK's tests need it (npm run python:install); skipped`);
    return undefined;
  }
}

const python = pythonForTests();
const envoyBin = envoyForTests("the Python SDK's tests through the edge");

interface Run {
  code: number;
  stdout: string;
  stderr: string;
}

/** `python place_order.py <sale> <user> [...args]` with `env`; its JSON outcome when it printed one. */
function placeOrder(saleId: string, userId: string, args: string[], env: Record<string, string>): Promise<Run & { outcome?: Record<string, unknown> }> {
  return new Promise((resolve) => {
    execFile(python!, [EXAMPLE, saleId, userId, ...args], { env: { ...process.env, PYTHONDONTWRITEBYTECODE: "1", ...env }, timeout: 30_000 }, (error, stdout, stderr) => {
      const code = error ? (typeof error.code === "number" ? error.code : 1) : 0;
      resolve({ code, stdout, stderr, outcome: code === 0 ? JSON.parse(stdout) : undefined });
    });
  });
}

describe.skipIf(!python)("a purchase from Python", () => {
  let stack: TestStack;
  let edge: Edge | undefined;
  /** How the example reaches the stack: the edge when there is one, else the gateway and order service directly. */
  let via: { args: string[]; env: Record<string, string> };
  const direct = () => ({ args: ["--direct"], env: { GATEWAY_ADDR: stack.gateway!.address, ORDER_ADDR: stack.order.address } });

  beforeAll(async () => {
    stack = await startTestStack({ PURCHASE_TOKEN_REQUIRED: "true" }, { gateway: true });
    if (envoyBin) {
      edge = await startEdge(envoyBin, { clusters: stackClusters(stack) });
      via = { args: [], env: { EDGE_ADDR: edge.address } };
      // jwt_authn fetches the gateway's keys after start-up: until then the edge answers UNAUTHENTICATED.
      const probe = await stack.createSale({ totalStock: 1000 });
      let n = 0;
      await eventually(
        async () => (await placeOrder(probe.saleId, `probe-${++n}`, via.args, via.env)).outcome?.reason !== "UNAUTHENTICATED",
        20_000,
        "the edge to fetch the purchase token keys",
        200,
      );
    } else {
      via = direct();
    }
  }, 120_000);

  afterAll(async () => {
    await edge?.stop();
    await stack?.stop();
  });

  it(`wins the one unit ${envoyBin ? "through the edge" : "from the services"}, then a second buyer is refused SOLD_OUT`, { timeout: 60_000 }, async () => {
    const sale = await stack.createSale({ totalStock: 1 });
    const alice = await placeOrder(sale.saleId, "alice", via.args, via.env);
    expect(alice.stderr).toBe("");
    expect(alice.outcome).toEqual({ won: true, order_id: expect.stringMatching(new RegExp(`^${sale.saleId}-`)), status: "ORDER_STATUS_PENDING" });
    const orderId = alice.outcome!.order_id as string;
    await eventually(
      async () => (await callUnary(stack.orders, "getOrder", { orderId }, { metadata: userMetadata("alice") })).order?.status === OrderStatus.ORDER_STATUS_CREATED,
      15_000,
      "alice's order to be stored",
    );

    const bob = await placeOrder(sale.saleId, "bob", via.args, via.env);
    expect(bob).toMatchObject({ code: 0, stderr: "", outcome: { won: false, reason: "SOLD_OUT" } });
  });

  describe("when PlaceOrder's answer is lost", () => {
    let proxy: TcpProxy;
    beforeAll(async () => {
      proxy = await startTcpProxy({ target: stack.order.address });
    });
    afterAll(async () => {
      await proxy?.close();
    });

    it("asks again once with the same request id and retry=True, and wins the unit", { timeout: 60_000 }, async () => {
      const sale = await stack.createSale({ totalStock: 1 });
      // Nothing passes to the order service until the first PlaceOrder's 2 s deadline is over.
      proxy.blackhole();
      const run = placeOrder(sale.saleId, "carol", ["--direct"], { GATEWAY_ADDR: stack.gateway!.address, ORDER_ADDR: proxy.address });
      await eventually(() => proxy.connections() > 0, 20_000, "the example to dial the order service");
      await new Promise((resolve) => setTimeout(resolve, 3000));
      proxy.heal();

      const carol = await run;
      expect(carol.stderr).toMatch(/^WARNING:root:PlaceOrder req-\d+: DEADLINE_EXCEEDED; asking again with retry=True\n$/);
      expect(carol.outcome).toMatchObject({ won: true, order_id: expect.stringMatching(new RegExp(`^${sale.saleId}-`)) });
      // One unit sold, to carol, once: the next buyer finds it sold out.
      expect((await placeOrder(sale.saleId, "dave", direct().args, direct().env)).outcome).toEqual({ won: false, reason: "SOLD_OUT" });
    });
  });
});
