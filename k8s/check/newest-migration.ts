import { migrationSource } from "../../services/common/migrations/index.js";

/** The timestamp that starts the newest database migration's name (services/common/migrations/index.ts): a valid name suffix. */
export async function newestMigrationId(): Promise<string> {
  const names = await migrationSource.getMigrations([]);
  return (names.at(-1) ?? "").split("_")[0];
}
