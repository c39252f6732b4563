// A small, consistent simulated sale for the unit tests of summary and report.
import { status } from "@grpc/grpc-js";
import { DEFAULT_SIMULATION } from "./plan.js";
import type { CallRecord, ClickResult } from "./stats.js";
import type { SimulationData } from "./summary.js";

/** `stock` winners (one unit each) out of `users`, the rest SOLD_OUT; Postgres holds what was won. */
export function cleanRun(stock = 3, users = 10): SimulationData {
  const calls: CallRecord[] = [];
  const clicks: ClickResult[] = [];
  for (let i = 0; i < users; i++) {
    const startMs = i * 10;
    const endMs = startMs + 5 + i;
    const won = i < stock;
    calls.push(won ? { startMs, endMs, code: status.OK } : { startMs, endMs, code: status.FAILED_PRECONDITION, reason: "SOLD_OUT" });
    clicks.push({
      userId: `u${i}`,
      requestId: `r${i}`,
      tokenCalls: 1,
      calls: 1,
      outcome: won ? { kind: "won", orderId: `o${i}`, quantity: 1, atMs: endMs } : { kind: "refused", code: status.FAILED_PRECONDITION, reason: "SOLD_OUT" },
    });
  }
  const winners = clicks.filter((c) => c.outcome.kind === "won");
  return {
    options: { ...DEFAULT_SIMULATION, users, stock, seed: 1 },
    sale: { saleId: "01SALE", totalStock: stock, perUserLimit: 1 },
    calls,
    clicks,
    statusCalls: users,
    statusFailures: 0,
    watches: winners.map((c) => ({ orderId: c.outcome.kind === "won" ? c.outcome.orderId : "", createdAfterMs: 50, via: "stream" as const, fellBack: false })),
    persist: {
      samples: [
        { atMs: 0, sold: 0 },
        { atMs: 100, sold: stock - 1 },
        { atMs: 200, sold: stock },
      ],
      finalSold: stock,
      settled: "equal",
    },
    verification: {
      usersChecked: winners.length,
      winners: winners.length,
      unitsPerUser: new Map(winners.map((c) => [c.userId, 1])),
      orderIds: new Set(winners.map((c) => (c.outcome.kind === "won" ? c.outcome.orderId : ""))),
      failedUsers: 0,
    },
    waitedForOpenMs: 3000,
    totalMs: 4000,
  };
}
