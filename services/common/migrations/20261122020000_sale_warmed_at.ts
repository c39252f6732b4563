// Remembers that a sale has been loaded into Redis. A sale that Postgres says
// was loaded but Redis does not hold has lost its Redis state (a restart
// without persistence): it is then rebuilt only once every acknowledged
// reservation has reached Postgres, never reloaded blindly.
import type { Knex } from "knex";

export async function up(knex: Knex): Promise<void> {
  await knex.schema.alterTable("sales", (t) => {
    t.timestamp("warmed_at", { useTz: true }).nullable().comment("first time the sale was loaded into Redis");
  });
}

export async function down(knex: Knex): Promise<void> {
  await knex.schema.alterTable("sales", (t) => {
    t.dropColumn("warmed_at");
  });
}
