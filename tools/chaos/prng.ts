// The fault campaign's only source of randomness: mulberry32, a small seeded
// PRNG, so that a seed replays the same faults at the same offsets. Seeds are
// 32-bit unsigned integers; a new one comes from node:crypto.
import { randomInt } from "node:crypto";
import { seededRandom } from "../../cli/src/simulate/plan.js";

export type Random = () => number;

/** A generator of floats in [0, 1), the same sequence for the same seed (the one `seckill simulate` uses). */
export const mulberry32: (seed: number) => Random = seededRandom;

/** A fresh seed, for runs that were not given one (always printed, so they can be replayed). */
export const newSeed = (): number => randomInt(0, 2 ** 32 - 1);

/** An integer in [min, max]. */
export const between = (random: Random, min: number, max: number): number => min + Math.floor(random() * (max - min + 1));

export function pick<T>(random: Random, items: readonly T[]): T {
  if (items.length === 0) throw new Error("pick from an empty list");
  return items[Math.floor(random() * items.length)];
}

/** The seed of the n-th run of a campaign (its nemesis plan and crowd jitter), derived from the campaign's seed. */
export function runSeed(seed: number, run: number): number {
  return (mulberry32((seed ^ Math.imul(run + 1, 0x9e3779b1)) >>> 0)() * 4294967296) >>> 0;
}
