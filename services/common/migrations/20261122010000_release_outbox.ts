// The release outbox: a CANCELLED or EXPIRED order's StockReleased event is
// published to JetStream after the transaction that released it commits, and
// release_published_at records the PubAck. A relay republishes released rows
// still NULL (a crash between commit and publish); the expiry loop finds due
// CREATED orders by pay_by.
import type { Knex } from "knex";

export async function up(knex: Knex): Promise<void> {
  await knex.schema.alterTable("orders", (t) => {
    t.timestamp("release_published_at", { useTz: true }).nullable().comment("when the StockReleased event was acknowledged by JetStream");
  });
  // Orders released before this migration went back to Redis through InventoryService.Release.
  await knex.raw(`UPDATE orders SET release_published_at = released_at WHERE released_at IS NOT NULL`);
  await knex.raw(`CREATE INDEX orders_release_unpublished_idx ON orders (released_at) WHERE released_at IS NOT NULL AND release_published_at IS NULL`);
  await knex.raw(`CREATE INDEX orders_created_pay_by_idx ON orders (pay_by) WHERE status = 'CREATED'`);
}

export async function down(knex: Knex): Promise<void> {
  await knex.raw(`DROP INDEX IF EXISTS orders_created_pay_by_idx`);
  await knex.raw(`DROP INDEX IF EXISTS orders_release_unpublished_idx`);
  await knex.schema.alterTable("orders", (t) => t.dropColumn("release_published_at"));
}
