// The seckill command as its users get it: packed with `npm pack` (which
// bundles it at prepack), installed from the tarball into a project of its own
// (dependencies from the npm cache), and run there on plain node (no tsx, no
// TypeScript, no repository around it) against a real stack.
import { execFile } from "node:child_process";
import { existsSync, mkdirSync, mkdtempSync, readFileSync, readdirSync, rmSync, writeFileSync } from "node:fs";
import { createRequire } from "node:module";
import { tmpdir } from "node:os";
import path from "node:path";
import { fileURLToPath, pathToFileURL } from "node:url";
import { afterAll, beforeAll, describe, expect, it } from "vitest";
import { startTestStack, type TestStack } from "../../test/support/stack.js";
import { dependencyMismatch, importedPackages } from "../../tools/build-cli.js";
import { NEEDS_CHECKOUT } from "../src/chaos-command.js";
import type { Summary } from "../src/simulate/summary.js";

const REPO = fileURLToPath(new URL("../..", import.meta.url));
const BIN = path.join(REPO, "cli/bin/seckill.js");
const NPM = process.platform === "win32" ? "npm.cmd" : "npm";
const NPX = process.platform === "win32" ? "npx.cmd" : "npx";

// The npm_* variables of an enclosing `npm test` (npm_config_local_prefix among
// them) would send the nested npm commands to the repository; NODE_OPTIONS
// could bring a loader along. npx is told never to fetch a package: the seckill
// it runs is the installed one, or none.
const cleanEnv = {
  ...Object.fromEntries(Object.entries(process.env).filter(([key]) => !/^npm_/i.test(key) && key !== "NODE_OPTIONS")),
  npm_config_yes: "false",
};

interface Run {
  code: number;
  stdout: string;
  stderr: string;
}

function run(command: string, args: string[], cwd: string, timeout: number, env: Record<string, string> = {}): Promise<Run> {
  return new Promise((resolve) => {
    execFile(command, args, { cwd, env: { ...cleanEnv, ...env }, timeout, maxBuffer: 16 * 1024 * 1024 }, (error, stdout, stderr) => {
      resolve({ code: error ? (typeof error.code === "number" ? error.code : 1) : 0, stdout, stderr });
    });
  });
}

function succeeded(what: string, result: Run): Run {
  if (result.code !== 0) throw new Error(`${what} exited ${result.code}:\n${result.stderr}\n${result.stdout}`);
  return result;
}

let stack: TestStack;
let dir: string;
let project: string;
let installed: string;

beforeAll(async () => {
  dir = mkdtempSync(path.join(tmpdir(), "seckill-pack-"));
  project = path.join(dir, "shop");
  installed = path.join(project, "node_modules/@seckill/cli");
  succeeded("npm pack", await run(NPM, ["pack", "--pack-destination", dir], path.join(REPO, "cli"), 60_000));
  const tarball = readdirSync(dir).find((f) => f.endsWith(".tgz"));
  if (!tarball) throw new Error(`npm pack left no tarball in ${dir}`);
  // A project of its own, outside the repository: nothing of the workspace is reachable from it.
  mkdirSync(project);
  writeFileSync(path.join(project, "package.json"), JSON.stringify({ name: "shop", version: "1.0.0", private: true }));
  succeeded("npm install of the tarball", await run(NPM, ["install", "--prefer-offline", "--no-audit", "--no-fund", path.join(dir, tarball)], project, 120_000));
}, 180_000);

afterAll(() => {
  if (dir) rmSync(dir, { recursive: true, force: true });
});

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
    const coverage = path.join(dir, "coverage");
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
