import { setImmediate as nextTurn } from "node:timers/promises";
import { describe, expect, it } from "vitest";
import { createLingerBatcher } from "./linger-batcher.js";

/** A batcher over items that count for their value, recording the batches it runs; each batch ends when released. */
function recorder(opts: { maxSize: number; maxConcurrent: number; lingerMs: number }) {
  const batches: number[][] = [];
  const running: (() => void)[] = [];
  let ran = () => {};
  const batcher = createLingerBatcher<number>({
    ...opts,
    sizeOf: (n) => n,
    run: (batch) =>
      new Promise<void>((resolve) => {
        batches.push(batch);
        running.push(resolve);
        ran();
      }),
  });
  const nextBatch = () => new Promise<void>((resolve) => (ran = resolve));
  return { batcher, batches, running, nextBatch };
}

describe("createLingerBatcher", () => {
  it("holds a batch that is not full for the linger, and starts it at once when it fills", async () => {
    const { batcher, batches } = recorder({ maxSize: 4, maxConcurrent: 1, lingerMs: 60_000 });
    batcher.add(1);
    batcher.add(1);
    await nextTurn();
    await nextTurn();
    expect(batches).toEqual([]);
    batcher.add(2);
    await nextTurn();
    expect(batches).toEqual([[1, 1, 2]]);
  });

  it("runs a batch that is not full once the linger is over", async () => {
    const { batcher, batches, nextBatch } = recorder({ maxSize: 100, maxConcurrent: 1, lingerMs: 20 });
    const ran = nextBatch();
    batcher.add(3);
    await ran;
    expect(batches).toEqual([[3]]);
  });

  it("cuts batches at maxSize units, gives an oversized item a batch of its own, and runs at most maxConcurrent at once", async () => {
    const { batcher, batches, running } = recorder({ maxSize: 4, maxConcurrent: 2, lingerMs: 0 });
    for (const n of [2, 2, 3, 9, 1]) batcher.add(n);
    await nextTurn();
    expect(batches).toEqual([[2, 2], [3]]);
    running.shift()!();
    await nextTurn();
    await nextTurn();
    expect(batches).toEqual([[2, 2], [3], [9]]);
    running.shift()!();
    await nextTurn();
    await nextTurn();
    expect(batches).toEqual([[2, 2], [3], [9], [1]]);
  });

  it("hands back the items not yet in a batch, and tells when the running ones are done", async () => {
    const { batcher, batches, running } = recorder({ maxSize: 1, maxConcurrent: 1, lingerMs: 0 });
    batcher.add(1);
    batcher.add(1);
    batcher.add(1);
    await nextTurn();
    expect(batches).toEqual([[1]]);
    expect(batcher.takeWaiting()).toEqual([1, 1]);
    let idle = false;
    const done = batcher.idle().then(() => (idle = true));
    await nextTurn();
    expect(idle).toBe(false);
    running.shift()!();
    await done;
    expect(batches).toEqual([[1]]);
  });
});
