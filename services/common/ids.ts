// Identifiers. Sale ids are ULIDs (26 characters of Crockford base32, ordered by
// time, so Postgres inserts stay at the right edge of the index). An order id is
// its sale id, a dash and a ULID: any replica can find a pending order in its
// sale's Redis shard from the id alone, with no lookup table.
import { randomFillSync } from "node:crypto";

const CROCKFORD = "0123456789ABCDEFGHJKMNPQRSTVWXYZ";
const ULID_RE = /^[0-9A-HJKMNP-TV-Z]{26}$/;
const ORDER_ID_RE = /^([0-9A-HJKMNP-TV-Z]{26})-[0-9A-HJKMNP-TV-Z]{26}$/;
/** Request ids are chosen by clients: bounded and free of separators used in keys. */
const REQUEST_ID_RE = /^[A-Za-z0-9._:-]{1,64}$/;
/** User ids come from the BFF's x-user-id; '@' is allowed for e-mail-like ids. */
const USER_ID_RE = /^[A-Za-z0-9._:@-]{1,64}$/;

export type IdSource = () => string;

const pool = Buffer.alloc(4096);
let poolOffset = pool.length;

function randomBytes10(): Buffer {
  if (poolOffset + 10 > pool.length) {
    randomFillSync(pool);
    poolOffset = 0;
  }
  const out = pool.subarray(poolOffset, poolOffset + 10);
  poolOffset += 10;
  return out;
}

/** A ULID for the given time: 10 characters of milliseconds, 16 of randomness. */
export function ulid(nowMs: number = Date.now()): string {
  let out = "";
  let time = nowMs;
  for (let i = 0; i < 10; i++) {
    out = CROCKFORD[time % 32] + out;
    time = Math.floor(time / 32);
  }
  const bytes = randomBytes10();
  // 80 bits → 16 characters of 5 bits each.
  let acc = 0;
  let bits = 0;
  for (const byte of bytes) {
    acc = (acc << 8) | byte;
    bits += 8;
    while (bits >= 5) {
      bits -= 5;
      out += CROCKFORD[(acc >> bits) & 31];
    }
    acc &= (1 << bits) - 1;
  }
  return out;
}

export const isSaleId = (value: string): boolean => ULID_RE.test(value);
export const isRequestId = (value: string): boolean => REQUEST_ID_RE.test(value);
export const isUserId = (value: string): boolean => USER_ID_RE.test(value);

export function newOrderId(saleId: string, nowMs: number = Date.now()): string {
  return `${saleId}-${ulid(nowMs)}`;
}

/** The sale an order id belongs to, or undefined when the id is malformed. */
export function saleOfOrderId(orderId: string): string | undefined {
  return ORDER_ID_RE.exec(orderId)?.[1];
}
