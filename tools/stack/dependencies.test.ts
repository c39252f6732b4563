// Real processes, no mocks: needs redis-server, nats-server and PostgreSQL binaries installed.
import { freePort } from "./ports.js";
import fs from "node:fs";
import net from "node:net";
import os from "node:os";
import path from "node:path";
import { afterAll, describe, expect, it } from "vitest";
import { Redis } from "ioredis";
import pg from "pg";
import { ensureDependencies, MissingDependencyError, type RunningDependencies } from "./dependencies.js";

const tempDirs: string[] = [];
function tempStateDir(): string {
  const dir = fs.mkdtempSync(path.join(os.tmpdir(), "deps-test-"));
  fs.chmodSync(dir, 0o755); // as root, postgres runs as an unprivileged user who must reach its data dir
  tempDirs.push(dir);
  return dir;
}
afterAll(() => {
  for (const dir of tempDirs) fs.rmSync(dir, { recursive: true, force: true });
});

function isOpen(port: number): Promise<boolean> {
  return new Promise((resolve) => {
    const socket = net.connect({ host: "127.0.0.1", port });
    socket.once("connect", () => {
      socket.destroy();
      resolve(true);
    });
    socket.once("error", () => resolve(false));
  });
}

/** Resolves with the first line the server sends (NATS greets with INFO {...}). */
function firstLine(port: number): Promise<string> {
  return new Promise((resolve, reject) => {
    const socket = net.connect({ host: "127.0.0.1", port });
    let text = "";
    socket.on("data", (chunk) => {
      text += chunk.toString();
      if (text.includes("\n")) {
        socket.destroy();
        resolve(text.split("\n")[0]);
      }
    });
    socket.once("error", reject);
  });
}

describe("ensureDependencies", () => {
  it("uses the standard servers that are already running", { timeout: 30_000 }, async () => {
    const lines: string[] = [];
    const deps = await ensureDependencies(
      {
        redisUrl: "redis://127.0.0.1:6379",
        natsUrl: "nats://127.0.0.1:4222",
        databaseAdminUrl: "postgres://postgres@127.0.0.1:5432/postgres",
      },
      { stateDir: tempStateDir(), log: (l) => lines.push(l) },
    );
    expect(deps.started).toEqual([]);
    expect(lines.sort()).toEqual(["nats: using nats://127.0.0.1:4222", "postgres: using postgres://postgres@127.0.0.1:5432/postgres", "redis: using redis://127.0.0.1:6379"]);
    await deps.stop();
  });

  it("starts private redis, nats and postgres on free loopback ports and stops them", { timeout: 90_000 }, async () => {
    const [redisPort, natsPort, pgPort] = [await freePort(), await freePort(), await freePort()];
    const stateDir = tempStateDir();
    const lines: string[] = [];
    let deps: RunningDependencies | undefined;
    try {
      deps = await ensureDependencies(
        {
          redisUrl: `redis://127.0.0.1:${redisPort}`,
          natsUrl: `nats://127.0.0.1:${natsPort}`,
          databaseAdminUrl: `postgres://postgres@127.0.0.1:${pgPort}/postgres`,
        },
        { stateDir, log: (l) => lines.push(l) },
      );
      expect([...deps.started].sort()).toEqual(["nats", "postgres", "redis"]);
      expect(lines).toContain(`redis: started private instance on 127.0.0.1:${redisPort} (data in ${path.join(stateDir, "redis")})`);
      for (const name of ["redis", "nats", "postgres"]) {
        expect(fs.existsSync(path.join(stateDir, `${name}.log`))).toBe(true);
      }
      expect(fs.existsSync(path.join(stateDir, "postgres", "data", "PG_VERSION"))).toBe(true);

      const redis = new Redis(redisPort, "127.0.0.1", { lazyConnect: true, maxRetriesPerRequest: 1 });
      await redis.connect();
      expect(await redis.ping()).toBe("PONG");
      redis.disconnect();

      const client = new pg.Client(`postgres://postgres@127.0.0.1:${pgPort}/postgres`);
      await client.connect();
      expect((await client.query("select 1 as one")).rows).toEqual([{ one: 1 }]);
      await client.end();

      const info = await firstLine(natsPort);
      expect(info).toMatch(/^INFO \{/);
      expect(JSON.parse(info.slice(5)).jetstream).toBe(true);
    } finally {
      await deps?.stop();
    }
    expect(await isOpen(redisPort)).toBe(false);
    expect(await isOpen(natsPort)).toBe(false);
    expect(await isOpen(pgPort)).toBe(false);
  });

  it("reports an unreachable non-loopback server by its env var", { timeout: 30_000 }, async () => {
    const attempt = ensureDependencies(
      {
        redisUrl: "redis://nohost.invalid:6379", // .invalid never resolves: no packet leaves the machine
        natsUrl: "nats://127.0.0.1:4222",
        databaseAdminUrl: `postgres://postgres@127.0.0.1:5432/postgres`,
      },
      { stateDir: tempStateDir(), path: "" },
    );
    await expect(attempt).rejects.toBeInstanceOf(MissingDependencyError);
    await expect(attempt).rejects.toThrow(/REDIS_URL=redis:\/\/nohost\.invalid:6379 points at a server that is not reachable/);
  });

  it("names the Debian package when a server binary is missing", { timeout: 30_000 }, async () => {
    const [redisPort, natsPort, pgPort] = [await freePort(), await freePort(), await freePort()];
    const urls = {
      redisUrl: `redis://127.0.0.1:${redisPort}`,
      natsUrl: `nats://127.0.0.1:${natsPort}`,
      databaseAdminUrl: `postgres://postgres@127.0.0.1:${pgPort}/postgres`,
    };
    const standard = {
      redisUrl: "redis://127.0.0.1:6379",
      natsUrl: "nats://127.0.0.1:4222",
      databaseAdminUrl: "postgres://postgres@127.0.0.1:5432/postgres",
    };
    // An empty search path simulates a machine without the servers installed; one dependency missing at a time.
    const cases = [
      { urls: { ...standard, redisUrl: urls.redisUrl }, pkg: "redis-server", env: "REDIS_URL" },
      { urls: { ...standard, natsUrl: urls.natsUrl }, pkg: "nats-server", env: "NATS_URL" },
      { urls: { ...standard, databaseAdminUrl: urls.databaseAdminUrl }, pkg: "postgresql", env: "DATABASE_ADMIN_URL" },
    ];
    for (const c of cases) {
      const stateDir = tempStateDir();
      const attempt = ensureDependencies(c.urls, { stateDir, path: "" });
      await expect(attempt).rejects.toBeInstanceOf(MissingDependencyError);
      await expect(attempt).rejects.toThrow(new RegExp(`apt-get install ${c.pkg}\\b.*${c.env}`));
      expect(fs.readdirSync(stateDir)).toEqual([]); // nothing created when the binary is missing
    }
  });
});
