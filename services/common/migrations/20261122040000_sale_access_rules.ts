// A sale's access rules (SaleAccessRules): whether a challenge comes before a
// purchase token, the allow and block lists, and the minimum account age. The
// gateway reads them when it issues purchase tokens; nothing else queries
// inside them, so they are one jsonb value. Existing sales have no rules.
import type { Knex } from "knex";

export async function up(knex: Knex): Promise<void> {
  await knex.schema.alterTable("sales", (t) => {
    t.jsonb("access_rules")
      .notNullable()
      .defaultTo(knex.raw(`'{}'::jsonb`))
      .comment("who may get a purchase token: {challenge_required, allowed_users, blocked_users, min_account_age_seconds}; {} means anyone, no challenge");
  });
  await knex.raw(`ALTER TABLE sales ADD CONSTRAINT sales_access_rules_object CHECK (jsonb_typeof(access_rules) = 'object')`);
}

export async function down(knex: Knex): Promise<void> {
  await knex.schema.alterTable("sales", (t) => {
    t.dropColumn("access_rules");
  });
}
