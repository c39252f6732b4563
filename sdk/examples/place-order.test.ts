// The SDK example as a BFF runs it by default: through a real Envoy (the
// generated edge configuration, test/support/edge.ts) in front of a test stack
// with its gateway and purchase tokens required; and run as a program, with the
// message it prints when the edge is not there. (test/docs.test.ts runs the
// same example against the services directly.)
import { execFile } from "node:child_process";
import { fileURLToPath } from "node:url";
import { OrderStatus } from "@seckill/sdk";
import { afterAll, beforeAll, describe, expect, it } from "vitest";
import { stackClusters, startEdge, type Edge } from "../../test/support/edge.js";
import { envoyForTests } from "../../test/support/envoy.js";
import { eventually, startTestStack, type TestStack } from "../../test/support/stack.js";
import { buy, connectClients, EDGE_ADDRESS, type Clients } from "./place-order.js";
import { LOCAL_TOPOLOGY } from "../../envoy/src/topology.js";
import { freePort } from "../../tools/stack/ports.js";

const REPO = fileURLToPath(new URL("../..", import.meta.url));
const EXAMPLE = fileURLToPath(new URL("./place-order.ts", import.meta.url));
const envoyBin = envoyForTests("the SDK example's edge tests");

/** Runs the example as a program: `tsx sdk/examples/place-order.ts ...args` with `env`. */
function runExample(args: string[], env: Record<string, string>): Promise<{ code: number; stdout: string; stderr: string }> {
  return new Promise((resolve) => {
    execFile(process.execPath, ["--import", "tsx", EXAMPLE, ...args], { cwd: REPO, env: { ...process.env, ...env }, timeout: 30_000 }, (error, stdout, stderr) =>
      resolve({ code: error ? (typeof error.code === "number" ? error.code : 1) : 0, stdout, stderr }),
    );
  });
}

it("dials npm start's edge by default", () => {
  expect(EDGE_ADDRESS).toBe(`${LOCAL_TOPOLOGY.listener.host}:${LOCAL_TOPOLOGY.listener.port}`);
});

it("tells how to go direct when the edge is not there", { timeout: 30_000 }, async () => {
  const port = await freePort();
  const { code, stderr } = await runExample(["01SALE", "alice"], { EDGE_ADDR: `127.0.0.1:${port}` });
  expect(code).toBe(1);
  expect(stderr.trim()).toBe(
    `cannot reach the edge (Envoy) at 127.0.0.1:${port}: is npm start running, with Envoy (npm run envoy:install)? To call the services directly: --direct`,
  );
});

describe.skipIf(!envoyBin)("the SDK example through a real edge", () => {
  let stack: TestStack;
  let edge: Edge;
  let clients: Clients;

  beforeAll(async () => {
    stack = await startTestStack({ PURCHASE_TOKEN_REQUIRED: "true" }, { gateway: true });
    edge = await startEdge(envoyBin!, {
      clusters: stackClusters(stack),
    });
    clients = connectClients({ edge: edge.address });
    // jwt_authn fetches the gateway's keys after start-up: until then the edge answers UNAUTHENTICATED.
    const probe = await stack.createSale({ totalStock: 1000 });
    let n = 0;
    await eventually(
      async () => (await buy(clients, probe.saleId, `probe-${++n}`, `probe-${n}`)).reason !== "UNAUTHENTICATED",
      20_000,
      "the edge to fetch the purchase token keys",
    );
  });

  afterAll(async () => {
    clients?.access.close();
    clients?.orders.close();
    await edge?.stop();
    await stack?.stop();
  });

  it("wins the one unit through the edge, then reports SOLD_OUT to the next buyer", async () => {
    const sale = await stack.createSale({ totalStock: 1 });
    const first = await buy(clients, sale.saleId, "alice", "req-1");
    expect(first).toMatchObject({ won: true, status: OrderStatus.ORDER_STATUS_CREATED });
    expect(await buy(clients, sale.saleId, "bob", "req-2")).toEqual({ won: false, reason: "SOLD_OUT" });
  });

  it("buys through the edge when run as a program", { timeout: 30_000 }, async () => {
    const sale = await stack.createSale({ totalStock: 1 });
    const { code, stdout, stderr } = await runExample([sale.saleId, "carol"], { EDGE_ADDR: edge.address });
    expect(stderr).toBe("");
    expect(code).toBe(0);
    expect(stdout).toMatch(/won: true/);
    expect(stdout).toContain(sale.saleId);
  });
});
