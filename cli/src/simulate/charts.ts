// Small inline SVG charts for the HTML report: stacked bars and lines over
// time, with axes and a legend. No external scripts, styles or fonts.

export interface Series {
  name: string;
  color: string;
  values: number[];
  /** Draw as steps (the value holds until the next point), for sampled counters. */
  step?: boolean;
}

export interface ChartSpec {
  title: string;
  /** x of each point, in ms after the opening. */
  x: number[];
  series: Series[];
  yLabel: string;
  width?: number;
  height?: number;
}

const PAD = { left: 64, right: 16, top: 32, bottom: 44 };

export function escapeXml(text: string): string {
  return text.replace(/[&<>"']/g, (c) => ({ "&": "&amp;", "<": "&lt;", ">": "&gt;", '"': "&quot;", "'": "&#39;" })[c]!);
}

/** 1, 2 or 5 times a power of ten, so ticks read well. */
export function niceStep(range: number, ticks = 5): number {
  if (!(range > 0)) return 1;
  const raw = range / ticks;
  const power = 10 ** Math.floor(Math.log10(raw));
  const m = raw / power;
  return (m <= 1 ? 1 : m <= 2 ? 2 : m <= 5 ? 5 : 10) * power;
}

const fmt = (n: number) => (Math.abs(n) >= 1000 ? `${+(n / 1000).toFixed(1)}k` : `${+n.toFixed(2)}`);

function frame(spec: ChartSpec, yMax: number, xMin: number, xMax: number, inner: string): string {
  const width = spec.width ?? 760;
  const height = spec.height ?? 280;
  const plotW = width - PAD.left - PAD.right;
  const plotH = height - PAD.top - PAD.bottom;
  const yStep = niceStep(yMax);
  const top = Math.max(yStep, Math.ceil(yMax / yStep) * yStep);
  const xStep = niceStep(xMax - xMin, 8);
  const parts: string[] = [];
  for (let v = 0; v <= top + 1e-9; v += yStep) {
    const y = PAD.top + plotH - (v / top) * plotH;
    parts.push(`<line x1="${PAD.left}" x2="${PAD.left + plotW}" y1="${y.toFixed(1)}" y2="${y.toFixed(1)}" stroke="#e3e3e3"/>`);
    parts.push(`<text x="${PAD.left - 6}" y="${(y + 4).toFixed(1)}" text-anchor="end">${fmt(v)}</text>`);
  }
  for (let v = Math.ceil(xMin / xStep) * xStep; v <= xMax + 1e-9; v += xStep) {
    const x = PAD.left + ((v - xMin) / Math.max(1, xMax - xMin)) * plotW;
    parts.push(`<line x1="${x.toFixed(1)}" x2="${x.toFixed(1)}" y1="${PAD.top + plotH}" y2="${PAD.top + plotH + 4}" stroke="#888"/>`);
    parts.push(`<text x="${x.toFixed(1)}" y="${PAD.top + plotH + 16}" text-anchor="middle">${fmt(v / 1000)}s</text>`);
  }
  parts.push(`<line x1="${PAD.left}" x2="${PAD.left}" y1="${PAD.top}" y2="${PAD.top + plotH}" stroke="#888"/>`);
  parts.push(`<line x1="${PAD.left}" x2="${PAD.left + plotW}" y1="${PAD.top + plotH}" y2="${PAD.top + plotH}" stroke="#888"/>`);
  parts.push(`<text x="${PAD.left + plotW / 2}" y="${height - 6}" text-anchor="middle">time after the opening</text>`);
  parts.push(`<text transform="translate(14 ${PAD.top + plotH / 2}) rotate(-90)" text-anchor="middle">${escapeXml(spec.yLabel)}</text>`);
  parts.push(`<text x="${PAD.left}" y="18" font-weight="bold">${escapeXml(spec.title)}</text>`);
  let lx = PAD.left + plotW;
  for (const s of [...spec.series].reverse()) {
    const label = escapeXml(s.name);
    lx -= label.length * 7 + 24;
    parts.push(`<rect x="${lx}" y="9" width="10" height="10" fill="${s.color}"/><text x="${lx + 14}" y="18">${label}</text>`);
  }
  return `<svg role="img" aria-label="${escapeXml(spec.title)}" viewBox="0 0 ${width} ${height}" width="${width}" height="${height}" font-family="sans-serif" font-size="11">${parts.join("")}<g>${inner}</g></svg>`;
}

function geometry(spec: ChartSpec) {
  const width = spec.width ?? 760;
  const height = spec.height ?? 280;
  return { plotW: width - PAD.left - PAD.right, plotH: height - PAD.top - PAD.bottom };
}

/** Stacked bars, one per x (all x equally spaced by `stepMs`). */
export function stackedBarChart(spec: ChartSpec, stepMs: number): string {
  const { plotW, plotH } = geometry(spec);
  if (spec.x.length === 0) return frame(spec, 1, 0, 1000, "");
  const totals = spec.x.map((_, i) => spec.series.reduce((s, se) => s + (se.values[i] || 0), 0));
  const yMax = Math.max(1, ...totals);
  const top = Math.max(niceStep(yMax), Math.ceil(yMax / niceStep(yMax)) * niceStep(yMax));
  const xMin = Math.min(0, spec.x[0]);
  const xMax = spec.x[spec.x.length - 1] + stepMs;
  const barW = Math.max(1, (stepMs / Math.max(1, xMax - xMin)) * plotW - 1);
  const rects: string[] = [];
  spec.x.forEach((xv, i) => {
    const x = PAD.left + ((xv - xMin) / (xMax - xMin)) * plotW;
    let y = PAD.top + plotH;
    for (const s of spec.series) {
      const v = s.values[i] || 0;
      if (v <= 0) continue;
      const h = (v / top) * plotH;
      y -= h;
      rects.push(
        `<rect x="${x.toFixed(1)}" y="${y.toFixed(1)}" width="${barW.toFixed(1)}" height="${h.toFixed(1)}" fill="${s.color}"><title>${escapeXml(s.name)}: ${fmt(v)} at ${fmt(xv / 1000)}s</title></rect>`,
      );
    }
  });
  return frame(spec, yMax, xMin, xMax, rects.join(""));
}

/** Lines; NaN values leave gaps. */
export function lineChart(spec: ChartSpec): string {
  const { plotW, plotH } = geometry(spec);
  const all = spec.series.flatMap((s) => s.values.filter(Number.isFinite));
  if (spec.x.length === 0 || all.length === 0) return frame(spec, 1, 0, 1000, "");
  const yMax = Math.max(1e-9, ...all);
  const top = Math.max(niceStep(yMax), Math.ceil(yMax / niceStep(yMax)) * niceStep(yMax));
  const xMin = Math.min(0, spec.x[0]);
  const xMax = Math.max(xMin + 1, spec.x[spec.x.length - 1]);
  const paths = spec.series.map((s) => {
    let d = "";
    let pen = false;
    s.values.forEach((v, i) => {
      if (!Number.isFinite(v)) {
        pen = false;
        return;
      }
      const x = PAD.left + ((spec.x[i] - xMin) / (xMax - xMin)) * plotW;
      const y = PAD.top + plotH - (v / top) * plotH;
      if (pen && s.step) d += `H${x.toFixed(1)}`;
      d += `${pen ? "L" : "M"}${x.toFixed(1)} ${y.toFixed(1)}`;
      pen = true;
    });
    return `<path d="${d}" fill="none" stroke="${s.color}" stroke-width="1.8"><title>${escapeXml(s.name)}</title></path>`;
  });
  return frame(spec, yMax, xMin, xMax, paths.join(""));
}
