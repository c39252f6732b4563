// The plan of a simulated flash sale: who arrives when, and with which
// request ids. Everything random comes from one seeded generator, so a seed
// replays the same crowd.
import { CliError } from "../backend.js";

export interface SimulationOptions {
  users: number;
  stock: number;
  perUserLimit: number;
  /** Units each click asks for. */
  quantity: number;
  /** Most users buying at once (status + PlaceOrder calls in flight). */
  concurrency: number;
  /** The sale opens this long after it is created. */
  startsInMs: number;
  /** Users arrive over this span after the opening, most of them early. */
  rampMs: number;
  /** Share of users who click "buy" a second time with a new request id. */
  impatient: number;
  seed: number;
  /** PlaceOrder attempts per click, the first one included. */
  maxAttempts: number;
  /** Deadline of each PlaceOrder / status call. */
  deadlineMs: number;
  /** How long a winner watches the order for CREATED. */
  watchTimeoutMs: number;
  /** How long to wait for Postgres to hold every won unit after buying ends. */
  persistTimeoutMs: number;
  /** Most winning users whose orders are listed back (ListOrders) for the per-user check. */
  verifyUsers: number;
  name?: string;
}

export const DEFAULT_SIMULATION: Omit<SimulationOptions, "seed"> = {
  users: 2000,
  stock: 100,
  perUserLimit: 1,
  quantity: 1,
  concurrency: 200,
  startsInMs: 3000,
  rampMs: 1000,
  impatient: 0.1,
  maxAttempts: 4,
  deadlineMs: 2000,
  watchTimeoutMs: 15_000,
  persistTimeoutMs: 30_000,
  verifyUsers: 1000,
};

export function checkOptions(o: SimulationOptions): void {
  if (o.quantity > o.perUserLimit) {
    throw new CliError(`--quantity ${o.quantity} is more than --per-user-limit ${o.perUserLimit}: every click would be refused`);
  }
}

/** mulberry32: small, fast, good enough for arrival times and ids. */
export function seededRandom(seed: number): () => number {
  let a = seed >>> 0;
  return () => {
    a = (a + 0x6d2b79f5) >>> 0;
    let t = a;
    t = Math.imul(t ^ (t >>> 15), t | 1);
    t ^= t + Math.imul(t ^ (t >>> 7), t | 61);
    return ((t ^ (t >>> 14)) >>> 0) / 4294967296;
  };
}

export interface Click {
  requestId: string;
  /** Pause before this click, after the previous one's answer (0 for the first). */
  thinkMs: number;
}

export interface PlannedUser {
  index: number;
  userId: string;
  /** When the user arrives, in ms after the opening. */
  arrivalMs: number;
  clicks: Click[];
}

const hex = (random: () => number, chars: number) => Array.from({ length: chars }, () => Math.floor(random() * 16).toString(16)).join("");

/**
 * The crowd: users sorted by arrival. Arrivals are front-loaded (density
 * falls like 1/√t over the ramp): most buyers are already waiting at the
 * opening, stragglers come later. Request ids are unique per click and at most
 * 64 characters of [A-Za-z0-9._:-].
 */
export function planUsers(o: Pick<SimulationOptions, "users" | "rampMs" | "impatient" | "seed">): PlannedUser[] {
  const random = seededRandom(o.seed);
  const run = hex(random, 8);
  const users: PlannedUser[] = [];
  for (let index = 0; index < o.users; index++) {
    const u = random();
    const arrivalMs = Math.round(o.rampMs * u * u);
    const clicks: Click[] = [{ requestId: `sim-${run}-${index}-1-${hex(random, 8)}`, thinkMs: 0 }];
    if (random() < o.impatient) clicks.push({ requestId: `sim-${run}-${index}-2-${hex(random, 8)}`, thinkMs: Math.round(50 + random() * 250) });
    users.push({ index, userId: `sim-${run}-u${index}`, arrivalMs, clicks });
  }
  return users.sort((a, b) => a.arrivalMs - b.arrivalMs || a.index - b.index);
}
