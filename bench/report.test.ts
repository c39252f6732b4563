// RESULTS.md across runs: a run of some figures records them in a section of
// their own and keeps the last full run's table and the hand-kept history; a
// full run writes the file afresh and keeps only the history.
import { mkdtempSync, readFileSync, rmSync, writeFileSync } from "node:fs";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { afterEach, beforeEach, describe, expect, it } from "vitest";
import { type Row, writeResults } from "./report.js";

const row = (figure: string, ours: string): Row => ({ figure, ours, baseline: "b", ratio: "1.00", target: "t", met: "—" });
const count = (text: string, part: string) => text.split(part).length - 1;

let dir: string;
let file: string;
beforeEach(() => {
  dir = mkdtempSync(join(tmpdir(), "bench-report-"));
  file = join(dir, "RESULTS.md");
});
afterEach(() => rmSync(dir, { recursive: true, force: true }));

function fullRunWithHistory(): void {
  writeResults(file, { rows: [row("a. full", "5,000/s")], settings: {}, notes: ["full note"], details: [] });
  const text = readFileSync(file, "utf8");
  writeFileSync(file, `${text}## Before and after\n\nhand-kept history\n`);
}

describe("writeResults", () => {
  it("a run of some figures keeps the full run's table and the history, its own section before the history", () => {
    fullRunWithHistory();
    writeResults(file, {
      rows: [row("g. clustered", "3,000/s"), { ...row("a. full", "—"), met: "skipped: not in BENCH_FIGURES" }],
      settings: {},
      notes: ["g note"],
      details: [],
      partOf: "g",
    });
    const text = readFileSync(file, "utf8");
    expect(text).toContain("| a. full | 5,000/s |");
    expect(text).toContain("- full note");
    expect(text).toContain("## Separate run: BENCH_FIGURES=g");
    expect(text).toContain("| g. clustered | 3,000/s |");
    expect(text).not.toContain("skipped: not in BENCH_FIGURES");
    expect(text.indexOf("## Separate run: BENCH_FIGURES=g")).toBeLessThan(text.indexOf("## Before and after"));
    expect(text).toContain("hand-kept history");
  });

  it("the next run of the same figures replaces its section; other figures get one of their own", () => {
    fullRunWithHistory();
    writeResults(file, { rows: [row("g. clustered", "3,000/s")], settings: {}, notes: [], details: [], partOf: "g" });
    writeResults(file, { rows: [row("c. burst", "6,000/s")], settings: {}, notes: [], details: [], partOf: "c,d" });
    writeResults(file, { rows: [row("g. clustered", "3,300/s")], settings: {}, notes: [], details: [], partOf: "g" });
    const text = readFileSync(file, "utf8");
    expect(count(text, "## Separate run: BENCH_FIGURES=g\n")).toBe(1);
    expect(text).not.toContain("3,000/s");
    expect(text).toContain("| g. clustered | 3,300/s |");
    expect(text).toContain("| c. burst | 6,000/s |");
    expect(text).toContain("| a. full | 5,000/s |");
    expect(text).toContain("hand-kept history");
  });

  it("a full run removes the separate sections and keeps the history", () => {
    fullRunWithHistory();
    writeResults(file, { rows: [row("g. clustered", "3,000/s")], settings: {}, notes: [], details: [], partOf: "g" });
    writeResults(file, { rows: [row("a. full", "5,500/s")], settings: {}, notes: [], details: [] });
    const text = readFileSync(file, "utf8");
    expect(text).not.toContain("## Separate run");
    expect(text).toContain("| a. full | 5,500/s |");
    expect(text).toContain("hand-kept history");
  });
});
