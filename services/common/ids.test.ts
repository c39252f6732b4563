import { describe, expect, it } from "vitest";
import { isRequestId, isSaleId, isUserId, newOrderId, saleOfOrderId, ulid } from "./ids.js";

describe("ids", () => {
  it("makes 26-character ULIDs that sort by time", () => {
    const early = ulid(1_700_000_000_000);
    const late = ulid(1_700_000_000_001);
    expect(early).toMatch(/^[0-9A-HJKMNP-TV-Z]{26}$/);
    expect(early < late).toBe(true);
    expect(isSaleId(early)).toBe(true);
  });

  it("never repeats within a burst", () => {
    const seen = new Set(Array.from({ length: 20_000 }, () => ulid(1)));
    expect(seen.size).toBe(20_000);
  });

  it("recovers the sale from an order id and rejects malformed ones", () => {
    const sale = ulid();
    expect(saleOfOrderId(newOrderId(sale))).toBe(sale);
    expect(saleOfOrderId(`${sale}-short`)).toBeUndefined();
    expect(saleOfOrderId(`${sale.toLowerCase()}-${ulid()}`)).toBeUndefined();
    expect(saleOfOrderId("")).toBeUndefined();
  });

  it("bounds request and user ids", () => {
    expect(isRequestId("a".repeat(64))).toBe(true);
    expect(isRequestId("a".repeat(65))).toBe(false);
    expect(isRequestId("")).toBe(false);
    expect(isRequestId("has space")).toBe(false);
    expect(isRequestId("pipe|sep")).toBe(false);
    expect(isUserId("alice@example.com")).toBe(true);
    expect(isUserId("bob\n")).toBe(false);
  });
});
