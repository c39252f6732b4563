// Migrations listed in code (not discovered on disk) so that they load the same
// way under tsx, vitest and a bundle. Append new ones; never edit a shipped one.
import type { Knex } from "knex";
import * as salesAndOrders from "./20261122000000_sales_and_orders.js";
import * as releaseOutbox from "./20261122010000_release_outbox.js";
import * as saleWarmedAt from "./20261122020000_sale_warmed_at.js";
import * as saleReleasePolicy from "./20261122030000_sale_release_policy.js";
import * as saleAccessRules from "./20261122040000_sale_access_rules.js";

const MIGRATIONS: Record<string, Knex.Migration> = {
  "20261122000000_sales_and_orders": salesAndOrders,
  "20261122010000_release_outbox": releaseOutbox,
  "20261122020000_sale_warmed_at": saleWarmedAt,
  "20261122030000_sale_release_policy": saleReleasePolicy,
  "20261122040000_sale_access_rules": saleAccessRules,
};

export const migrationSource: Knex.MigrationSource<string> = {
  getMigrations: async () => Object.keys(MIGRATIONS).sort(),
  getMigrationName: (name) => name,
  getMigration: async (name) => MIGRATIONS[name],
};
