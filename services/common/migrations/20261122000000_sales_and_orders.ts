// Sales, orders and per-user counts. Postgres is the truth: its constraints
// refuse oversell (sales.sold <= total_stock), duplicate orders (primary key on
// the reservation id, one order per buyer request) and over-limit buyers
// (sale_buyers.units <= per_user_limit) whatever the application does.
import type { Knex } from "knex";

// Timestamps in milliseconds, as a JS Date (and so a page token) carries them:
// a finer one would make a cursor skip rows written in the same millisecond.
const NOW_MS = "date_trunc('milliseconds', now())";

export async function up(knex: Knex): Promise<void> {
  await knex.schema.createTable("sales", (t) => {
    t.text("id").primary().comment("ULID chosen by the inventory service");
    t.text("create_request_id").notNullable().unique("sales_create_request_id_key").comment("CreateSale idempotency key");
    t.text("name").notNullable();
    t.integer("total_stock").notNullable().comment("units on sale");
    t.integer("sold").notNullable().defaultTo(0).comment("units in persisted, unreleased orders");
    t.bigInteger("price_minor").notNullable().comment("unit price in the currency's minor unit");
    t.specificType("currency", "char(3)").notNullable();
    t.timestamp("starts_at", { useTz: true }).notNullable();
    t.timestamp("ends_at", { useTz: true }).notNullable();
    t.integer("per_user_limit").notNullable();
    t.integer("payment_window_seconds").notNullable();
    t.timestamp("closed_at", { useTz: true }).nullable().comment("set when an operator closes the sale early");
    t.timestamp("created_at", { useTz: true }).notNullable().defaultTo(knex.raw(NOW_MS));
    t.index(["created_at", "id"], "sales_created_at_idx");
  });
  await knex.raw(`
    ALTER TABLE sales
      ADD CONSTRAINT sales_id_format CHECK (id ~ '^[0-9A-HJKMNP-TV-Z]{26}$'),
      ADD CONSTRAINT sales_name_length CHECK (char_length(name) BETWEEN 1 AND 200),
      ADD CONSTRAINT sales_total_stock_range CHECK (total_stock BETWEEN 1 AND 1000000),
      ADD CONSTRAINT sales_sold_within_stock CHECK (sold >= 0 AND sold <= total_stock),
      ADD CONSTRAINT sales_price_range CHECK (price_minor BETWEEN 0 AND 1000000000000),
      ADD CONSTRAINT sales_currency_format CHECK (currency ~ '^[A-Z]{3}$'),
      ADD CONSTRAINT sales_window CHECK (ends_at > starts_at),
      ADD CONSTRAINT sales_per_user_limit_range CHECK (per_user_limit BETWEEN 1 AND 100),
      ADD CONSTRAINT sales_payment_window_range CHECK (payment_window_seconds BETWEEN 60 AND 604800)
  `);

  await knex.schema.createTable("orders", (t) => {
    t.text("id").primary().comment("the reservation id: <sale id>-<ULID>");
    t.text("sale_id").notNullable().references("id").inTable("sales").withKeyName("orders_sale_id_fkey");
    t.text("user_id").notNullable();
    t.text("request_id").notNullable().comment("the buyer's PlaceOrder idempotency key");
    t.integer("quantity").notNullable();
    t.text("status").notNullable();
    t.bigInteger("unit_price_minor").notNullable();
    t.specificType("currency", "char(3)").notNullable();
    t.timestamp("reserved_at", { useTz: true }).notNullable().comment("when Redis recorded the reservation");
    t.timestamp("created_at", { useTz: true }).notNullable().defaultTo(knex.raw(NOW_MS)).comment("when the writer persisted it");
    t.timestamp("pay_by", { useTz: true }).notNullable().comment("reserved_at plus the sale's payment window");
    t.timestamp("updated_at", { useTz: true }).notNullable().defaultTo(knex.raw(NOW_MS));
    t.timestamp("paid_at", { useTz: true }).nullable();
    t.text("payment_reference").nullable();
    t.text("pay_request_id").nullable().comment("the PayOrder idempotency key that paid the order");
    t.timestamp("released_at", { useTz: true }).nullable().comment("when the units went back to stock");
    t.unique(["sale_id", "user_id", "request_id"], { indexName: "orders_one_per_request_key" });
    t.index(["user_id", "created_at"], "orders_user_created_idx");
    t.index(["sale_id", "status"], "orders_sale_status_idx");
  });
  await knex.raw(`
    ALTER TABLE orders
      ADD CONSTRAINT orders_quantity_range CHECK (quantity BETWEEN 1 AND 100),
      ADD CONSTRAINT orders_status_known CHECK (status IN ('CREATED', 'PAID', 'CANCELLED', 'EXPIRED')),
      ADD CONSTRAINT orders_released_when_final CHECK ((released_at IS NOT NULL) = (status IN ('CANCELLED', 'EXPIRED'))),
      ADD CONSTRAINT orders_paid_has_time CHECK ((status = 'PAID') = (paid_at IS NOT NULL)),
      ADD CONSTRAINT orders_paid_has_request CHECK ((status = 'PAID') = (pay_request_id IS NOT NULL))
  `);

  await knex.schema.createTable("sale_buyers", (t) => {
    t.text("sale_id").notNullable().references("id").inTable("sales").withKeyName("sale_buyers_sale_id_fkey");
    t.text("user_id").notNullable();
    t.integer("units").notNullable().comment("units in the user's persisted, unreleased orders");
    t.integer("per_user_limit").notNullable().comment("copied from the sale so a CHECK can hold it");
    t.primary(["sale_id", "user_id"], { constraintName: "sale_buyers_pkey" });
  });
  await knex.raw(`
    ALTER TABLE sale_buyers
      ADD CONSTRAINT sale_buyers_within_limit CHECK (units >= 0 AND units <= per_user_limit)
  `);
}

export async function down(knex: Knex): Promise<void> {
  await knex.schema.dropTable("sale_buyers");
  await knex.schema.dropTable("orders");
  await knex.schema.dropTable("sales");
}
