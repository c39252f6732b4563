// Challenges: a small arithmetic question, as text and as a mildly distorted
// SVG image, whose answer waits in Redis for CHALLENGE_TTL_MS under
// `<ns>:challenge:<id>`, bound to the user and the sale. The first check takes
// it out (GETDEL), right or wrong, so a challenge is answered at most once and
// guessing costs a new challenge each time.
import { randomBytes, randomInt } from "node:crypto";
import type { RedisClient } from "../../services/common/redis.js";

export interface Question {
  text: string;
  answer: string;
}

/** A random integer in [min, max]. */
export type RandomInt = (min: number, max: number) => number;

export const cryptoRandomInt: RandomInt = (min, max) => randomInt(min, max + 1);

const NUMBER_WORDS = ["zero", "one", "two", "three", "four", "five", "six", "seven", "eight", "nine", "ten", "eleven", "twelve"];

/** "What is 7 plus 12?", "What is nine minus 4?", "What is 3 times 6?": the answer is a whole number from 0 to 144. */
export function generateQuestion(random: RandomInt = cryptoRandomInt): Question {
  const say = (n: number) => (n < NUMBER_WORDS.length && random(0, 1) === 1 ? NUMBER_WORDS[n] : String(n));
  switch (random(0, 2)) {
    case 0: {
      const a = random(1, 20);
      const b = random(1, 20);
      return { text: `What is ${say(a)} plus ${say(b)}?`, answer: String(a + b) };
    }
    case 1: {
      const b = random(1, 12);
      const a = b + random(0, 12);
      return { text: `What is ${say(a)} minus ${say(b)}?`, answer: String(a - b) };
    }
    default: {
      const a = random(2, 12);
      const b = random(2, 9);
      return { text: `What is ${say(a)} times ${say(b)}?`, answer: String(a * b) };
    }
  }
}

/** The answer as compared: trimmed, leading zeros and a plus sign ignored; undefined when it is not a whole number. */
export function normalizeAnswer(answer: string): string | undefined {
  const match = /^\s*\+?0*(\d{1,6})\s*$/.exec(answer);
  return match ? String(Number(match[1])) : undefined;
}

const escapeXml = (s: string) => s.replace(/[<>&'"]/g, (c) => `&#${c.charCodeAt(0)};`);

/**
 * The question drawn as SVG: each character placed on its own with a small
 * random shift, rotation and size, over a few noise lines and dots. Enough to
 * stop a script that reads the text out of the markup in one line; not a
 * defence against a determined solver (the text version is served for
 * accessibility anyway); the challenge's worth is the per-attempt cost.
 */
export function renderSvg(text: string, random: RandomInt = cryptoRandomInt): Buffer {
  const charWidth = 13;
  const width = 20 + text.length * charWidth;
  const height = 48;
  const parts: string[] = [];
  for (let i = 0; i < 6; i++) {
    const [x1, y1, x2, y2] = [random(0, width), random(0, height), random(0, width), random(0, height)];
    parts.push(`<line x1="${x1}" y1="${y1}" x2="${x2}" y2="${y2}" stroke="#${random(0x888, 0xccc).toString(16)}" stroke-width="${random(1, 2)}"/>`);
  }
  for (let i = 0; i < 30; i++) {
    parts.push(`<circle cx="${random(0, width)}" cy="${random(0, height)}" r="1" fill="#${random(0x666, 0xbbb).toString(16)}"/>`);
  }
  [...text].forEach((ch, i) => {
    if (ch === " ") return;
    const x = 10 + i * charWidth + random(-2, 2);
    const y = 30 + random(-5, 5);
    const angle = random(-18, 18);
    const size = random(17, 22);
    parts.push(
      `<text x="${x}" y="${y}" font-size="${size}" font-family="monospace" fill="#${random(0x111, 0x555).toString(16)}" transform="rotate(${angle} ${x} ${y})">${escapeXml(ch)}</text>`,
    );
  });
  return Buffer.from(
    `<svg xmlns="http://www.w3.org/2000/svg" width="${width}" height="${height}" viewBox="0 0 ${width} ${height}">` +
      `<rect width="100%" height="100%" fill="#f7f7f2"/>${parts.join("")}</svg>`,
  );
}

export const CHALLENGE_ID_RE = /^[A-Za-z0-9_-]{22}$/;
export const newChallengeId = (): string => randomBytes(16).toString("base64url");

interface StoredChallenge {
  userId: string;
  saleId: string;
  answer: string;
  expiresAtMs: number;
}

export type ChallengeCheck = { ok: true } | { ok: false; why: string };

export interface ChallengeStore {
  put(id: string, challenge: StoredChallenge, ttlMs: number): Promise<void>;
  /** Takes the challenge out (GETDEL) and compares: the first check is the only one. */
  check(id: string, attempt: { userId: string; saleId: string; answer: string; nowMs: number }): Promise<ChallengeCheck>;
}

export function createChallengeStore(redis: RedisClient, namespace: string): ChallengeStore {
  const key = (id: string) => `${namespace}:challenge:${id}`;
  return {
    async put(id, challenge, ttlMs) {
      await redis.set(key(id), JSON.stringify(challenge), "PX", ttlMs);
    },
    async check(id, attempt) {
      const raw = await redis.getdel(key(id));
      if (raw === null) return { ok: false, why: "no such challenge: unknown, expired or already answered" };
      const stored = JSON.parse(raw) as StoredChallenge;
      if (stored.userId !== attempt.userId || stored.saleId !== attempt.saleId) return { ok: false, why: "the challenge belongs to another user or sale" };
      if (attempt.nowMs >= stored.expiresAtMs) return { ok: false, why: "the challenge expired" };
      if (normalizeAnswer(attempt.answer) !== stored.answer) return { ok: false, why: "wrong answer" };
      return { ok: true };
    },
  };
}
