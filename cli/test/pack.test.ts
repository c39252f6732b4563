import { existsSync, readFileSync, readdirSync } from "node:fs";
import { createRequire } from "node:module";
import path from "node:path";
import { pathToFileURL } from "node:url";
import { afterAll, beforeAll, describe, expect, it } from "vitest";
import { NPX, type PackedInstall, REPO, type Run, packAndInstall, run, succeeded } from "../../test/support/packed.js";
import { startTestStack, type TestStack } from "../../test/support/stack.js";
import { dependencyMismatch, importedPackages } from "../../tools/build-cli.js";
import { NEEDS_CHECKOUT } from "../src/chaos-command.js";
import type { Summary } from "../src/simulate/summary.js";

const BIN = path.join(REPO, "cli/bin/seckill.js");

let stack: TestStack;
let packed: PackedInstall;
let project: string;
let installed: string;

beforeAll(async () => {
  packed = await packAndInstall("cli", { name: "shop" });
  project = packed.project;
  installed = path.join(project, "node_modules/@seckill/cli");
}, 180_000);

afterAll(() => packed?.remove());

/** `npx seckill <args>` in the project the tarball was installed into, pointed at the test stack. */
function seckill(...args: string[]): Promise<Run> {
  // After the command's own arguments: npx takes options right after the command name for its own.
  const targets = ["--inventory", stack.inventory.address, "--order", stack.order.address, "--gateway", stack.gateway!.address];
  return run(NPX, ["seckill", ...args, ...targets], project, 60_000);
}

describe("the installed seckill package", () => {
  it("holds the bundle and no TypeScript source, and nothing in the project can load TypeScript", () => {
    expect(existsSync(path.join(installed, "dist/seckill.mjs"))).toBe(true);
    expect(existsSync(path.join(installed, "src"))).toBe(false);
    expect(() => createRequire(path.join(project, "package.json")).resolve("tsx/package.json")).toThrow();
    const manifest = JSON.parse(readFileSync(path.join(installed, "package.json"), "utf8"));
    expect(manifest.engines).toEqual(JSON.parse(readFileSync(path.join(REPO, "package.json"), "utf8")).engines);
    expect(Object.keys(manifest.dependencies)).not.toContain("@seckill/sdk");
  });

  it("declares exactly the npm packages its bundle imports", async () => {
    const imported = await importedPackages(path.join(installed, "dist/seckill.mjs"));
    expect(imported).toContain("@grpc/grpc-js");
    expect(dependencyMismatch(imported, path.join(installed, "package.json"))).toEqual({ undeclared: [], unused: [] });
  });

  it("answers npx seckill --help", async () => {
    const { code, stdout, stderr } = await run(NPX, ["seckill", "--help"], project, 30_000);
    expect(stderr).toBe("");
    expect(code).toBe(0);
    expect(stdout).toMatch(/^Usage: seckill \[options\] \[command\]/);
    expect(stdout).toMatch(/^\s+simulate /m);
  });

  it("says seckill chaos needs a checkout of the repository, and exits 1", async () => {
    const { code, stdout, stderr } = await run(NPX, ["seckill", "chaos", "--runs", "1"], project, 30_000);
    expect(code).toBe(1);
    expect(stdout).toBe("");
    expect(stderr.trim()).toBe(NEEDS_CHECKOUT);
  });
});

describe("the installed seckill package against a stack", () => {
  beforeAll(async () => {
    stack = await startTestStack({ PURCHASE_TOKEN_REQUIRED: "true" }, { gateway: true });
  });
  afterAll(async () => {
    await stack?.stop();
  });

  it("creates and shows a sale", async () => {
    const created = succeeded("sale create", await seckill("sale", "create", "--name", "Packed socks", "--stock", "3", "--starts-in", "10m", "--json"));
    const sale = JSON.parse(created.stdout);
    expect(sale).toMatchObject({ name: "Packed socks", totalStock: 3, sold: 0 });
    const shown = JSON.parse(succeeded("sale show", await seckill("sale", "show", sale.saleId, "--json")).stdout);
    expect(shown.status).toMatchObject({ phase: "NOT_STARTED", stockLeft: 3 });
  });

  it("sells exactly the stock of a simulated sale, every unit in Postgres", async () => {
    const { code, stdout, stderr } = await seckill(
      "simulate",
      "--direct",
      "--users",
      "60",
      "--stock",
      "6",
      "--starts-in",
      "1s",
      "--ramp",
      "200ms",
      "--seed",
      "7",
      "--json",
      "--quiet",
    );
    expect(stderr).toBe("");
    expect(code).toBe(0);
    const summary = JSON.parse(stdout) as Summary;
    expect(summary).toMatchObject({ users: 60, successes: 6, unitsWon: 6, oversold: 0, ok: true });
    expect(summary.postgres).toMatchObject({ unitsSold: 6, ordersListed: 6, missingOrders: 0, unexpectedOrders: 0 });
    const sale = await stack.db("sales").where({ id: summary.saleId }).first();
    expect(sale.sold).toBe(6);
  });
});

describe("the repository's bin", () => {
  it("runs the TypeScript source, the SDK's too, from any directory and with cli/dist built beside it", async () => {
    expect(existsSync(path.join(REPO, "cli/dist/seckill.mjs"))).toBe(true); // npm pack built it
    // V8's coverage names every script the process loaded.
    const coverage = path.join(packed.dir, "coverage");
    const { code } = await run(process.execPath, [BIN, "--help"], project, 30_000, { NODE_V8_COVERAGE: coverage });
    expect(code).toBe(0);
    const loaded = readdirSync(coverage)
      .flatMap((file) => (JSON.parse(readFileSync(path.join(coverage, file), "utf8")) as { result: { url: string }[] }).result.map((s) => s.url))
      .filter((url) => url.startsWith(pathToFileURL(REPO).href));
    expect(loaded).toContain(pathToFileURL(path.join(REPO, "cli/src/main.ts")).href);
    expect(loaded).toContain(pathToFileURL(path.join(REPO, "sdk/src/index.ts")).href);
    expect(loaded.filter((url) => /\/(cli|sdk)\/dist\//.test(url))).toEqual([]);
  });
});
