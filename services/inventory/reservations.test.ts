// Unit tests (no network) for attemptProblem: which field of a Reserve item is
// malformed, if any.
import { describe, expect, it } from "vitest";
import type { ReserveItem } from "@seckill/sdk";
import { ulid } from "../common/ids.js";
import { attemptProblem, MAX_QUANTITY } from "./reservations.js";

const SALE = ulid(1_900_000_000_000);

const item = (overrides: Partial<ReserveItem> = {}): ReserveItem => ({
  saleId: SALE,
  userId: "alice",
  requestId: "req-1",
  quantity: 1,
  ...overrides,
});

describe("attemptProblem", () => {
  it("finds nothing wrong with a well-formed item", () => {
    expect(attemptProblem(item())).toBeUndefined();
  });

  const wellFormed: [string, Partial<ReserveItem>][] = [
    ["user_id of 1 character", { userId: "u" }],
    ["user_id of 64 characters", { userId: "u".repeat(64) }],
    ["an e-mail-like user_id", { userId: "alice@example.com" }],
    ["user_id using every allowed symbol", { userId: "Az09._:@-" }],
    ["request_id of 1 character", { requestId: "r" }],
    ["request_id of 64 characters", { requestId: "r".repeat(64) }],
    ["request_id using every allowed symbol", { requestId: "Az09._:-" }],
    ["quantity 1", { quantity: 1 }],
    [`quantity ${MAX_QUANTITY}`, { quantity: MAX_QUANTITY }],
  ];

  it.each(wellFormed)("accepts %s", (_what, overrides) => {
    expect(attemptProblem(item(overrides))).toBeUndefined();
  });

  const malformed: [string, Partial<ReserveItem>][] = [
    ["sale_id", { saleId: "" }],
    ["sale_id", { saleId: SALE.slice(1) }],
    ["sale_id", { saleId: `${SALE}0` }],
    ["sale_id", { saleId: SALE.toLowerCase() }],
    ["sale_id", { saleId: `${SALE.slice(0, 25)}U` }],
    ["sale_id", { saleId: `${SALE.slice(0, 25)}I` }],
    ["sale_id", { saleId: `${SALE}-${ulid()}` }],
    ["user_id", { userId: "" }],
    ["user_id", { userId: "u".repeat(65) }],
    ["user_id", { userId: "has space" }],
    ["user_id", { userId: "pipe|user" }],
    ["user_id", { userId: "new\nline" }],
    ["request_id", { requestId: "" }],
    ["request_id", { requestId: "r".repeat(65) }],
    ["request_id", { requestId: "has space" }],
    ["request_id", { requestId: "pipe|request" }],
    ["request_id", { requestId: "at@sign" }],
    ["quantity", { quantity: 0 }],
    ["quantity", { quantity: -1 }],
    ["quantity", { quantity: MAX_QUANTITY + 1 }],
    ["quantity", { quantity: 1.5 }],
    ["quantity", { quantity: Number.NaN }],
    ["quantity", { quantity: Number.POSITIVE_INFINITY }],
  ];

  it.each(malformed)("names %s for %o", (field, overrides) => {
    expect(attemptProblem(item(overrides))).toBe(field);
  });

  it("names the first malformed field in sale, user, request, quantity order", () => {
    const allBad = { saleId: "x", userId: "", requestId: "", quantity: 0 };
    expect(attemptProblem(item(allBad))).toBe("sale_id");
    expect(attemptProblem(item({ ...allBad, saleId: SALE }))).toBe("user_id");
    expect(attemptProblem(item({ ...allBad, saleId: SALE, userId: "bob" }))).toBe("request_id");
    expect(attemptProblem(item({ ...allBad, saleId: SALE, userId: "bob", requestId: "r" }))).toBe("quantity");
  });
});
