import { describe, expect, it } from "vitest";
import { ReleasePolicy, SalePhase } from "@seckill/sdk";
import { countdown, createSaleRequest } from "./sale-commands.js";

const base = { stock: 10, price: 1999, currency: "eur", perUserLimit: 1, paymentWindow: 900_000 };
const now = new Date("2026-11-22T20:00:00Z");

describe("createSaleRequest", () => {
  it("starts now and lasts an hour by default", () => {
    const r = createSaleRequest(base, now);
    expect(r.startsAt).toEqual(now);
    expect(r.endsAt).toEqual(new Date("2026-11-22T21:00:00Z"));
    expect(r.currency).toBe("EUR");
    expect(r.paymentWindowSeconds).toBe(900);
    expect(r.requestId).toMatch(/^cli-[0-9a-f]{16}$/);
  });

  it("takes --starts-in and --duration, or absolute times", () => {
    const r = createSaleRequest({ ...base, startsIn: 10_000, duration: 300_000, requestId: "mine" }, now);
    expect(r.startsAt).toEqual(new Date("2026-11-22T20:00:10Z"));
    expect(r.endsAt).toEqual(new Date("2026-11-22T20:05:10Z"));
    expect(r.requestId).toBe("mine");
    const abs = createSaleRequest({ ...base, startsAt: new Date("2026-12-01T00:00:00Z"), endsAt: new Date("2026-12-01T01:00:00Z") }, now);
    expect(abs.endsAt!.getTime() - abs.startsAt!.getTime()).toBe(3_600_000);
  });

  it("asks for the restore release policy by default, and keep with --release-policy keep", () => {
    expect(createSaleRequest(base, now).releasePolicy).toBe(ReleasePolicy.RELEASE_POLICY_RESTORE_ALLOWANCE);
    expect(createSaleRequest({ ...base, releasePolicy: "restore" }, now).releasePolicy).toBe(ReleasePolicy.RELEASE_POLICY_RESTORE_ALLOWANCE);
    expect(createSaleRequest({ ...base, releasePolicy: "keep" }, now).releasePolicy).toBe(ReleasePolicy.RELEASE_POLICY_KEEP_ALLOWANCE);
  });

  it("refuses an end before the start and a fractional payment window", () => {
    expect(() => createSaleRequest({ ...base, endsAt: new Date("2026-11-22T19:00:00Z") }, now)).toThrow(/end after it starts/);
    expect(() => createSaleRequest({ ...base, paymentWindow: 1500 }, now)).toThrow(/whole seconds/);
  });
});

describe("countdown", () => {
  const startsAt = new Date("2026-11-22T20:00:00Z");
  const endsAt = new Date("2026-11-22T21:00:00Z");
  it("counts down to the opening, then to the end, from the server's clock", () => {
    expect(countdown({ phase: SalePhase.SALE_PHASE_NOT_STARTED, serverTime: new Date("2026-11-22T19:59:55Z"), startsAt, endsAt })).toBe("opens in 5.00 s");
    expect(countdown({ phase: SalePhase.SALE_PHASE_OPEN, serverTime: new Date("2026-11-22T20:30:00Z"), startsAt, endsAt })).toBe("closes in 30m");
    expect(countdown({ phase: SalePhase.SALE_PHASE_ENDED, serverTime: new Date("2026-11-22T21:00:02Z"), startsAt, endsAt })).toBe("ended 2.00 s ago");
  });
});
