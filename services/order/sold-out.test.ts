// The sold-out shortcut's rules, over a source that stands in for Redis: it
// answers for a sale only once the sale's winners are loaded and never for a
// winner, a release lifts it (also while the winners load), and the periodic
// check drops a sale whose state moved.
import { setTimeout as sleep } from "node:timers/promises";
import { describe, expect, it } from "vitest";
import { quietLogger } from "../common/log.js";
import { eventually } from "../../tools/stack/fixtures.js";
import { createSoldOutShortcut, fieldHash, requestHash, saleWinners, type SaleWinners, type SoldOutSource, type SoldOutState } from "./sold-out.js";

const winnersOf = (fields: string[], epoch = "e1") => saleWinners(Uint32Array.from(fields.map(fieldHash)), fields.length, epoch);

/** A source whose loads resolve when the test says so. */
function source(winners: () => SaleWinners | undefined, state: () => SoldOutState = () => ({ soldOut: true, count: 1, epoch: "e1" })) {
  const loads: { resolve: () => void; fail: (e: Error) => void }[] = [];
  const src: SoldOutSource = {
    winners: () => new Promise((resolve, reject) => loads.push({ resolve: () => resolve(winners()), fail: reject })),
    states: async (saleIds) => new Map(saleIds.map((id) => [id, state()])),
  };
  return { src, loads };
}

describe("the winners' hashes", () => {
  it("hash a user and request id as Redis holds them, <user>|<request>", () => {
    expect(requestHash("alice", "req-1")).toBe(fieldHash("alice|req-1"));
    expect(requestHash("alice", "req-1")).not.toBe(requestHash("alice", "req-2"));
    const winners = winnersOf(Array.from({ length: 1000 }, (_, i) => `u${i}|r${i}`));
    for (let i = 0; i < 1000; i++) expect(winners.has(`u${i}`, `r${i}`)).toBe(true);
    expect(Array.from({ length: 1000 }, (_, i) => winners.has(`u${i}`, `other-${i}`)).filter(Boolean).length).toBeLessThanOrEqual(1);
  });
});

describe("the sold-out shortcut", () => {
  it("answers for a sale once its winners are loaded, and never for a winner", async () => {
    const { src, loads } = source(() => winnersOf(["alice|won"]));
    const shortcut = createSoldOutShortcut({ source: src, log: quietLogger(), checkIntervalMs: 60_000 });
    shortcut.soldOut("sale");
    shortcut.soldOut("sale");
    expect(loads).toHaveLength(1);
    expect(shortcut.any()).toBe(false);
    expect(shortcut.refuses("sale", "bob", "lost")).toBe(false);
    loads[0].resolve();
    await shortcut.settled();
    expect(shortcut.any()).toBe(true);
    expect(shortcut.refuses("sale", "bob", "lost")).toBe(true);
    expect(shortcut.refuses("sale", "alice", "won")).toBe(false);
    expect(shortcut.refuses("sale", "alice", "another")).toBe(true);
    expect(shortcut.refuses("other-sale", "bob", "lost")).toBe(false);
    await shortcut.stop();
  });

  it("is lifted by a release, also one seen while the winners load, and comes back after the release's grace", async () => {
    let now = 1_000_000;
    const { src, loads } = source(() => winnersOf(["alice|won"]));
    const shortcut = createSoldOutShortcut({ source: src, log: quietLogger(), checkIntervalMs: 60_000, nowMs: () => now });
    shortcut.soldOut("sale");
    shortcut.stockReturned("sale");
    loads[0].resolve();
    await shortcut.settled();
    expect(shortcut.any()).toBe(false);
    // A sell-out reported within the grace: inventory may not have the unit back yet.
    shortcut.soldOut("sale");
    expect(loads).toHaveLength(1);
    now += 2001;
    shortcut.soldOut("sale");
    loads[1].resolve();
    await shortcut.settled();
    expect(shortcut.refuses("sale", "bob", "lost")).toBe(true);
    shortcut.stockReturned("sale");
    expect(shortcut.refuses("sale", "bob", "lost")).toBe(false);
    await shortcut.stop();
  });

  it("does not answer for a sale Redis does not hold sold out, and loads again no sooner than a second after a failure", async () => {
    let now = 1_000_000;
    let held: SaleWinners | undefined;
    const { src, loads } = source(() => held);
    const shortcut = createSoldOutShortcut({ source: src, log: quietLogger(), checkIntervalMs: 60_000, nowMs: () => now });
    shortcut.soldOut("sale");
    loads[0].resolve();
    await shortcut.settled();
    expect(shortcut.any()).toBe(false);
    shortcut.soldOut("sale");
    loads[1].fail(new Error("redis down"));
    await shortcut.settled();
    shortcut.soldOut("sale");
    expect(loads).toHaveLength(2);
    now += 1001;
    held = winnersOf([]);
    shortcut.soldOut("sale");
    loads[2].resolve();
    await shortcut.settled();
    expect(shortcut.refuses("sale", "bob", "lost")).toBe(true);
    await shortcut.stop();
  });

  it("drops a sale whose Redis state is not the one loaded: stock back, more winners, another epoch", async () => {
    for (const moved of [
      { soldOut: false, count: 1, epoch: "e1" },
      { soldOut: true, count: 2, epoch: "e1" },
      { soldOut: true, count: 1, epoch: "e2" },
    ]) {
      let state: SoldOutState = { soldOut: true, count: 1, epoch: "e1" };
      const { src, loads } = source(
        () => winnersOf(["alice|won"]),
        () => state,
      );
      const shortcut = createSoldOutShortcut({ source: src, log: quietLogger(), checkIntervalMs: 20 });
      shortcut.soldOut("sale");
      loads[0].resolve();
      await shortcut.settled();
      await sleep(60);
      expect(shortcut.any()).toBe(true);
      state = moved;
      await eventually(() => !shortcut.any(), 2000, `the sale dropped after ${JSON.stringify(moved)}`, 10);
      await shortcut.stop();
    }
  });
});
