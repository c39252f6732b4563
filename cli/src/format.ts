// Human-readable output: aligned tables, money, timestamps and enum names.
import { type OrderStatus, ReleasePolicy, type SalePhase, orderStatusToJSON, salePhaseToJSON, type Sale } from "@seckill/sdk";

export type Cell = string | number | undefined | null;

/** A plain-text table with a header row; numbers are right-aligned. */
export function table(headers: string[], rows: Cell[][]): string {
  const text = rows.map((row) => headers.map((_, i) => cellText(row[i])));
  const numeric = headers.map((_, i) => rows.length > 0 && rows.every((row) => row[i] == null || typeof row[i] === "number"));
  const widths = headers.map((h, i) => Math.max(displayWidth(h), ...text.map((row) => displayWidth(row[i]))));
  const line = (cells: string[], header = false) =>
    cells
      .map((c, i) => (numeric[i] && !header ? padStart(c, widths[i]) : padEnd(c, widths[i])))
      .join("  ")
      .trimEnd();
  return [line(headers, true), widths.map((w) => "-".repeat(w)).join("  "), ...text.map((row) => line(row))].join("\n");
}

/** Two columns, label and value, for one record (sale show, the simulation summary). */
export function keyValues(rows: [string, Cell][]): string {
  const width = Math.max(0, ...rows.map(([k]) => displayWidth(k)));
  return rows.map(([k, v]) => `${padEnd(k, width)}  ${cellText(v)}`.trimEnd()).join("\n");
}

function cellText(value: Cell): string {
  if (value === undefined || value === null) return "";
  return typeof value === "number" ? formatNumber(value) : value;
}

/** At most n characters (code points), the last one an ellipsis when cut. */
export const truncate = (s: string, n: number): string => ([...s].length > n ? `${[...s].slice(0, n - 1).join("")}…` : s);

export function formatNumber(n: number): string {
  if (!Number.isFinite(n)) return String(n);
  if (Number.isInteger(n)) return String(n);
  return n.toFixed(Math.abs(n) >= 100 ? 0 : Math.abs(n) >= 10 ? 1 : 2);
}

// Code points, so accents and the odd symbol do not break the alignment.
const displayWidth = (s: string) => [...s].length;
const padEnd = (s: string, w: number) => s + " ".repeat(Math.max(0, w - displayWidth(s)));
const padStart = (s: string, w: number) => " ".repeat(Math.max(0, w - displayWidth(s))) + s;

/** 1999 EUR minor units → "19.99 EUR" (two decimals; currencies without minor units still read fine). */
export function formatMoney(minor: number, currency: string): string {
  const sign = minor < 0 ? "-" : "";
  const abs = Math.abs(minor);
  return `${sign}${Math.floor(abs / 100)}.${String(abs % 100).padStart(2, "0")} ${currency}`.trim();
}

/** "2026-11-22 21:04:05Z" in UTC, or "" when unset. */
export function formatTime(date: Date | undefined): string {
  if (!date) return "";
  return date
    .toISOString()
    .replace("T", " ")
    .replace(/\.\d{3}Z$/, "Z");
}

export const phaseName = (phase: SalePhase): string => salePhaseToJSON(phase).replace(/^SALE_PHASE_/, "");
export const orderStatusName = (s: OrderStatus): string => orderStatusToJSON(s).replace(/^ORDER_STATUS_/, "");
/** A sale's release policy as `sale create --release-policy` spells it: "restore" (also when unspecified) or "keep". */
export const releasePolicyName = (p: ReleasePolicy): string => (p === ReleasePolicy.RELEASE_POLICY_KEEP_ALLOWANCE ? "keep" : "restore");

/** A sale as plain JSON (ISO timestamps), for --json output. */
export function saleJson(sale: Sale) {
  return {
    saleId: sale.saleId,
    name: sale.name,
    totalStock: sale.totalStock,
    sold: sale.sold,
    priceMinor: sale.priceMinor,
    currency: sale.currency,
    startsAt: sale.startsAt?.toISOString() ?? null,
    endsAt: sale.endsAt?.toISOString() ?? null,
    closedAt: sale.closedAt?.toISOString() ?? null,
    createdAt: sale.createdAt?.toISOString() ?? null,
    perUserLimit: sale.perUserLimit,
    paymentWindowSeconds: sale.paymentWindowSeconds,
    releasePolicy: releasePolicyName(sale.releasePolicy),
  };
}

export const json = (value: unknown): string => JSON.stringify(value, null, 2);
