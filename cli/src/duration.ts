// Durations as people type them on a command line: "500ms", "10s", "5m",
// "1h30m", "2d". A bare number means seconds.

const UNIT_MS: Record<string, number> = { ms: 1, s: 1000, m: 60_000, h: 3_600_000, d: 86_400_000 };
const PART = /(\d+(?:\.\d+)?)(ms|s|m|h|d)/y;

/** Milliseconds in a duration like "10s", "5m", "1h30m" or "250ms"; throws on anything else. */
export function parseDuration(text: string): number {
  const input = text.trim().toLowerCase();
  if (/^\d+(\.\d+)?$/.test(input)) return Math.round(Number(input) * 1000);
  if (input === "") throw new Error("empty duration");
  let total = 0;
  PART.lastIndex = 0;
  while (PART.lastIndex < input.length) {
    const at = PART.lastIndex;
    const match = PART.exec(input);
    if (!match) throw new Error(`not a duration: "${text}" (use e.g. 500ms, 10s, 5m, 1h30m)`);
    if (match.index !== at) throw new Error(`not a duration: "${text}"`);
    total += Number(match[1]) * UNIT_MS[match[2]];
  }
  return Math.round(total);
}

/** "1h 2m", "3.4 s", "120 ms": short and readable, for countdowns and summaries. */
export function formatDuration(ms: number): string {
  const sign = ms < 0 ? "-" : "";
  const abs = Math.abs(ms);
  if (abs < 1000) return `${sign}${Math.round(abs)} ms`;
  if (abs < 60_000) return `${sign}${(abs / 1000).toFixed(abs < 10_000 ? 2 : 1)} s`;
  const totalSeconds = Math.round(abs / 1000);
  const d = Math.floor(totalSeconds / 86_400);
  const h = Math.floor((totalSeconds % 86_400) / 3600);
  const m = Math.floor((totalSeconds % 3600) / 60);
  const s = totalSeconds % 60;
  const parts = d > 0 ? [`${d}d`, `${h}h`, `${m}m`] : h > 0 ? [`${h}h`, `${m}m`, `${s}s`] : [`${m}m`, `${s}s`];
  return sign + parts.filter((p, i) => i === 0 || !p.startsWith("0")).join(" ");
}
