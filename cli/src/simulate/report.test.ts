import { describe, expect, it } from "vitest";
import { lineChart, niceStep, stackedBarChart } from "./charts.js";
import { cleanRun } from "./fixtures.test-support.js";
import { renderReport } from "./report.js";
import { summarize } from "./summary.js";

describe("renderReport", () => {
  const data = cleanRun(3, 10);
  const html = renderReport({ summary: summarize(data), calls: data.calls, clicks: data.clicks, persistSamples: data.persist.samples });

  it("is one self-contained HTML page with inline SVG charts and the summary", () => {
    expect(html).toMatch(/^<!doctype html>/);
    expect(html.match(/<svg /g)).toHaveLength(3);
    expect(html).toContain("PlaceOrder answers per second");
    expect(html).toContain("PlaceOrder latency");
    expect(html).toContain("units in Postgres");
    expect(html).toContain("PASS");
    expect(html).toContain("<th>successes</th><td>3 orders, 3 units, 3 users</td>");
  });

  it("loads nothing from elsewhere", () => {
    expect(html).not.toMatch(/https?:\/\//);
    expect(html).not.toMatch(/<script|<link|<img|@import|url\(/i);
    expect(html).not.toMatch(/\b(src|href)=/);
  });

  it("escapes what it prints", () => {
    const d = cleanRun(1, 2);
    d.sale.saleId = "<b>&";
    const out = renderReport({ summary: summarize(d), calls: d.calls, clicks: d.clicks, persistSamples: [] });
    expect(out).not.toContain("<b>&");
    expect(out).toContain("&lt;b&gt;&amp;");
  });
});

describe("charts", () => {
  it("picks readable tick steps", () => {
    expect(niceStep(1000)).toBe(200);
    expect(niceStep(47)).toBe(10);
    expect(niceStep(0)).toBe(1);
  });

  it("draws bars and lines, and an empty frame without data", () => {
    const bars = stackedBarChart({ title: "t", yLabel: "y", x: [0, 100], series: [{ name: "a", color: "#000", values: [1, 2] }] }, 100);
    expect(bars.match(/<rect [^>]*height/g)?.length).toBeGreaterThanOrEqual(2);
    const lines = lineChart({ title: "t", yLabel: "y", x: [0, 100, 200], series: [{ name: "p50", color: "#000", values: [1, Number.NaN, 3] }] });
    expect(lines).toMatch(/<path d="M[^"]*M/); // a gap where the value is missing
    expect(lineChart({ title: "t", yLabel: "y", x: [], series: [] })).toContain("<svg");
  });
});

describe("the persistence chart", () => {
  it("steps up at each sample, at the sample's own time", () => {
    const d = cleanRun(3, 10);
    d.persist.samples = [
      { atMs: 0.4, sold: 0 },
      { atMs: 100.4, sold: 3 },
      { atMs: 900.4, sold: 3 },
    ];
    const html = renderReport({ summary: summarize(d), calls: d.calls, clicks: d.clicks, persistSamples: d.persist.samples });
    const path = /<path d="([^"]+)"[^>]*><title>in Postgres<\/title>/.exec(html)![1];
    const points = [...path.matchAll(/[ML]([\d.]+) ([\d.]+)/g)].map((m) => [Number(m[1]), Number(m[2])]);
    const top = Math.min(...points.map((p) => p[1]));
    // It reaches the top (3 units) at the x of the 100.4 ms sample, not at the next sample's.
    const firstTop = points.find((p) => p[1] === top)!;
    const xOf = (ms: number) => 64 + (ms / 900.4) * (760 - 64 - 16);
    expect(firstTop[0]).toBeCloseTo(xOf(100.4), 0);
  });
});
