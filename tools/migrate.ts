// `node dist/migrate.mjs [--create-database]`: applies the database migrations
// with DATABASE_URL and exits; the Kubernetes migration Job runs it before the
// services roll out. With --create-database it first creates the role and
// database named in DATABASE_URL when missing, as DATABASE_ADMIN_URL (a
// superuser): for a Postgres of its own (dev, tests); where the role and
// database already exist, run it without the flag and without admin rights.
import { type Config, ConfigError, readConfig } from "../services/common/config.js";
import { createDb, ensureDatabase, migrate } from "../services/common/db.js";
import { createLogger } from "../services/common/log.js";

const args = process.argv.slice(2);
const unknown = args.filter((a) => a !== "--create-database");
if (unknown.length > 0) {
  process.stderr.write(`migrate: unknown argument ${unknown.join(" ")}; usage: migrate [--create-database]\n`);
  process.exit(2);
}

let config: Config;
try {
  config = readConfig();
} catch (error) {
  if (!(error instanceof ConfigError)) throw error;
  process.stderr.write(`migrate: ${error.message}\n`);
  process.exit(2);
}
const log = createLogger({ service: "migrate" }, config.logLevel);

try {
  if (args.includes("--create-database")) await ensureDatabase(config.databaseAdminUrl, config.databaseUrl);
  const db = createDb(config.databaseUrl, 1);
  try {
    const applied = await migrate(db);
    log.info("migrations applied", { applied, count: applied.length });
  } finally {
    await db.destroy();
  }
} catch (error) {
  log.error("migration failed", { err: error instanceof Error ? error : String(error) });
  process.exit(1);
}
