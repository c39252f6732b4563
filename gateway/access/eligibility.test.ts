// Sale access rules: how CreateSale validates and stores them, and who they let buy.
import { describe, expect, it } from "vitest";
import { Refusal } from "../../services/common/refusal.js";
import { MAX_LISTED_USERS, toAccessRules, validateAccessRules } from "../../services/inventory/sales.js";
import { checkEligibility, eligibilityRulesOf, parseRfc3339 } from "./eligibility.js";

const NOW = new Date("2026-01-01T12:00:00Z");
const DAY = 24 * 3600;

function refusalOf(fn: () => unknown): Refusal {
  try {
    fn();
  } catch (error) {
    if (error instanceof Refusal) return error;
    throw error;
  }
  throw new Error("expected a Refusal");
}

const rules = (r: Partial<Parameters<typeof validateAccessRules>[0] & object>) =>
  eligibilityRulesOf(validateAccessRules({ challengeRequired: false, allowedUsers: [], blockedUsers: [], minAccountAge: undefined, ...r }));

describe("validateAccessRules", () => {
  it("stores nothing for no rules, and only the rules that are set", () => {
    expect(validateAccessRules(undefined)).toEqual({});
    expect(validateAccessRules({ challengeRequired: false, allowedUsers: [], blockedUsers: [], minAccountAge: undefined })).toEqual({});
    expect(validateAccessRules({ challengeRequired: true, allowedUsers: ["a", "b", "a"], blockedUsers: ["m@x.io"], minAccountAge: { seconds: 7 * DAY, nanos: 0 } })).toEqual({
      challenge_required: true,
      allowed_users: ["a", "b"],
      blocked_users: ["m@x.io"],
      min_account_age_seconds: 7 * DAY,
    });
  });

  it("round-trips to the contract's shape", () => {
    const stored = validateAccessRules({ challengeRequired: true, allowedUsers: ["a"], blockedUsers: [], minAccountAge: { seconds: 60, nanos: 0 } });
    expect(toAccessRules(stored)).toEqual({ challengeRequired: true, allowedUsers: ["a"], blockedUsers: [], minAccountAge: { seconds: 60, nanos: 0 } });
    expect(toAccessRules({})).toEqual({ challengeRequired: false, allowedUsers: [], blockedUsers: [], minAccountAge: undefined });
  });

  it.each([
    ["access_rules.allowed_users", { allowedUsers: Array.from({ length: MAX_LISTED_USERS + 1 }, (_, i) => `u${i}`) }],
    ["access_rules.blocked_users", { blockedUsers: Array.from({ length: MAX_LISTED_USERS + 1 }, (_, i) => `u${i}`) }],
    ["access_rules.allowed_users", { allowedUsers: ["has space"] }],
    ["access_rules.blocked_users", { blockedUsers: [""] }],
    ["access_rules.blocked_users", { blockedUsers: ["x".repeat(65)] }],
    ["access_rules.min_account_age", { minAccountAge: { seconds: -1, nanos: 0 } }],
    ["access_rules.min_account_age", { minAccountAge: { seconds: 0, nanos: -5 } }],
    ["access_rules.min_account_age", { minAccountAge: { seconds: 3651 * DAY, nanos: 0 } }],
  ])("refuses %s: %j", (field, overrides) => {
    const r = refusalOf(() => validateAccessRules({ challengeRequired: false, allowedUsers: [], blockedUsers: [], minAccountAge: undefined, ...overrides }));
    expect(r.reason).toBe("INVALID_ARGUMENT");
    expect(r.extra.fieldViolations?.[0].field).toBe(field);
  });

  it("accepts full lists and the longest age", () => {
    const full = Array.from({ length: MAX_LISTED_USERS }, (_, i) => `u${i}`);
    expect(() => validateAccessRules({ challengeRequired: false, allowedUsers: full, blockedUsers: full, minAccountAge: { seconds: 3650 * DAY, nanos: 0 } })).not.toThrow();
  });
});

describe("checkEligibility", () => {
  const buyer = (userId: string, accountCreatedAt?: string) => ({ userId, accountCreatedAt: accountCreatedAt ? new Date(accountCreatedAt) : undefined });
  const refused = (fn: () => unknown) => {
    const r = refusalOf(fn);
    expect(r.reason).toBe("NOT_ELIGIBLE");
    return r.message;
  };

  it("lets anyone buy in a sale without rules", () => {
    expect(() => checkEligibility(rules({}), buyer("anyone"), NOW)).not.toThrow();
  });

  it("refuses a blocked user, even one on the allow list", () => {
    expect(refused(() => checkEligibility(rules({ blockedUsers: ["mallory"] }), buyer("mallory"), NOW))).toMatch(/block list/);
    expect(refused(() => checkEligibility(rules({ allowedUsers: ["mallory"], blockedUsers: ["mallory"] }), buyer("mallory"), NOW))).toMatch(/block list/);
    expect(() => checkEligibility(rules({ blockedUsers: ["mallory"] }), buyer("alice"), NOW)).not.toThrow();
  });

  it("refuses a user missing from the allow list", () => {
    expect(refused(() => checkEligibility(rules({ allowedUsers: ["alice"] }), buyer("bob"), NOW))).toMatch(/allow list/);
    expect(() => checkEligibility(rules({ allowedUsers: ["alice"] }), buyer("alice"), NOW)).not.toThrow();
  });

  it("refuses an account younger than the minimum age, or of unknown age", () => {
    const week = rules({ minAccountAge: { seconds: 7 * DAY, nanos: 0 } });
    expect(() => checkEligibility(week, buyer("old", "2025-12-25T12:00:00Z"), NOW)).not.toThrow();
    expect(refused(() => checkEligibility(week, buyer("young", "2025-12-25T12:00:01Z"), NOW))).toMatch(/younger/);
    expect(refused(() => checkEligibility(week, buyer("unknown"), NOW))).toMatch(/x-account-created-at/);
  });
});

describe("parseRfc3339", () => {
  it("reads RFC 3339 times with offsets and fractions, and nothing else", () => {
    expect(parseRfc3339("2024-05-01T12:00:00Z")?.toISOString()).toBe("2024-05-01T12:00:00.000Z");
    expect(parseRfc3339("2024-05-01T14:00:00.5+02:00")?.toISOString()).toBe("2024-05-01T12:00:00.500Z");
    expect(parseRfc3339("2024-05-01T12:00:00.123456789Z")?.toISOString()).toBe("2024-05-01T12:00:00.123Z");
    for (const bad of ["2024-05-01", "yesterday", "1714564800", "2024-13-01T12:00:00Z", "2024-05-01T12:00:00"]) expect(parseRfc3339(bad)).toBeUndefined();
  });
});
