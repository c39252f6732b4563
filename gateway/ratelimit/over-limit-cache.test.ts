import { describe, expect, it } from "vitest";
import { createOverLimitCache } from "./over-limit-cache.js";

describe("the over-limit cache", () => {
  it("knows a counter until its window ends, and not after", () => {
    const cache = createOverLimitCache(10);
    cache.add("a:60", 60_000);
    expect(cache.has("a:60", 59_999)).toBe(true);
    expect(cache.has("a:60", 60_000)).toBe(false);
    expect(cache.has("b:60", 0)).toBe(false);
    // An ended window's entry is gone once looked at.
    expect(cache.size).toBe(0);
  });

  it("holds at most its size, forgetting the counter remembered first", () => {
    const cache = createOverLimitCache(2);
    cache.add("a", 1000);
    cache.add("b", 1000);
    cache.add("c", 1000);
    expect(cache.size).toBe(2);
    expect(["a", "b", "c"].map((k) => cache.has(k, 0))).toEqual([false, true, true]);
  });

  it("remembers nothing with size 0", () => {
    const cache = createOverLimitCache(0);
    cache.add("a", 1000);
    expect(cache.has("a", 0)).toBe(false);
    expect(cache.size).toBe(0);
  });
});
