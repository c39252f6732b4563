import { expect, it } from "vitest";
import { Histogram } from "./histogram.js";

it("keeps percentiles within a bucket's width and survives the trip over IPC", () => {
  const h = new Histogram();
  for (let us = 1; us <= 100_000; us++) h.record(us);
  expect(h.count).toBe(100_000);
  expect(h.percentile(50)).toBeGreaterThanOrEqual(50_000);
  expect(h.percentile(50)).toBeLessThanOrEqual(50_000 * 1.02);
  expect(h.percentile(99)).toBeGreaterThanOrEqual(99_000);
  expect(h.percentile(99)).toBeLessThanOrEqual(99_000 * 1.02);
  expect(h.percentile(100)).toBe(100_000);
  const copy = Histogram.fromData(JSON.parse(JSON.stringify(h.toData())));
  expect(copy.percentile(99)).toBe(h.percentile(99));
  expect(copy.merge(h).count).toBe(200_000);
  expect(new Histogram().percentile(99)).toBe(0);
});
