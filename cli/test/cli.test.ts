// The seckill command against a real stack (startTestStack: its own database,
// stream and Redis namespace, servers on OS-chosen ports, the gateway, and an
// order service that requires purchase tokens): a small simulated sale end to
// end, the sale commands, the real bin, and the message when the backend is
// not there.
import { execFile } from "node:child_process";
import { mkdtempSync, readFileSync, rmSync } from "node:fs";
import { tmpdir } from "node:os";
import path from "node:path";
import { fileURLToPath } from "node:url";
import { status } from "@grpc/grpc-js";
import { callUnary, purchaseMetadata } from "@seckill/sdk";
import { afterAll, beforeAll, describe, expect, it } from "vitest";
import { refusal, startTestStack, type TestStack } from "../../test/support/stack.js";
import type { Io } from "../src/context.js";
import { runCli } from "../src/program.js";
import type { Summary } from "../src/simulate/summary.js";
import { freePort } from "../../tools/stack/ports.js";

const REPO = fileURLToPath(new URL("../..", import.meta.url));
const BIN = path.join(REPO, "cli/bin/seckill.js");

let stack: TestStack;
let dir: string;
beforeAll(async () => {
  stack = await startTestStack({ PURCHASE_TOKEN_REQUIRED: "true" }, { gateway: true });
  dir = mkdtempSync(path.join(tmpdir(), "seckill-cli-"));
});
afterAll(async () => {
  await stack?.stop();
  if (dir) rmSync(dir, { recursive: true, force: true });
});

/** Runs the CLI in this process; returns its exit code and what it printed. */
async function cli(...args: string[]) {
  const out: string[] = [];
  const err: string[] = [];
  const io: Io = { out: (t) => out.push(t), err: (t) => err.push(t), stderr: { write: (c: string) => err.push(c), isTTY: false } };
  const code = await runCli(["--inventory", stack.inventory.address, "--order", stack.order.address, "--gateway", stack.gateway!.address, ...args], io);
  return { code, stdout: out.join("\n"), stderr: err.join("\n") };
}

function runBin(args: string[]): Promise<{ code: number; stdout: string; stderr: string }> {
  return new Promise((resolve) => {
    execFile(process.execPath, [BIN, ...args], { cwd: REPO, timeout: 20_000 }, (error, stdout, stderr) => {
      resolve({ code: error ? (typeof error.code === "number" ? error.code : 1) : 0, stdout, stderr });
    });
  });
}

describe("seckill simulate", () => {
  it("sells exactly the stock to a crowd, and every unit reaches Postgres", { timeout: 30_000 }, async () => {
    const report = path.join(dir, "report.html");
    const { code, stdout, stderr } = await cli(
      "simulate",
      "--direct",
      "--users",
      "300",
      "--stock",
      "20",
      "--starts-in",
      "1s",
      "--ramp",
      "500ms",
      "--seed",
      "42",
      "--json",
      "--quiet",
      "--report",
      report,
    );
    expect(stderr).toBe("");
    const summary = JSON.parse(stdout) as Summary;
    expect(code).toBe(0);
    expect(summary).toMatchObject({ users: 300, successes: 20, unitsWon: 20, oversold: 0, overLimitUsers: { fromAnswers: 0, fromPostgres: 0 }, ok: true });
    expect(summary.postgres).toMatchObject({ unitsSold: 20, ordersListed: 20, missingOrders: 0, unexpectedOrders: 0 });
    expect(summary.soldOut).toBeGreaterThan(250);
    expect(summary.edge).toMatchObject({ route: "direct", refused: 0 });
    expect(summary.tokens.issued + Object.values(summary.tokens.refusedByReason).reduce((a, b) => a + b, 0)).toBe(summary.clicks);
    expect(summary.tokens.calls).toBeGreaterThanOrEqual(summary.clicks);
    // Every PlaceOrder carried a valid purchase token from the gateway (the order service requires one).
    expect(Object.keys(summary.rejectedByReason)).not.toContain("PURCHASE_TOKEN_INVALID");
    expect(summary.attempts).toBeGreaterThanOrEqual(summary.clicks - summary.soldOut);
    expect(summary.watch.created).toBe(20);
    expect(summary.latencyMs.p50).toBeGreaterThan(0);
    expect(summary.checks.every((c) => c.ok)).toBe(true);

    // Postgres, read directly: exactly those orders, nobody over the limit.
    const rows = await stack.db("orders").where({ sale_id: summary.saleId }).select("user_id");
    expect(rows).toHaveLength(20);
    expect(new Set(rows.map((r) => r.user_id)).size).toBe(20);
    const sale = await stack.db("sales").where({ id: summary.saleId }).first();
    expect(sale.sold).toBe(20);

    const html = readFileSync(report, "utf8");
    expect(html).toContain("<svg");
    expect(html).not.toMatch(/https?:\/\//);
  });

  it("prints the summary table by default", { timeout: 30_000 }, async () => {
    const { code, stdout, stderr } = await cli("simulate", "--direct", "--users", "40", "--stock", "5", "--starts-in", "0s", "--ramp", "100ms", "--impatient", "0");
    expect(code).toBe(0);
    expect(stdout).toMatch(/^successes\s+5 orders, 5 units, 5 users$/m);
    expect(stdout).toMatch(/^oversold\s+0$/m);
    expect(stdout).toMatch(/PASS/);
    expect(stderr).toMatch(/created sale/);
    expect(stderr).toMatch(/buyers call the services directly/);
    expect(stdout).toMatch(/^buyers' calls\s+direct to the services \(--direct\)$/m);
  });

  it("runs against an order service that refuses a PlaceOrder without a token", async () => {
    const sale = await stack.createSale();
    const request = { saleId: sale.saleId, quantity: 1, requestId: "no-token", purchaseToken: "", retry: false };
    const refused = await refusal(callUnary(stack.orders, "placeOrder", request, { metadata: purchaseMetadata("mallory", sale.saleId) }));
    expect(refused).toMatchObject({ code: status.PERMISSION_DENIED, reason: "PURCHASE_TOKEN_INVALID" });
  });

  it("refuses a quantity above the per-user limit before creating anything", async () => {
    const { code, stderr } = await cli("simulate", "--direct", "--quantity", "2", "--per-user-limit", "1");
    expect(code).toBe(1);
    expect(stderr).toMatch(/--quantity 2 is more than --per-user-limit 1/);
  });
});

describe("seckill sale", () => {
  it("creates, shows, opens and closes a sale", async () => {
    const created = await cli("sale", "create", "--name", "CLI socks", "--stock", "7", "--price", "1250", "--starts-in", "10m", "--per-user-limit", "2", "--json");
    expect(created.code).toBe(0);
    const sale = JSON.parse(created.stdout);
    expect(sale).toMatchObject({ name: "CLI socks", totalStock: 7, priceMinor: 1250, perUserLimit: 2, sold: 0 });

    const before = JSON.parse((await cli("sale", "show", sale.saleId, "--json")).stdout);
    expect(before.status).toMatchObject({ phase: "NOT_STARTED", stockLeft: 7 });
    expect(before.status.countdown).toMatch(/^opens in (9m|10m)/);

    expect((await cli("sale", "open", sale.saleId)).stdout).toMatch(/^opened sale /);
    const shown = await cli("sale", "show", sale.saleId);
    expect(shown.stdout).toMatch(/^phase\s+OPEN$/m);
    expect(shown.stdout).toMatch(/^stock left \(Redis\)\s+7 of 7$/m);

    expect((await cli("sale", "close", sale.saleId)).code).toBe(0);
    expect(JSON.parse((await cli("sale", "show", sale.saleId, "--json")).stdout).status.phase).toBe("ENDED");

    const list = await cli("sale", "list");
    expect(list.stdout).toMatch(/^SALE\s+NAME\s+SOLD\s+STOCK/);
    expect(list.stdout).toContain("CLI socks");
  });

  it("creates a sale with --release-policy keep and shows the policy in show and list", async () => {
    const created = await cli("sale", "create", "--name", "CLI keep", "--release-policy", "keep", "--json");
    expect(created.code).toBe(0);
    const sale = JSON.parse(created.stdout);
    expect(sale.releasePolicy).toBe("keep");
    expect((await cli("sale", "show", sale.saleId)).stdout).toMatch(/^release policy\s+keep \(/m);
    const list = await cli("sale", "list");
    expect(list.stdout).toMatch(/^SALE\s+NAME\s+SOLD\s+STOCK\s+LIMIT\s+ON RELEASE/);
    expect(list.stdout).toMatch(new RegExp(`^${sale.saleId}\\s+CLI keep\\s+0\\s+100\\s+1\\s+keep\\s`, "m"));

    const byDefault = JSON.parse((await cli("sale", "create", "--json")).stdout);
    expect(byDefault.releasePolicy).toBe("restore");
    const bad = await cli("sale", "create", "--release-policy", "forever");
    expect(bad.code).toBe(1);
    expect(bad.stderr).toMatch(/--release-policy/);
  });

  it("reports refusals as one readable line", async () => {
    const missing = await cli("sale", "show", "00000000000000000000000000");
    expect(missing).toMatchObject({ code: 1, stderr: "seckill: NOT_FOUND: no sale 00000000000000000000000000" });
    const bad = await cli("sale", "create", "--currency", "eu");
    expect(bad.code).toBe(1);
    expect(bad.stderr).toMatch(/INVALID_ARGUMENT: currency/);
  });
});

describe("the seckill bin", () => {
  it("runs `sale list --json` against the stack", { timeout: 25_000 }, async () => {
    // Sale commands do not need the gateway: a --gateway nobody listens on does not matter.
    const { code, stdout, stderr } = await runBin([
      "sale",
      "list",
      "--inventory",
      stack.inventory.address,
      "--order",
      stack.order.address,
      "--gateway",
      `127.0.0.1:${await freePort()}`,
      "--json",
    ]);
    expect(stderr).toBe("");
    expect(code).toBe(0);
    const page = JSON.parse(stdout);
    expect(Array.isArray(page.sales)).toBe(true);
    expect(page.sales.length).toBeGreaterThan(0);
  });

  it("exits 1 with a hint when the backend is not running", { timeout: 25_000 }, async () => {
    const port = await freePort();
    const { code, stderr } = await runBin(["sale", "list", "--inventory", `127.0.0.1:${port}`, "--order", `127.0.0.1:${port}`]);
    expect(code).toBe(1);
    expect(stderr.trim()).toBe(`seckill: cannot reach the inventory service at 127.0.0.1:${port} — is the backend running? start it with: npm start (or point --inventory at it)`);
  });

  it("names the order service when only it is missing", async () => {
    const port = await freePort();
    const out: string[] = [];
    const io: Io = { out: () => {}, err: (t) => out.push(t), stderr: { write: () => true } };
    const code = await runCli(["--inventory", stack.inventory.address, "--order", `127.0.0.1:${port}`, "--gateway", stack.gateway!.address, "simulate", "--direct"], io);
    expect(code).toBe(1);
    expect(out.join("\n")).toMatch(new RegExp(`cannot reach the order service at 127\\.0\\.0\\.1:${port} — is the backend running\\? start it with: npm start`));
  });

  it("says how to go direct when simulate cannot reach the edge", async () => {
    const port = await freePort();
    const out: string[] = [];
    const io: Io = { out: () => {}, err: (t) => out.push(t), stderr: { write: () => true } };
    const code = await runCli(["--inventory", stack.inventory.address, "--order", stack.order.address, "--edge", `127.0.0.1:${port}`, "simulate"], io);
    expect(code).toBe(1);
    expect(out.join("\n")).toBe(
      `seckill: cannot reach the edge (Envoy) at 127.0.0.1:${port} — is it running? npm start runs it in front of the services when it finds Envoy ` +
        "(npm run envoy:install); or point --edge at it, or call the services directly: seckill simulate --direct",
    );
  });

  it("names the gateway when simulate cannot reach it", async () => {
    const port = await freePort();
    const out: string[] = [];
    const io: Io = { out: () => {}, err: (t) => out.push(t), stderr: { write: () => true } };
    const code = await runCli(["--inventory", stack.inventory.address, "--order", stack.order.address, "--gateway", `127.0.0.1:${port}`, "simulate", "--direct"], io);
    expect(code).toBe(1);
    expect(out.join("\n")).toBe(`seckill: cannot reach the gateway at 127.0.0.1:${port} — is the backend running? start it with: npm start (or point --gateway at it)`);
  });
});
