import { existsSync, readFileSync, writeFileSync } from "node:fs";
import path from "node:path";
import { afterAll, beforeAll, describe, expect, it } from "vitest";
import { AccessServiceClient, OrderServiceClient, issuePurchaseToken, placeOrder } from "@seckill/sdk";
import { credentials } from "@grpc/grpc-js";
import { stackClusters, startEdge, type Edge } from "../../test/support/edge.js";
import { envoyForTests } from "../../test/support/envoy.js";
import { type PackedInstall, REPO, packAndInstall, run } from "../../test/support/packed.js";
import { eventually, startTestStack, type TestStack } from "../../test/support/stack.js";

const envoyBin = envoyForTests("the packed SDK's purchase through the edge");
const version = (name: string) => (JSON.parse(readFileSync(path.join(REPO, "node_modules", name, "package.json"), "utf8")) as { version: string }).version;

const node = (file: string, ...args: string[]) => run(process.execPath, [file, ...args], project, 30_000);

/** A BFF's purchase with the installed SDK: a token, PlaceOrder, then the order watched until it is stored. */
const BFF = `
import { credentials } from "@grpc/grpc-js";
import { AccessServiceClient, OrderServiceClient, OrderStatus, clientOptions, issuePurchaseToken, placeOrder, watchOrder } from "@seckill/sdk";

const [gateway, order, saleId, userId] = process.argv.slice(2);
const access = new AccessServiceClient(gateway, credentials.createInsecure(), clientOptions());
const orders = new OrderServiceClient(order, credentials.createInsecure(), clientOptions());
try {
  const issued = await issuePurchaseToken(access, { saleId, userId });
  if (issued.kind !== "issued") throw new Error("no token: " + JSON.stringify(issued));
  const placed = await placeOrder(orders, { saleId, userId, purchaseToken: issued.token });
  if (placed.kind !== "won") throw new Error("not won: " + JSON.stringify(placed));
  let status = placed.order.status;
  for await (const update of watchOrder(orders, placed.order.orderId, { userId, signal: AbortSignal.timeout(15_000) })) {
    status = update.status;
    if (status !== OrderStatus.ORDER_STATUS_PENDING) break;
  }
  console.log(JSON.stringify({ orderId: placed.order.orderId, status: OrderStatus[status] }));
} finally {
  access.close();
  orders.close();
}
`;

/** CommonJS: require() of the ES module package (Node >= 20.19), with the project's own grpc-js credentials. */
const CJS = `
const { credentials } = require("@grpc/grpc-js");
const { SaleServiceClient, callUnary, clientOptions } = require("@seckill/sdk");
const sales = new SaleServiceClient(process.argv[2], credentials.createInsecure(), clientOptions());
callUnary(sales, "getSaleStatus", { saleId: process.argv[3] })
  .then((status) => console.log(JSON.stringify({ saleId: status.saleId, totalStock: status.totalStock })))
  .finally(() => sales.close());
`;

/** A TypeScript BFF, checked against the packed declarations (the expected errors prove they are not any). */
const CONSUMER = `
import { credentials } from "@grpc/grpc-js";
import { OrderServiceClient, OrderStatus, Reason, placeOrder, reasonName, type PlaceOrderResult } from "@seckill/sdk";

export async function click(edge: string, saleId: string, userId: string, purchaseToken: string): Promise<string> {
  const orders = new OrderServiceClient(edge, credentials.createInsecure());
  const result: PlaceOrderResult = await placeOrder(orders, { saleId, userId, purchaseToken, quantity: 1 });
  switch (result.kind) {
    case "won":
      return result.order.status === OrderStatus.ORDER_STATUS_PENDING ? result.order.orderId : "stored";
    case "refused":
      return result.reason ?? result.edge ?? String(result.code);
    case "gaveUp":
      return result.mayHaveBeenAccepted ? "ask again" : "try again";
  }
}

// @ts-expect-error: PlaceOrder needs the buyer and the purchase token
placeOrder(new OrderServiceClient("x", credentials.createInsecure()), { saleId: "s" });
// @ts-expect-error: a reason is an enum value, not a string
reasonName("SOLD_OUT");
export const soldOut: string | undefined = reasonName(Reason.REASON_SOLD_OUT);
`;

let packed: PackedInstall;
let project: string;
let installed: string;

beforeAll(async () => {
  packed = await packAndInstall("sdk", { name: "bff", type: "module" }, [`@grpc/grpc-js@${version("@grpc/grpc-js")}`, `@types/node@${version("@types/node")}`]);
  project = packed.project;
  installed = path.join(project, "node_modules/@seckill/sdk");
  writeFileSync(path.join(project, "bff.mjs"), BFF);
  writeFileSync(path.join(project, "status.cjs"), CJS);
  writeFileSync(path.join(project, "consumer.ts"), CONSUMER);
  writeFileSync(
    path.join(project, "tsconfig.json"),
    JSON.stringify({
      compilerOptions: { module: "nodenext", moduleResolution: "nodenext", target: "es2022", strict: true, noEmit: true, types: ["node"] },
      files: ["consumer.ts"],
    }),
  );
}, 300_000);

afterAll(() => packed?.remove());

describe("the packed SDK", () => {
  it("holds JavaScript and declarations, no TypeScript source, and uses the project's one @grpc/grpc-js", () => {
    expect(existsSync(path.join(installed, "dist/index.js"))).toBe(true);
    expect(existsSync(path.join(installed, "dist/index.d.ts"))).toBe(true);
    expect(existsSync(path.join(installed, "src"))).toBe(false);
    expect(existsSync(path.join(installed, "node_modules/@grpc/grpc-js"))).toBe(false);
    const manifest = JSON.parse(readFileSync(path.join(installed, "package.json"), "utf8"));
    expect(manifest.peerDependencies).toHaveProperty("@grpc/grpc-js");
    expect(manifest.dependencies).not.toHaveProperty("@grpc/grpc-js");
  });

  it("loads with require() from CommonJS on plain node", async () => {
    const { code, stdout, stderr } = await run(
      process.execPath,
      ["-e", "const sdk = require('@seckill/sdk'); console.log(typeof sdk.placeOrder, typeof sdk.OrderServiceClient)"],
      project,
      30_000,
    );
    expect(stderr.replace(/^.*ExperimentalWarning.*\n|^\(Use `node --trace-warnings.*\n/gm, "")).toBe("");
    expect(code).toBe(0);
    expect(stdout.trim()).toBe("function function");
  });

  it("type-checks a TypeScript consumer against the packed declarations", async () => {
    const tsc = path.join(REPO, "node_modules/typescript/bin/tsc");
    const { code, stdout } = await run(process.execPath, [tsc, "-p", "tsconfig.json"], project, 120_000);
    expect(stdout).toBe("");
    expect(code).toBe(0);
  });
});

describe("the packed SDK against a stack", () => {
  let stack: TestStack;
  let edge: Edge | undefined;
  /** Where the BFF dials: the edge for both clients, or the gateway and the order service. */
  let via: { gateway: string; order: string; sales: string };

  beforeAll(async () => {
    stack = await startTestStack({ PURCHASE_TOKEN_REQUIRED: "true" }, { gateway: true });
    if (!envoyBin) {
      via = { gateway: stack.gateway!.address, order: stack.order.address, sales: stack.inventory.address };
      return;
    }
    edge = await startEdge(envoyBin, { clusters: stackClusters(stack) });
    via = { gateway: edge.address, order: edge.address, sales: edge.address };
    // jwt_authn fetches the gateway's keys after start-up: until then the edge refuses every token.
    const access = new AccessServiceClient(edge.address, credentials.createInsecure());
    const orders = new OrderServiceClient(edge.address, credentials.createInsecure());
    const probe = await stack.createSale({ totalStock: 1000 });
    let n = 0;
    try {
      await eventually(
        async () => {
          const userId = `probe-${++n}`;
          const issued = await issuePurchaseToken(access, { saleId: probe.saleId, userId });
          if (issued.kind !== "issued") return false;
          return (await placeOrder(orders, { saleId: probe.saleId, userId, purchaseToken: issued.token })).kind === "won";
        },
        20_000,
        "the edge to accept the gateway's purchase tokens",
      );
    } finally {
      access.close();
      orders.close();
    }
  }, 120_000);

  afterAll(async () => {
    await edge?.stop();
    await stack?.stop();
  });

  it("buys and watches the order until it is stored, from an ES module on plain node", async () => {
    const sale = await stack.createSale({ totalStock: 1 });
    const { code, stdout, stderr } = await node("bff.mjs", via.gateway, via.order, sale.saleId, "alice");
    expect(stderr).toBe("");
    expect(code).toBe(0);
    const bought = JSON.parse(stdout) as { orderId: string; status: string };
    expect(bought.status).toBe("ORDER_STATUS_CREATED");
    expect(bought.orderId.startsWith(sale.saleId)).toBe(true);
  });

  it("calls the backend from CommonJS with the project's own grpc-js credentials", async () => {
    const sale = await stack.createSale({ totalStock: 7 });
    const { code, stdout } = await node("status.cjs", via.sales, sale.saleId);
    expect(code).toBe(0);
    expect(JSON.parse(stdout)).toEqual({ saleId: sale.saleId, totalStock: 7 });
  });
});
