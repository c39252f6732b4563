// A latency histogram with fixed buckets, so memory stays flat however many
// calls are recorded: microseconds, exact below 64 µs, then 64 buckets per
// power of two (at most ~1.6 % error), up to ~71 minutes. Histograms travel
// over IPC as plain sparse objects and merge by adding counts.

const SUB_BITS = 6;
const SUB = 1 << SUB_BITS; // 64
const MAX_EXP = 32;
const BUCKETS = SUB + (MAX_EXP - SUB_BITS) * SUB;

/** The bucket a value (µs) falls in. */
function bucketOf(us: number): number {
  const v = us < 1 ? 0 : us >= 2 ** MAX_EXP ? 2 ** MAX_EXP - 1 : Math.floor(us);
  if (v < SUB) return v;
  const exp = 31 - Math.clz32(v); // v in [2^exp, 2^(exp+1))
  const shift = exp - SUB_BITS;
  return SUB + shift * SUB + ((v >>> shift) - SUB);
}

/** The largest value (µs) a bucket holds: percentiles err on the slow side. */
function upperOf(bucket: number): number {
  if (bucket < SUB) return bucket;
  const shift = Math.floor((bucket - SUB) / SUB);
  const sub = (bucket - SUB) % SUB;
  return (SUB + sub + 1) * 2 ** shift - 1;
}

/** What crosses the process boundary: bucket index → count, only non-empty ones. */
export type HistogramData = Record<number, number>;

export class Histogram {
  private readonly counts = new Uint32Array(BUCKETS);
  count = 0;
  private sumUs = 0;
  private maxUs = 0;

  record(us: number): void {
    this.counts[bucketOf(us)]++;
    this.count++;
    this.sumUs += us;
    if (us > this.maxUs) this.maxUs = us;
  }

  /** The value (µs) at percentile p (0–100); 0 when empty. */
  percentile(p: number): number {
    if (this.count === 0) return 0;
    const rank = Math.max(1, Math.ceil((p / 100) * this.count));
    let seen = 0;
    for (let i = 0; i < BUCKETS; i++) {
      seen += this.counts[i];
      if (seen >= rank) return Math.min(upperOf(i), this.maxUs);
    }
    return this.maxUs;
  }

  get meanUs(): number {
    return this.count === 0 ? 0 : this.sumUs / this.count;
  }

  get max(): number {
    return this.maxUs;
  }

  merge(other: Histogram): this {
    for (let i = 0; i < BUCKETS; i++) this.counts[i] += other.counts[i];
    this.count += other.count;
    this.sumUs += other.sumUs;
    this.maxUs = Math.max(this.maxUs, other.maxUs);
    return this;
  }

  toData(): { buckets: HistogramData; sumUs: number; maxUs: number } {
    const buckets: HistogramData = {};
    this.counts.forEach((c, i) => {
      if (c > 0) buckets[i] = c;
    });
    return { buckets, sumUs: this.sumUs, maxUs: this.maxUs };
  }

  static fromData(data: { buckets: HistogramData; sumUs: number; maxUs: number }): Histogram {
    const h = new Histogram();
    for (const [i, c] of Object.entries(data.buckets)) {
      h.counts[Number(i)] = c;
      h.count += c;
    }
    h.sumUs = data.sumUs;
    h.maxUs = data.maxUs;
    return h;
  }
}
