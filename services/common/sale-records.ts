// Sales in Postgres as every process reads them: inventory owns the table and
// writes it (inventory/sale-repository.ts); the gateway only reads a sale to
// decide who may get a purchase token.
import type { Knex } from "knex";

/**
 * What a release does to the buyer's count: RESTORE takes the units off it (the
 * buyer may buy again), KEEP leaves them counted against the per-user limit.
 */
export type ReleasePolicyName = "RESTORE" | "KEEP";

export interface SaleRow {
  id: string;
  create_request_id: string;
  name: string;
  total_stock: number;
  sold: number;
  price_minor: number;
  currency: string;
  starts_at: Date;
  ends_at: Date;
  per_user_limit: number;
  payment_window_seconds: number;
  /** What a released order does to its buyer's allowance (sale_buyers.units). */
  release_policy: ReleasePolicyName;
  /** Who may get a purchase token (the gateway enforces them); {} for a sale without rules. */
  access_rules: StoredAccessRules;
  closed_at: Date | null;
  created_at: Date;
  warmed_at: Date | null;
}

/** SaleAccessRules as stored in sales.access_rules (jsonb); every field may be missing (no rule). */
export interface StoredAccessRules {
  challenge_required?: boolean;
  allowed_users?: string[];
  blocked_users?: string[];
  min_account_age_seconds?: number;
}

export async function findSale(db: Knex, id: string): Promise<SaleRow | undefined> {
  return db<SaleRow>("sales").where({ id }).first();
}
