// Unit tests (no network) for the pure parts of the sale domain: validation of
// CreateSale, the phase a sale is in, and when its purchases end.
import { describe, expect, it } from "vitest";
import { ReleasePolicy, SalePhase, type CreateSaleRequest } from "@seckill/sdk";
import { Refusal } from "../common/refusal.js";
import type { SaleRow } from "./sale-repository.js";
import { phaseOf, windowEndMs, windowOf } from "../common/sale-window.js";
import { toSale, validateCreateSale } from "./sales.js";

const T0 = new Date("2030-01-01T12:00:00.000Z");
const at = (offsetMs: number) => new Date(T0.getTime() + offsetMs);
const DAY_MS = 24 * 3600 * 1000;

function request(overrides: Partial<CreateSaleRequest> = {}): CreateSaleRequest {
  return {
    requestId: "create-1",
    name: "Gadget drop",
    totalStock: 100,
    priceMinor: 1999,
    currency: "EUR",
    startsAt: T0,
    endsAt: at(3600_000),
    perUserLimit: 2,
    paymentWindowSeconds: 600,
    releasePolicy: ReleasePolicy.RELEASE_POLICY_UNSPECIFIED,
    accessRules: undefined,
    ...overrides,
  };
}

/** The Refusal fn throws; fails the test when it returns or throws something else. */
function refusalOf(fn: () => unknown): Refusal {
  try {
    fn();
  } catch (error) {
    expect(error).toBeInstanceOf(Refusal);
    return error as Refusal;
  }
  throw new Error("expected a Refusal, but the call succeeded");
}

describe("validateCreateSale", () => {
  it("accepts a well-formed request and maps it to a row", () => {
    expect(validateCreateSale(request())).toEqual({
      id: "",
      create_request_id: "create-1",
      name: "Gadget drop",
      total_stock: 100,
      price_minor: 1999,
      currency: "EUR",
      starts_at: T0,
      ends_at: at(3600_000),
      per_user_limit: 2,
      payment_window_seconds: 600,
      release_policy: "RESTORE",
      access_rules: {},
    });
  });

  it("maps the release policy: unspecified and RESTORE_ALLOWANCE restore, KEEP_ALLOWANCE keeps, and the sale shows it back", () => {
    const { RELEASE_POLICY_UNSPECIFIED, RELEASE_POLICY_RESTORE_ALLOWANCE, RELEASE_POLICY_KEEP_ALLOWANCE } = ReleasePolicy;
    expect(validateCreateSale(request({ releasePolicy: RELEASE_POLICY_UNSPECIFIED })).release_policy).toBe("RESTORE");
    expect(validateCreateSale(request({ releasePolicy: RELEASE_POLICY_RESTORE_ALLOWANCE })).release_policy).toBe("RESTORE");
    expect(validateCreateSale(request({ releasePolicy: RELEASE_POLICY_KEEP_ALLOWANCE })).release_policy).toBe("KEEP");
    expect(toSale(row({ release_policy: "KEEP" })).releasePolicy).toBe(RELEASE_POLICY_KEEP_ALLOWANCE);
    expect(toSale(row({ release_policy: "RESTORE" })).releasePolicy).toBe(RELEASE_POLICY_RESTORE_ALLOWANCE);
  });

  it("defaults per_user_limit to 1 and payment_window_seconds to 900 when 0", () => {
    const draft = validateCreateSale(request({ perUserLimit: 0, paymentWindowSeconds: 0 }));
    expect(draft.per_user_limit).toBe(1);
    expect(draft.payment_window_seconds).toBe(900);
  });

  it("trims the name", () => {
    expect(validateCreateSale(request({ name: "  Gadget  " })).name).toBe("Gadget");
  });

  const refused: [string, Partial<CreateSaleRequest>][] = [
    ["request_id", { requestId: "" }],
    ["request_id", { requestId: "r".repeat(65) }],
    ["request_id", { requestId: "has space" }],
    ["request_id", { requestId: "pipe|separated" }],
    ["request_id", { requestId: "at@sign" }],
    ["request_id", { requestId: "ünïcode" }],
    ["name", { name: "" }],
    ["name", { name: "   " }],
    ["name", { name: "n".repeat(201) }],
    ["name", { name: "😀".repeat(201) }],
    ["name", { name: "nul\u0000inside" }],
    ["total_stock", { totalStock: 0 }],
    ["total_stock", { totalStock: -1 }],
    ["total_stock", { totalStock: 1_000_001 }],
    ["total_stock", { totalStock: 1.5 }],
    ["price_minor", { priceMinor: -1 }],
    ["price_minor", { priceMinor: 1_000_000_000_001 }],
    ["price_minor", { priceMinor: 0.5 }],
    ["price_minor", { priceMinor: Number.NaN }],
    ["currency", { currency: "" }],
    ["currency", { currency: "eur" }],
    ["currency", { currency: "EU" }],
    ["currency", { currency: "EURO" }],
    ["currency", { currency: "E1R" }],
    ["starts_at", { startsAt: undefined }],
    ["starts_at", { startsAt: new Date(Number.NaN) }],
    ["ends_at", { endsAt: undefined }],
    ["ends_at", { endsAt: new Date(Number.NaN) }],
    ["ends_at", { endsAt: T0 }],
    ["ends_at", { endsAt: at(-1) }],
    ["ends_at", { endsAt: at(30 * DAY_MS + 1) }],
    ["per_user_limit", { perUserLimit: -1 }],
    ["per_user_limit", { perUserLimit: 101 }],
    ["payment_window_seconds", { paymentWindowSeconds: -1 }],
    ["payment_window_seconds", { paymentWindowSeconds: 59 }],
    ["payment_window_seconds", { paymentWindowSeconds: 604_801 }],
    ["release_policy", { releasePolicy: 3 as ReleasePolicy }],
    ["release_policy", { releasePolicy: 99 as ReleasePolicy }],
    ["release_policy", { releasePolicy: ReleasePolicy.UNRECOGNIZED }],
  ];

  it.each(refused)("refuses %s in %o with INVALID_ARGUMENT naming the field", (field, overrides) => {
    const refusal = refusalOf(() => validateCreateSale(request(overrides)));
    expect(refusal.reason).toBe("INVALID_ARGUMENT");
    expect(refusal.extra.fieldViolations).toHaveLength(1);
    expect(refusal.extra.fieldViolations![0].field).toBe(field);
    expect(refusal.extra.fieldViolations![0].description).not.toBe("");
    expect(refusal.message).toContain(field);
  });

  const accepted: [string, Partial<CreateSaleRequest>][] = [
    ["request_id of 1 character", { requestId: "r" }],
    ["request_id of 64 characters", { requestId: "r".repeat(64) }],
    ["request_id using every allowed symbol", { requestId: "Az09._:-" }],
    ["name of 1 character", { name: "n" }],
    ["name of 200 characters", { name: "n".repeat(200) }],
    ["name of 200 characters outside the BMP", { name: "😀".repeat(200) }],
    ["total_stock 1", { totalStock: 1 }],
    ["total_stock 1,000,000", { totalStock: 1_000_000 }],
    ["price_minor 0", { priceMinor: 0 }],
    ["price_minor 1,000,000,000,000", { priceMinor: 1_000_000_000_000 }],
    ["ends_at 1 ms after starts_at", { endsAt: at(1) }],
    ["ends_at exactly 30 days after starts_at", { endsAt: at(30 * DAY_MS) }],
    ["starts_at in the past", { startsAt: new Date("2001-01-01T00:00:00Z"), endsAt: new Date("2001-01-02T00:00:00Z") }],
    ["per_user_limit 1", { perUserLimit: 1 }],
    ["per_user_limit 100", { perUserLimit: 100 }],
    ["payment_window_seconds 60", { paymentWindowSeconds: 60 }],
    ["payment_window_seconds 604,800", { paymentWindowSeconds: 604_800 }],
  ];

  it.each(accepted)("accepts %s", (_what, overrides) => {
    expect(() => validateCreateSale(request(overrides))).not.toThrow();
  });
});

function row(overrides: Partial<SaleRow> = {}): SaleRow {
  return {
    id: "01JABCDEFGHJKMNPQRSTVWXYZ0",
    create_request_id: "create-1",
    name: "Gadget drop",
    total_stock: 10,
    sold: 0,
    price_minor: 1999,
    currency: "EUR",
    starts_at: T0,
    ends_at: at(3600_000),
    per_user_limit: 1,
    payment_window_seconds: 900,
    release_policy: "RESTORE",
    access_rules: {},
    closed_at: null,
    created_at: at(-DAY_MS),
    warmed_at: null,
    ...overrides,
  };
}

describe("phaseOf", () => {
  const { SALE_PHASE_NOT_STARTED: NOT_STARTED, SALE_PHASE_OPEN: OPEN, SALE_PHASE_SOLD_OUT: SOLD_OUT, SALE_PHASE_ENDED: ENDED } = SalePhase;
  const cases: [string, Partial<SaleRow>, number, Date, SalePhase][] = [
    ["before starts_at", {}, 10, at(-1), NOT_STARTED],
    ["long before starts_at", {}, 10, at(-DAY_MS), NOT_STARTED],
    ["before starts_at with no stock left", {}, 0, at(-1), NOT_STARTED],
    ["at starts_at", {}, 10, T0, OPEN],
    ["between start and end with stock", {}, 1, at(1800_000), OPEN],
    ["between start and end with no stock", {}, 0, at(1800_000), SOLD_OUT],
    ["1 ms before ends_at", {}, 5, at(3600_000 - 1), OPEN],
    ["at ends_at", {}, 5, at(3600_000), ENDED],
    ["after ends_at", {}, 5, at(7200_000), ENDED],
    ["after ends_at with no stock", {}, 0, at(7200_000), ENDED],
    ["closed while open", { closed_at: at(60_000) }, 5, at(120_000), ENDED],
    ["closed and sold out", { closed_at: at(60_000) }, 0, at(120_000), ENDED],
    ["closed before it started", { closed_at: at(-60_000) }, 10, at(-30_000), ENDED],
    ["closed after it had ended", { closed_at: at(7200_000) }, 5, at(7300_000), ENDED],
  ];

  it.each(cases)("%s", (_what, overrides, stockLeft, now, expected) => {
    expect(phaseOf(row(overrides), stockLeft, now)).toBe(expected);
  });
});

/** When purchases end for a sale row. */
const effectiveEnd = (r: Parameters<typeof windowOf>[0]) => new Date(windowEndMs(windowOf(r)));

describe("windowEndMs", () => {
  it("is ends_at when the sale was not closed", () => {
    expect(effectiveEnd(row())).toEqual(at(3600_000));
  });

  it("is closed_at when the sale was closed before ends_at", () => {
    expect(effectiveEnd(row({ closed_at: at(60_000) }))).toEqual(at(60_000));
    expect(effectiveEnd(row({ closed_at: at(-60_000) }))).toEqual(at(-60_000));
  });

  it("is ends_at when the sale was closed at or after ends_at", () => {
    expect(effectiveEnd(row({ closed_at: at(3600_000) })).getTime()).toBe(at(3600_000).getTime());
    expect(effectiveEnd(row({ closed_at: at(7200_000) }))).toEqual(at(3600_000));
  });
});
