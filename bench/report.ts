// The bench's output: one table (figure, ours, baseline, ratio, target,
// met?) on stdout, and bench/RESULTS.md with the table, the machine and the
// settings used.
import { existsSync, readFileSync, writeFileSync } from "node:fs";
import os from "node:os";

export interface Row {
  figure: string;
  ours: string;
  baseline: string;
  ratio: string;
  target: string;
  /** "yes", "no", "skipped: …", or "—" for reference rows. */
  met: string;
}

const HEADERS: (keyof Row)[] = ["figure", "ours", "baseline", "ratio", "target", "met"];
const TITLES: Record<keyof Row, string> = { figure: "figure", ours: "ours", baseline: "baseline", ratio: "ratio", target: "target", met: "met?" };

export const fmt = {
  rate: (n: number) => `${Math.round(n).toLocaleString("en-US")}/s`,
  ms: (us: number) => `${(us / 1000).toFixed(us < 10_000 ? 1 : 0)} ms`,
  s: (ms: number) => `${(ms / 1000).toFixed(2)} s`,
  ratio: (n: number) => (Number.isFinite(n) ? n.toFixed(2) : "—"),
  mb: (n: number) => `${Math.round(n)} MB`,
  pct: (n: number) => `${(n * 100).toFixed(1)} %`,
  int: (n: number) => Math.round(n).toLocaleString("en-US"),
  yes: (ok: boolean) => (ok ? "yes" : "no"),
};

/** Median of the values and their spread ("min–max"). */
export function median(values: number[]): number {
  const sorted = [...values].sort((a, b) => a - b);
  const mid = Math.floor(sorted.length / 2);
  return sorted.length % 2 ? sorted[mid] : (sorted[mid - 1] + sorted[mid]) / 2;
}

export function spread(values: number[], format: (n: number) => string): string {
  return values.length > 1 ? ` (${format(Math.min(...values))}–${format(Math.max(...values))})` : "";
}

export function textTable(rows: Row[]): string {
  const widths = HEADERS.map((h) => Math.max(TITLES[h].length, ...rows.map((r) => r[h].length)));
  const line = (cells: string[]) =>
    cells
      .map((c, i) => c.padEnd(widths[i]))
      .join("  ")
      .trimEnd();
  return [line(HEADERS.map((h) => TITLES[h])), line(widths.map((w) => "-".repeat(w))), ...rows.map((r) => line(HEADERS.map((h) => r[h])))].join("\n");
}

export function markdownTable(rows: Row[]): string {
  const esc = (s: string) => s.replace(/\|/g, "\\|");
  return [
    `| ${HEADERS.map((h) => TITLES[h]).join(" | ")} |`,
    `|${HEADERS.map(() => "---").join("|")}|`,
    ...rows.map((r) => `| ${HEADERS.map((h) => esc(r[h])).join(" | ")} |`),
  ].join("\n");
}

const HISTORY_HEADING = "## Before and after";

/** The hand-kept history section of an earlier results file, carried over to the new one. */
function historyOf(file: string): string[] {
  if (!existsSync(file)) return [];
  const old = readFileSync(file, "utf8");
  const start = old.indexOf(HISTORY_HEADING);
  return start < 0 ? [] : [old.slice(start).trimEnd(), ""];
}

/** The machine a run was measured on, as RESULTS.md lists it. */
function machineLines(): string[] {
  return [
    `- date: ${new Date().toISOString()}`,
    `- cores (nproc): ${os.availableParallelism()}`,
    `- node: ${process.version}`,
    `- cpu: ${os.cpus()[0]?.model ?? "unknown"}`,
    `- load average at the end (1/5/15 min): ${os
      .loadavg()
      .map((l) => l.toFixed(2))
      .join(" / ")}`,
  ];
}

const SEPARATE_HEADING = "## Separate run: BENCH_FIGURES=";

/**
 * The results file with the section of a run of some figures only put in
 * place: an earlier section of the same figures is replaced, every other part
 * is kept; a new section goes before the hand-kept history.
 */
export function withSeparateRun(old: string, figures: string, section: string): string {
  const heading = `${SEPARATE_HEADING}${figures}`;
  const lines = old.trimEnd().split("\n");
  const start = lines.indexOf(heading);
  if (start >= 0) {
    let end = lines.findIndex((line, i) => i > start && line.startsWith("## "));
    if (end < 0) end = lines.length;
    lines.splice(start, end - start, ...section.trimEnd().split("\n"), "");
    return `${lines.join("\n").trimEnd()}\n`;
  }
  const history = lines.indexOf(HISTORY_HEADING);
  const at = history >= 0 ? history : lines.length;
  lines.splice(at, 0, ...section.trimEnd().split("\n"), "");
  return `${lines.join("\n").trimEnd()}\n`;
}

export interface Results {
  rows: Row[];
  settings: Record<string, string>;
  notes: string[];
  details: string[];
  /** The figures of a run of some figures only (BENCH_FIGURES); undefined for a full run. */
  partOf?: string;
}

export function writeResults(file: string, parts: Results): void {
  if (parts.partOf && existsSync(file)) {
    const section = [
      `${SEPARATE_HEADING}${parts.partOf}`,
      "",
      `Written by \`BENCH_FIGURES=${parts.partOf} npm run bench\`; the full run above is kept. The next run of the same figures replaces this section, a full run removes it.`,
      "",
      ...machineLines(),
      "",
      markdownTable(parts.rows.filter((r) => !r.met.startsWith("skipped"))),
      "",
      ...(parts.notes.length > 0 ? ["### Notes", "", ...parts.notes.map((n) => `- ${n}`), ""] : []),
      ...(parts.details.length > 0 ? ["### Details", "", ...parts.details, ""] : []),
      "### Settings",
      "",
      ...Object.entries(parts.settings).map(([k, v]) => `- ${k}: ${v}`),
    ].join("\n");
    writeFileSync(file, withSeparateRun(readFileSync(file, "utf8"), parts.partOf, section));
    return;
  }
  const history = historyOf(file);
  const text = [
    "# Benchmark results",
    "",
    "Written by `npm run bench` (bench/run.ts). Every figure is a ratio against a baseline measured in the",
    "same run, on the same machine, with the same load generator (a raw HTTP/2 gRPC client sending",
    "pre-encoded frames with a unique user and request id per call); absolute numbers from one noisy",
    "2-core machine mean little on their own. The last section is kept by hand across runs.",
    "",
    ...machineLines(),
    "",
    markdownTable(parts.rows),
    "",
    ...(parts.notes.length > 0 ? ["## Notes", "", ...parts.notes.map((n) => `- ${n}`), ""] : []),
    ...(parts.details.length > 0 ? ["## Details", "", ...parts.details, ""] : []),
    "## Settings",
    "",
    ...Object.entries(parts.settings).map(([k, v]) => `- ${k}: ${v}`),
    "",
    ...history,
  ].join("\n");
  writeFileSync(file, text);
}
