// The README must match the code: its SDK example is the file the tests run,
// and its configuration table names every variable the services read.
import { readFileSync } from "node:fs";
import { afterAll, beforeAll, describe, expect, it } from "vitest";
import { buy } from "../sdk/examples/place-order.js";
import { startTestStack, type TestStack } from "./support/stack.js";

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
  beforeAll(async () => {
    stack = await startTestStack();
  });
  afterAll(async () => {
    await stack?.stop();
  });

  it("wins the one unit, then reports SOLD_OUT to the next buyer", async () => {
    const sale = await stack.createSale({ totalStock: 1 });
    const first = await buy(stack.order.address, sale.saleId, "alice", "req-1");
    expect(first.won).toBe(true);
    expect(first.orderId?.startsWith(sale.saleId)).toBe(true);
    const second = await buy(stack.order.address, sale.saleId, "bob", "req-2");
    expect(second).toEqual({ won: false, reason: "SOLD_OUT" });
  });
});
