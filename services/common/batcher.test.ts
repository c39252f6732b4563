import { describe, expect, it } from "vitest";
import { createBatcher } from "./batcher.js";

describe("createBatcher", () => {
  it("merges calls made in the same tick into one batch and keeps the order", async () => {
    const batches: number[][] = [];
    const call = createBatcher<number, number>({
      maxBatch: 100,
      run: async (xs) => {
        batches.push(xs);
        return xs.map((x) => x * 2);
      },
    });
    const results = await Promise.all([1, 2, 3].map(call));
    expect(results).toEqual([2, 4, 6]);
    expect(batches).toEqual([[1, 2, 3]]);
  });

  it("cuts batches at maxBatch", async () => {
    const sizes: number[] = [];
    const call = createBatcher<number, number>({
      maxBatch: 4,
      run: async (xs) => {
        sizes.push(xs.length);
        return xs;
      },
    });
    await Promise.all(Array.from({ length: 10 }, (_, i) => call(i)));
    expect(sizes).toEqual([4, 4, 2]);
  });

  it("rejects every caller of a failed batch and keeps working afterwards", async () => {
    let fail = true;
    const call = createBatcher<number, number>({
      maxBatch: 10,
      run: async (xs) => {
        if (fail) throw new Error("down");
        return xs;
      },
    });
    const failed = await Promise.allSettled([call(1), call(2)]);
    expect(failed.map((r) => r.status)).toEqual(["rejected", "rejected"]);
    fail = false;
    expect(await call(3)).toBe(3);
  });

  it("rejects when the batch answers with the wrong number of results", async () => {
    const call = createBatcher<number, number>({ maxBatch: 10, run: async () => [1] });
    await expect(Promise.all([call(1), call(2)])).rejects.toThrow(/2 items/);
  });
});
