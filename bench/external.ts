// The external reference tools: pgbench (the textbook hot-row purchase, the
// baseline of the writer's figure) and h2load (the no-op ceiling). Each is
// optional: when missing, the bench names its Debian package and skips the row.
import { execFile, spawnSync } from "node:child_process";
import { randomBytes } from "node:crypto";
import { mkdtempSync, rmSync, writeFileSync } from "node:fs";
import { tmpdir } from "node:os";
import path from "node:path";
import pg from "pg";
import { PlaceOrderRequest } from "@seckill/sdk";
import { dropDatabase } from "../services/common/db.js";

export interface Missing {
  missing: string;
}

/** The tool's version line, or why it cannot run (naming the Debian package). */
function probe(bin: string, args: string[], debianPackage: string): string | Missing {
  const run = spawnSync(bin, args, { encoding: "utf8" });
  if (run.error || run.status !== 0) return { missing: `${bin} not found (apt-get install ${debianPackage})` };
  return (run.stdout || run.stderr).trim().split("\n")[0];
}

function run(bin: string, args: string[], env: NodeJS.ProcessEnv, timeoutMs: number): Promise<string> {
  return new Promise((resolve, reject) =>
    execFile(bin, args, { env, timeout: timeoutMs, maxBuffer: 16 * 1024 * 1024 }, (error, stdout, stderr) =>
      error ? reject(new Error(`${bin} failed: ${error.message}\n${stderr}`)) : resolve(stdout + stderr),
    ),
  );
}

// ----------------------------------------------------------------- pgbench

export const PGBENCH_PACKAGE = "postgresql-contrib"; // pgbench itself ships in postgresql-<version>

export interface PgbenchResult {
  tps: number;
  latencyMs: number;
  clients: number;
  seconds: number;
  version: string;
}

const PGBENCH_SCRIPT = `\\set uid random(1, 1000000000)
BEGIN;
UPDATE stock SET "left" = "left" - 1 WHERE id = 1 AND "left" > 0;
INSERT INTO orders (stock_id, user_id) VALUES (1, :uid);
END;
`;

/**
 * The hot-row purchase (UPDATE stock … WHERE left > 0 + INSERT order, one
 * transaction) with pgbench -n -c 32 -j 2 on a scratch database, dropped after.
 */
export async function runPgbench(adminUrl: string, seconds: number, clients = 32): Promise<PgbenchResult | Missing> {
  const version = probe("pgbench", ["--version"], PGBENCH_PACKAGE);
  if (typeof version !== "string") return version;
  const database = `seckill_bench_pgbench_${randomBytes(4).toString("hex")}`;
  const admin = new pg.Client({ connectionString: adminUrl });
  await admin.connect();
  const dir = mkdtempSync(path.join(tmpdir(), "seckill-pgbench-"));
  try {
    await admin.query(`CREATE DATABASE ${database}`);
    const url = new URL(adminUrl);
    url.pathname = `/${database}`;
    const scratch = new pg.Client({ connectionString: url.toString() });
    await scratch.connect();
    try {
      await scratch.query(`
        CREATE TABLE stock (id int PRIMARY KEY, "left" int NOT NULL);
        CREATE TABLE orders (id bigserial PRIMARY KEY, stock_id int NOT NULL REFERENCES stock (id), user_id bigint NOT NULL,
                             created_at timestamptz NOT NULL DEFAULT now());
        INSERT INTO stock VALUES (1, 2000000000);`);
    } finally {
      await scratch.end();
    }
    const script = path.join(dir, "purchase.sql");
    writeFileSync(script, PGBENCH_SCRIPT);
    const args = ["-n", "-c", String(clients), "-j", "2", "-T", String(seconds), "-f", script];
    args.push("-h", url.hostname || "127.0.0.1", "-p", url.port || "5432", "-U", decodeURIComponent(url.username || "postgres"), database);
    const env = { ...process.env, PGPASSWORD: decodeURIComponent(url.password) };
    const out = await run("pgbench", args, env, (seconds + 60) * 1000);
    const tps = /tps = ([\d.]+)/.exec(out);
    const latency = /latency average = ([\d.]+) ms/.exec(out);
    if (!tps) throw new Error(`pgbench printed no tps:\n${out}`);
    return { tps: Number(tps[1]), latencyMs: latency ? Number(latency[1]) : NaN, clients, seconds, version };
  } finally {
    await admin.end();
    rmSync(dir, { recursive: true, force: true });
    await dropDatabase(adminUrl, database).catch(() => undefined);
  }
}

// ------------------------------------------------------------------ h2load

export const H2LOAD_PACKAGE = "nghttp2-client";

/**
 * The bench's set-up: h2load, installed with apt-get (as root, or with
 * password-less sudo) when `command -v h2load` finds none. Returns what was
 * done or why it could not be, for the output; never throws.
 */
export function ensureH2load(log: (line: string) => void): string | undefined {
  if (spawnSync("sh", ["-c", "command -v h2load"], { stdio: "ignore" }).status === 0) return undefined;
  const root = process.getuid?.() === 0;
  const sudo = !root && spawnSync("sudo", ["-n", "true"], { stdio: "ignore" }).status === 0;
  if (!root && !sudo) return `h2load not found, and apt-get needs root (not root, no password-less sudo): install ${H2LOAD_PACKAGE} to get the reference row`;
  const apt = (...args: string[]) => {
    const [cmd, argv] = root ? ["apt-get", args] : ["sudo", ["-n", "apt-get", ...args]];
    const run = spawnSync(cmd, argv, { encoding: "utf8", timeout: 300_000, env: { ...process.env, DEBIAN_FRONTEND: "noninteractive" } });
    return { ok: run.status === 0, why: run.error?.message ?? `${run.stderr}`.trim().split("\n").slice(-2).join(" | ") };
  };
  log(`h2load not found: apt-get install -y ${H2LOAD_PACKAGE}`);
  let install = apt("install", "-y", "--no-install-recommends", H2LOAD_PACKAGE);
  if (!install.ok) {
    // A fresh container has no package lists yet.
    log("apt-get install failed; apt-get update, then again");
    const update = apt("update");
    install = update.ok ? apt("install", "-y", "--no-install-recommends", H2LOAD_PACKAGE) : update;
  }
  if (!install.ok) return `h2load not found, and apt-get install -y ${H2LOAD_PACKAGE} failed (${install.why}); the reference row is skipped`;
  if (spawnSync("sh", ["-c", "command -v h2load"], { stdio: "ignore" }).status !== 0) return `apt-get installed ${H2LOAD_PACKAGE}, but h2load is still not on PATH`;
  return `h2load was not installed: the set-up installed ${H2LOAD_PACKAGE} with apt-get`;
}

export interface H2loadResult {
  rate: number;
  succeeded: number;
  version: string;
}

/**
 * h2load against the no-op server: the same connections × streams and the
 * same kind of frame (h2load repeats one body; the no-op does not care).
 */
export async function runH2load(
  address: string,
  opts: { connections: number; streams: number; seconds: number; warmupSeconds: number; path: string },
): Promise<H2loadResult | Missing> {
  const version = probe("h2load", ["--version"], H2LOAD_PACKAGE);
  if (typeof version !== "string") return version;
  const dir = mkdtempSync(path.join(tmpdir(), "seckill-h2load-"));
  try {
    const message = PlaceOrderRequest.encode({ saleId: "01KAAAAAAAAAAAAAAAAAAAAAAA", quantity: 1, requestId: "h2load-1", purchaseToken: "", retry: false }).finish();
    const frame = Buffer.alloc(5 + message.length);
    frame.writeUInt32BE(message.length, 1);
    frame.set(message, 5);
    const body = path.join(dir, "frame.bin");
    writeFileSync(body, frame);
    const args = [
      "-c",
      String(opts.connections),
      "-m",
      String(opts.streams),
      "-t",
      "1",
      "-D",
      String(opts.seconds),
      `--warm-up-time=${opts.warmupSeconds}`,
      "-d",
      body,
      "-H",
      "content-type: application/grpc",
      "-H",
      "te: trailers",
      "-H",
      "x-user-id: h2load-user",
      `http://${address}${opts.path}`,
    ];
    const out = await run("h2load", args, process.env, (opts.seconds + opts.warmupSeconds + 60) * 1000);
    const rate = /finished in [\d.]+m?s, ([\d.]+) req\/s/.exec(out);
    const succeeded = /(\d+) succeeded/.exec(out);
    if (!rate) throw new Error(`h2load printed no rate:\n${out}`);
    return { rate: Number(rate[1]), succeeded: succeeded ? Number(succeeded[1]) : NaN, version };
  } finally {
    rmSync(dir, { recursive: true, force: true });
  }
}

export const isMissing = (x: unknown): x is Missing => typeof x === "object" && x !== null && "missing" in x;
