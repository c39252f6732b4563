// When a sale takes purchases, and the phase it is in: one reading of a sale's
// window for inventory (its answers and what it loads into Redis) and for the
// gateway (which refuses purchase tokens for an ended sale).
import { SalePhase } from "@seckill/sdk";
import type { SaleRow } from "./sale-records.js";

/** When a sale takes purchases; closedAtMs is 0 unless an operator closed it. */
export interface SaleWindow {
  startsAtMs: number;
  endsAtMs: number;
  closedAtMs: number;
}

export const windowOf = (row: SaleRow): SaleWindow => ({
  startsAtMs: row.starts_at.getTime(),
  endsAtMs: row.ends_at.getTime(),
  closedAtMs: row.closed_at?.getTime() ?? 0,
});

/** The end of purchases: ends_at, or the close when an operator closed the sale earlier. */
export const windowEndMs = (w: SaleWindow): number => (w.closedAtMs > 0 && w.closedAtMs < w.endsAtMs ? w.closedAtMs : w.endsAtMs);

export function phaseAt(w: SaleWindow, stockLeft: number, nowMs: number): SalePhase {
  if (w.closedAtMs > 0 || nowMs >= w.endsAtMs) return SalePhase.SALE_PHASE_ENDED;
  if (nowMs < w.startsAtMs) return SalePhase.SALE_PHASE_NOT_STARTED;
  return stockLeft > 0 ? SalePhase.SALE_PHASE_OPEN : SalePhase.SALE_PHASE_SOLD_OUT;
}

export const phaseOf = (row: SaleRow, stockLeft: number, now: Date): SalePhase => phaseAt(windowOf(row), stockLeft, now.getTime());
