import { describe, expect, it } from "vitest";
import { formatMoney, formatTime, keyValues, table } from "./format.js";

describe("table", () => {
  it("aligns columns and right-aligns numbers", () => {
    const out = table(
      ["NAME", "UNITS"],
      [
        ["socks", 5],
        ["sneakers", 120],
      ],
    );
    expect(out.split("\n")).toEqual(["NAME      UNITS", "--------  -----", "socks         5", "sneakers    120"]);
  });
});

describe("keyValues", () => {
  it("pads the labels", () => {
    expect(
      keyValues([
        ["a", 1],
        ["long label", "x"],
      ]),
    ).toBe("a           1\nlong label  x");
  });
});

describe("formatMoney / formatTime", () => {
  it("prints minor units with two decimals", () => {
    expect(formatMoney(1999, "EUR")).toBe("19.99 EUR");
    expect(formatMoney(5, "USD")).toBe("0.05 USD");
  });
  it("prints UTC without milliseconds", () => {
    expect(formatTime(new Date("2026-11-22T21:04:05.678Z"))).toBe("2026-11-22 21:04:05Z");
    expect(formatTime(undefined)).toBe("");
  });
});
