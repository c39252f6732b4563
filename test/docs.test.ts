// The README must match the code: its SDK example is the file the tests run,
// and its configuration table names every variable the services read.
import { readFileSync } from "node:fs";
import { credentials } from "@grpc/grpc-js";
import { AccessServiceClient, OrderServiceClient, OrderStatus, callUnary } from "@seckill/sdk";
import { afterAll, beforeAll, describe, expect, it } from "vitest";
import { buy, type Clients } from "../sdk/examples/place-order.js";
import { saleRequest, startTestStack, type TestStack } from "./support/stack.js";

const read = (path: string) => readFileSync(new URL(`../${path}`, import.meta.url), "utf8");

describe("README", () => {
  it("shows the SDK example exactly as it is in sdk/examples/place-order.ts", () => {
    expect(read("README.md")).toContain(read("sdk/examples/place-order.ts").trim());
  });

  it("documents every configuration variable with its default", () => {
    const source = read("services/common/config.ts");
    const variables = [...source.matchAll(/(?:str|int)\("([A-Z_]+)"/g)].map((m) => m[1]);
    expect(variables.length).toBeGreaterThan(15);
    const readme = read("README.md");
    for (const name of variables) expect(readme).toMatch(new RegExp(`\\| \`${name}\` \\| \``));
  });
});

describe("the SDK example", () => {
  let stack: TestStack;
  let clients: Clients;
  beforeAll(async () => {
    // Tokens required, as under npm start: the example must get one from the gateway.
    stack = await startTestStack({ PURCHASE_TOKEN_REQUIRED: "true" }, { gateway: true });
    clients = {
      access: new AccessServiceClient(stack.gateway!.address, credentials.createInsecure()),
      orders: new OrderServiceClient(stack.order.address, credentials.createInsecure()),
    };
  });
  afterAll(async () => {
    clients?.access.close();
    clients?.orders.close();
    await stack?.stop();
  });

  it("wins the one unit and watches the order until it is stored, then reports SOLD_OUT to the next buyer", async () => {
    const sale = await stack.createSale({ totalStock: 1 });
    const first = await buy(clients, sale.saleId, "alice", "req-1");
    expect(first).toMatchObject({ won: true, status: OrderStatus.ORDER_STATUS_CREATED });
    expect(first.orderId?.startsWith(sale.saleId)).toBe(true);
    const second = await buy(clients, sale.saleId, "bob", "req-2");
    expect(second).toEqual({ won: false, reason: "SOLD_OUT" });
  });

  it("answers the challenge of a sale that requires one, with what the buyer typed", async () => {
    const request = saleRequest({ totalStock: 2, accessRules: { challengeRequired: true, allowedUsers: [], blockedUsers: [], minAccountAge: undefined } });
    const { sale } = await callUnary(stack.sales, "createSale", request);
    const saleId = sale!.saleId;
    // The buyer reads the image; here the answer comes from where the gateway keeps it.
    const typed = async (challenge: { challengeId: string; imageType: string }, wrong = false) => {
      expect(challenge.imageType).toBe("image/svg+xml");
      const { answer } = JSON.parse((await stack.redis.get(`${stack.config.namespace}:challenge:${challenge.challengeId}`))!) as { answer: string };
      return wrong ? String(Number(answer) + 1) : answer;
    };
    expect(await buy(clients, saleId, "carol", "req-3")).toEqual({ won: false, reason: "CHALLENGE_REQUIRED" });
    expect(await buy(clients, saleId, "carol", "req-4", (c) => typed(c, true))).toEqual({ won: false, reason: "CHALLENGE_FAILED" });
    expect(await buy(clients, saleId, "carol", "req-5", (c) => typed(c))).toMatchObject({ won: true });
  });
});
