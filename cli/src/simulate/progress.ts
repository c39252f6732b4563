// Live progress on stderr: a redrawn bar on a terminal, a plain line a second
// otherwise (logs, CI), nothing when quiet.

export interface ProgressCounts {
  done: number;
  total: number;
  successes: number;
  soldOut: number;
  /** PlaceOrder calls answered so far. */
  calls: number;
}

export interface ProgressStream {
  write(chunk: string): unknown;
  isTTY?: boolean;
  columns?: number;
}

/** "[#####-----] 1000/2000 users · 100 won · 880 sold out · 4210 calls/s", bar sized to the terminal. */
export function progressLine(c: ProgressCounts, rps: number, columns = 80, tty = true): string {
  const text = `${c.done}/${c.total} users · ${c.successes} won · ${c.soldOut} sold out · ${Math.round(rps)} calls/s`;
  const width = Math.max(10, Math.min(40, columns - text.length - 4));
  const filled = c.total > 0 ? Math.round((c.done / c.total) * width) : width;
  const bar = tty ? "█".repeat(filled) + "░".repeat(width - filled) : "#".repeat(filled) + "-".repeat(width - filled);
  return `[${bar}] ${text}`;
}

/** Calls per second over the last second, from cumulative samples. */
export function rateTracker(windowMs = 1000) {
  const samples: { at: number; calls: number }[] = [];
  return (at: number, calls: number): number => {
    samples.push({ at, calls });
    while (samples.length > 2 && samples[1].at <= at - windowMs) samples.shift();
    const first = samples[0];
    const span = at - first.at;
    return span > 0 ? ((calls - first.calls) * 1000) / span : 0;
  };
}

export interface Progress {
  stop(): void;
}

export function startProgress(stream: ProgressStream, counts: () => ProgressCounts, opts: { quiet?: boolean; intervalMs?: number } = {}): Progress {
  if (opts.quiet) return { stop() {} };
  const tty = stream.isTTY === true;
  const rate = rateTracker();
  const started = performance.now();
  let lastPlain = -Infinity;
  const draw = (final: boolean) => {
    const now = performance.now();
    const c = counts();
    const rps = rate(now, c.calls);
    if (tty) {
      stream.write(`\r\x1b[2K${progressLine(c, rps, stream.columns ?? 80, true)}${final ? "\n" : ""}`);
    } else if (final || now - lastPlain >= 1000) {
      lastPlain = now;
      stream.write(`[${((now - started) / 1000).toFixed(1)}s] ${progressLine(c, rps, 80, false)}\n`);
    }
  };
  const timer = setInterval(() => draw(false), opts.intervalMs ?? (tty ? 100 : 250));
  timer.unref();
  return {
    stop() {
      clearInterval(timer);
      draw(true);
    },
  };
}
