// Challenge questions and their images.
import { describe, expect, it } from "vitest";
import { generateQuestion, normalizeAnswer, renderSvg } from "./challenge.js";

const WORDS: Record<string, number> = {
  zero: 0,
  one: 1,
  two: 2,
  three: 3,
  four: 4,
  five: 5,
  six: 6,
  seven: 7,
  eight: 8,
  nine: 9,
  ten: 10,
  eleven: 11,
  twelve: 12,
};
const value = (token: string) => (token in WORDS ? WORDS[token] : Number(token));

/** Solves a question the way a person reads it. */
function solve(text: string): number {
  const m = /^What is (\w+) (plus|minus|times) (\w+)\?$/.exec(text);
  if (!m) throw new Error(`unexpected question ${text}`);
  const [a, b] = [value(m[1]), value(m[3])];
  return m[2] === "plus" ? a + b : m[2] === "minus" ? a - b : a * b;
}

describe("challenge questions", () => {
  it("are simple arithmetic whose stored answer is the right one, never negative", () => {
    const operations = new Set<string>();
    for (let i = 0; i < 500; i++) {
      const q = generateQuestion();
      expect(Number(q.answer)).toBe(solve(q.text));
      expect(Number(q.answer)).toBeGreaterThanOrEqual(0);
      operations.add(q.text.split(" ")[3]);
    }
    expect(operations).toEqual(new Set(["plus", "minus", "times"]));
  });

  it("compare answers as whole numbers", () => {
    expect(normalizeAnswer(" 19 ")).toBe("19");
    expect(normalizeAnswer("019")).toBe("19");
    expect(normalizeAnswer("+7")).toBe("7");
    expect(normalizeAnswer("0")).toBe("0");
    for (const bad of ["", "nineteen", "1 9", "19.0", "-3", "1234567"]) expect(normalizeAnswer(bad)).toBeUndefined();
  });
});

describe("challenge images", () => {
  it("are SVG drawing each character apart, so the question is not one string in the markup", () => {
    const text = "What is 7 plus 12?";
    const svg = renderSvg(text).toString();
    expect(svg.startsWith('<svg xmlns="http://www.w3.org/2000/svg"')).toBe(true);
    expect(svg.endsWith("</svg>")).toBe(true);
    expect(svg).not.toContain("plus");
    const drawn = [...svg.matchAll(/<text[^>]*>([^<]*)<\/text>/g)].map((m) => m[1]).join("");
    expect(drawn).toBe(text.replace(/ /g, ""));
    expect(svg).toMatch(/rotate\(-?\d+ /);
  });

  it("escape markup characters", () => {
    const svg = renderSvg("<&>").toString();
    expect(svg).toContain("&#60;");
    expect(svg).toContain("&#38;");
    expect(svg).not.toMatch(/>[<&]</);
  });

  it("differ from one drawing to the next", () => {
    expect(renderSvg("What is 2 plus 2?").equals(renderSvg("What is 2 plus 2?"))).toBe(false);
  });
});
