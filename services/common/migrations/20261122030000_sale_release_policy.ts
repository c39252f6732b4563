// What releasing an order (cancelled, or expired unpaid) does to its buyer's
// per-user allowance, per sale: RESTORE gives the units back to the buyer's
// allowance (sale_buyers.units goes down with sales.sold), KEEP leaves them
// counted (only sales.sold goes down: the units return to stock for others).
// Existing sales are RESTORE, as they always behaved.
import type { Knex } from "knex";

export async function up(knex: Knex): Promise<void> {
  await knex.schema.alterTable("sales", (t) => {
    t.text("release_policy").notNullable().defaultTo("RESTORE").comment("RESTORE or KEEP: whether a released order gives its units back to the buyer's allowance");
  });
  await knex.raw(`ALTER TABLE sales ADD CONSTRAINT sales_release_policy_known CHECK (release_policy IN ('RESTORE', 'KEEP'))`);
  await knex.raw(
    `COMMENT ON COLUMN sale_buyers.units IS 'units counted against the user''s per-user limit: those of persisted, unreleased orders, plus those of released orders when the sale''s release_policy is KEEP'`,
  );
}

export async function down(knex: Knex): Promise<void> {
  await knex.raw(`COMMENT ON COLUMN sale_buyers.units IS 'units in the user''s persisted, unreleased orders'`);
  await knex.schema.alterTable("sales", (t) => {
    t.dropColumn("release_policy");
  });
}
