import { describe, expect, it } from "vitest";
import { formatDuration, parseDuration } from "./duration.js";

describe("parseDuration", () => {
  it.each([
    ["500ms", 500],
    ["10s", 10_000],
    ["5m", 300_000],
    ["1h30m", 5_400_000],
    ["2d", 172_800_000],
    ["1.5s", 1500],
    ["3", 3000],
    [" 1m30s ", 90_000],
    ["0s", 0],
  ])("%s is %d ms", (text, ms) => expect(parseDuration(text)).toBe(ms));

  it.each(["", "abc", "10x", "s", "-5s", "1h 30m", "5sm"])("rejects %j", (text) => expect(() => parseDuration(text)).toThrow());
});

describe("formatDuration", () => {
  it.each([
    [120, "120 ms"],
    [3400, "3.40 s"],
    [42_000, "42.0 s"],
    [900_000, "15m"],
    [5_403_000, "1h 30m 3s"],
    [-2500, "-2.50 s"],
  ])("%d ms reads %s", (ms, text) => expect(formatDuration(ms)).toBe(text));
});
