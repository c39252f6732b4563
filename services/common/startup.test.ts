// Start-up against dependencies that are not there yet: it waits for them,
// then serves; it gives up after STARTUP_TIMEOUT_MS; it does not wait on an
// error that waiting cannot fix.
import { setTimeout as sleep } from "node:timers/promises";
import net from "node:net";
import { afterEach, expect, it } from "vitest";
import { quietLogger } from "./log.js";
import { untilReachable } from "./startup.js";
import { startTcpProxy, type TcpProxy } from "../../tools/chaos/tcp-proxy.js";
import { freePort } from "../../tools/stack/ports.js";
import { readConfig } from "./config.js";
import { startWriter } from "../order/writer/app.js";
import { isolatedConfig, cleanNamespace } from "../../test/support/stack.js";
import { ensureDatabase, dropDatabase } from "./db.js";

const refused = () => Object.assign(new Error("connect ECONNREFUSED 127.0.0.1:1"), { code: "ECONNREFUSED" });
const o = { timeoutMs: 2000, log: quietLogger() };

it("retries a dependency that refuses connections until it answers", async () => {
  let calls = 0;
  const value = await untilReachable("thing", async () => (++calls < 3 ? Promise.reject(refused()) : "up"), o);
  expect(value).toBe("up");
  expect(calls).toBe(3);
});

it("gives up after the start-up timeout with the last error", async () => {
  const started = Date.now();
  await expect(untilReachable("thing", () => Promise.reject(refused()), { ...o, timeoutMs: 700 })).rejects.toThrow(/ECONNREFUSED/);
  expect(Date.now() - started).toBeLessThan(3000);
});

it("fails at once on an error that waiting cannot fix", async () => {
  let calls = 0;
  const denied = Object.assign(new Error('password authentication failed for user "seckill"'), { code: "28P01" });
  const connect = async () => {
    calls++;
    throw denied;
  };
  await expect(untilReachable("postgres", connect, o)).rejects.toThrow(/password/);
  expect(calls).toBe(1);
});

let proxy: TcpProxy | undefined;
afterEach(async () => {
  await proxy?.close();
  proxy = undefined;
});

it("starts the order writer when Postgres only becomes reachable after it was started", async () => {
  const base = readConfig();
  const pgUrl = new URL(base.databaseUrl);
  const port = await freePort();
  // The writer's Postgres is at a port where nothing listens yet.
  const config = await isolatedConfig({ WRITER_ADDR: "127.0.0.1:0", STARTUP_TIMEOUT_MS: "20000" });
  await ensureDatabase(config.databaseAdminUrl, config.databaseUrl);
  const db = new URL(config.databaseUrl);
  db.port = String(port);
  const starting = startWriter({ ...config, databaseUrl: db.toString() }, quietLogger());
  await sleep(1200);
  expect(await isListening(port)).toBe(false);
  proxy = await startTcpProxy({ target: `${pgUrl.hostname}:${pgUrl.port || 5432}`, port });
  const writer = await starting;
  try {
    expect(writer.address).toMatch(/^127\.0\.0\.1:\d+$/);
  } finally {
    await writer.stop();
    await cleanNamespace(config);
    await dropDatabase(config.databaseAdminUrl, new URL(config.databaseUrl).pathname.slice(1));
  }
});

function isListening(port: number): Promise<boolean> {
  return new Promise((resolve) => {
    const socket = net.connect({ host: "127.0.0.1", port });
    socket.once("connect", () => {
      socket.destroy();
      resolve(true);
    });
    socket.once("error", () => resolve(false));
  });
}
