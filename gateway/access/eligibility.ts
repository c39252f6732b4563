// Who may buy in a sale, by its access rules (SaleAccessRules, stored with the
// sale): not on the block list, on the allow list when there is one, and an
// account at least the minimum age. The account's creation time comes from the
// BFF in `x-account-created-at`; like x-user-id it is trusted because only the
// BFF can set it (the edge strips it from external requests). Without it a
// sale with a minimum account age refuses: the rule fails closed.
import type { StoredAccessRules } from "../../services/common/sale-records.js";
import { refuse } from "../../services/common/refusal.js";

/** A sale's rules prepared for lookups (sets instead of lists). */
export interface EligibilityRules {
  challengeRequired: boolean;
  allowed: Set<string> | undefined;
  blocked: Set<string>;
  minAccountAgeMs: number;
}

export function eligibilityRulesOf(stored: StoredAccessRules | null | undefined): EligibilityRules {
  return {
    challengeRequired: stored?.challenge_required === true,
    allowed: stored?.allowed_users?.length ? new Set(stored.allowed_users) : undefined,
    blocked: new Set(stored?.blocked_users ?? []),
    minAccountAgeMs: (stored?.min_account_age_seconds ?? 0) * 1000,
  };
}

export interface Buyer {
  userId: string;
  /** From x-account-created-at; undefined when the BFF did not send it. */
  accountCreatedAt: Date | undefined;
}

/** Refuses NOT_ELIGIBLE, naming the rule, when the buyer may not buy in the sale. */
export function checkEligibility(rules: EligibilityRules, buyer: Buyer, now: Date): void {
  if (rules.blocked.has(buyer.userId)) throw refuse("NOT_ELIGIBLE", "the sale's block list excludes this user");
  if (rules.allowed && !rules.allowed.has(buyer.userId)) throw refuse("NOT_ELIGIBLE", "this user is not on the sale's allow list");
  if (rules.minAccountAgeMs > 0) {
    if (!buyer.accountCreatedAt) throw refuse("NOT_ELIGIBLE", "the sale has a minimum account age and no x-account-created-at was given");
    if (now.getTime() - buyer.accountCreatedAt.getTime() < rules.minAccountAgeMs) {
      throw refuse("NOT_ELIGIBLE", "the account is younger than the sale's minimum account age");
    }
  }
}

const RFC3339_RE = /^\d{4}-\d{2}-\d{2}[Tt ]\d{2}:\d{2}:\d{2}(\.\d{1,9})?([Zz]|[+-]\d{2}:\d{2})$/;

/** An RFC 3339 time (e.g. 2024-05-01T12:00:00Z); undefined when malformed. */
export function parseRfc3339(value: string): Date | undefined {
  if (!RFC3339_RE.test(value)) return undefined;
  const date = new Date(value.replace(" ", "T"));
  return Number.isNaN(date.getTime()) ? undefined : date;
}
