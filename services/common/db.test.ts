// knex's own messages in the service's log: a pool that cannot reach Postgres
// writes one structured warning (no stack trace) per distinct message and
// time window, counting the repeats it leaves out.
import { afterEach, describe, expect, it } from "vitest";
import { freePort } from "../../tools/stack/ports.js";
import { createDb, knexLog, type Db } from "./db.js";
import { createLogger } from "./log.js";

function capturedLogger() {
  const lines: Record<string, unknown>[] = [];
  return { log: createLogger({ service: "test" }, "debug", (line) => lines.push(JSON.parse(line))), lines };
}

describe("knexLog", () => {
  it("writes the first line of a warning, counts repeats within 5 s, and writes again after", () => {
    const { log, lines } = capturedLogger();
    let now = 0;
    const knex = knexLog(log, () => now);
    const attempt = "Acquire connection error: Error: connect ECONNREFUSED 127.0.0.1:1\n    at TCPConnectWrap.afterConnect [as oncomplete] (node:net:1555:16)";
    knex.warn(attempt);
    now = 1000;
    knex.warn(attempt);
    knex.warn(attempt);
    knex.warn("Connection Error: Connection ended unexpectedly");
    now = 7000;
    knex.warn("Connection Error: Connection ended unexpectedly");
    knex.warn(attempt);
    knex.warn(attempt);
    expect(lines.map(({ level, msg, message, repeated }) => ({ level, msg, message, repeated }))).toEqual([
      { level: "warn", msg: "postgres client", message: "Acquire connection error: Error: connect ECONNREFUSED 127.0.0.1:1", repeated: undefined },
      { level: "warn", msg: "postgres client", message: "Connection Error: Connection ended unexpectedly", repeated: undefined },
      { level: "warn", msg: "postgres client", message: "Connection Error: Connection ended unexpectedly", repeated: undefined },
      { level: "warn", msg: "postgres client", message: "Acquire connection error: Error: connect ECONNREFUSED 127.0.0.1:1", repeated: 2 },
    ]);
    now = 13_000;
    knex.warn(attempt);
    knex.warn("Connection Error: Connection ended unexpectedly");
    expect(lines.slice(4).map(({ message, repeated }) => ({ message, repeated }))).toEqual([
      { message: "Acquire connection error: Error: connect ECONNREFUSED 127.0.0.1:1", repeated: 1 },
      { message: "Connection Error: Connection ended unexpectedly", repeated: undefined },
    ]);
  });
});

describe("createDb with a logger", () => {
  let db: Db | undefined;
  afterEach(async () => {
    await db?.destroy();
  });

  it("a pool that cannot connect logs a structured warning without a stack trace", async () => {
    const { log, lines } = capturedLogger();
    db = createDb(`postgres://nobody@127.0.0.1:${await freePort()}/nothing`, 1, log);
    await expect(db.raw("SELECT 1")).rejects.toThrow(/ECONNREFUSED/);
    const warnings = lines.filter((l) => l.msg === "postgres client");
    expect(warnings.length).toBeGreaterThan(0);
    for (const warning of warnings) {
      expect(warning.level).toBe("warn");
      expect(String(warning.message)).toMatch(/ECONNREFUSED/);
      expect(String(warning.message)).not.toContain("\n");
    }
  });
});
