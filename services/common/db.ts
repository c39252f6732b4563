// The Postgres connection pool (knex over pg) and the one-time set-up of the
// isolated database: its own role and database, created with the admin URL,
// then migrated with the service's own URL.
import knexFactory, { type Knex } from "knex";
import { errorMessage } from "./error-message.js";
import pg from "pg";
import type { Logger } from "./log.js";
import { migrationSource } from "./migrations/index.js";

// BIGINT (price_minor) fits in a JS number for the values CHECKs allow.
pg.types.setTypeParser(pg.types.builtins.INT8, (v) => Number(v));

export type Db = Knex;

/** How long a repeated knex warning (the same first line) is counted instead of written again. */
const REPEAT_WINDOW_MS = 5000;

/**
 * knex's own messages as structured lines of the service's log: a failed
 * connection attempt is one warning (its first line, no stack), written at
 * most once per REPEAT_WINDOW_MS while it repeats (Postgres down would
 * otherwise print a stack trace per attempt), with the count left out since
 * it was last written (`repeated`).
 */
export function knexLog(log: Logger, nowMs: () => number = Date.now): Required<Pick<NonNullable<Knex.Config["log"]>, "warn" | "error" | "deprecate" | "debug">> {
  /** By first line: when it was last written, and how many times it came since. */
  const recent = new Map<string, { at: number; repeats: number }>();
  const firstLine = (message: unknown) => errorMessage(message).split("\n")[0];
  return {
    warn(message) {
      const line = firstLine(message);
      const now = nowMs();
      const seen = recent.get(line);
      if (seen && now - seen.at < REPEAT_WINDOW_MS) {
        seen.repeats++;
        return;
      }
      log.warn("postgres client", { message: line, ...(seen && seen.repeats > 0 && { repeated: seen.repeats }) });
      if (recent.size >= 100) recent.clear();
      recent.set(line, { at: now, repeats: 0 });
    },
    error: (message) => log.error("postgres client", { message: firstLine(message) }),
    // knex calls it with one formatted message, whatever its type declarations say.
    deprecate: (message: unknown) => log.warn("knex deprecation", { message: firstLine(message) }),
    debug: (message) => log.debug("knex", { message: firstLine(message) }),
  };
}

/** The pool; with a logger, knex's own messages go to it (knexLog) instead of the console. */
export function createDb(url: string, poolMax: number, log?: Logger): Db {
  return knexFactory({
    client: "pg",
    connection: { connectionString: url, application_name: "seckill", statement_timeout: 10_000 },
    pool: { min: 0, max: poolMax, acquireTimeoutMillis: 5000 },
    acquireConnectionTimeout: 5000,
    ...(log && { log: knexLog(log) }),
  });
}

const quoteIdent = (name: string) => `"${name.replace(/"/g, '""')}"`;
const quoteLiteral = (value: string) => `'${value.replace(/'/g, "''")}'`;

/** Creates the role and database named in databaseUrl when missing (needs a superuser adminUrl). */
export async function ensureDatabase(adminUrl: string, databaseUrl: string): Promise<void> {
  const target = new URL(databaseUrl);
  const database = decodeURIComponent(target.pathname.slice(1));
  const role = decodeURIComponent(target.username);
  const password = decodeURIComponent(target.password);
  if (!database || !role) throw new Error("DATABASE_URL must name a user and a database");
  const admin = new pg.Client({ connectionString: adminUrl });
  await admin.connect();
  try {
    const roles = await admin.query("SELECT 1 FROM pg_roles WHERE rolname = $1", [role]);
    if (roles.rowCount === 0) {
      await admin.query(`CREATE ROLE ${quoteIdent(role)} LOGIN${password ? ` PASSWORD ${quoteLiteral(password)}` : ""}`);
    }
    const dbs = await admin.query("SELECT 1 FROM pg_database WHERE datname = $1", [database]);
    if (dbs.rowCount === 0) {
      try {
        await admin.query(`CREATE DATABASE ${quoteIdent(database)} OWNER ${quoteIdent(role)}`);
      } catch (error) {
        // Another process created it at the same moment.
        if ((error as { code?: string }).code !== "42P04") throw error;
      }
    }
  } finally {
    await admin.end();
  }
}

export async function dropDatabase(adminUrl: string, database: string): Promise<void> {
  const admin = new pg.Client({ connectionString: adminUrl });
  await admin.connect();
  try {
    await admin.query(`DROP DATABASE IF EXISTS ${quoteIdent(database)} WITH (FORCE)`);
  } finally {
    await admin.end();
  }
}

export async function migrate(db: Db): Promise<string[]> {
  const [, applied] = (await db.migrate.latest({ migrationSource })) as [number, string[]];
  return applied;
}
