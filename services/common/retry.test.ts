import { describe, expect, it } from "vitest";
import { retryUntilStopped } from "./retry.js";

const failing = (failures: number, error: unknown = new Error("down")) => {
  let calls = 0;
  return {
    attempt: async () => {
      calls++;
      if (calls <= failures) throw error;
      return calls;
    },
    calls: () => calls,
  };
};

describe("retryUntilStopped", () => {
  it("retries until the attempt succeeds, the wait doubling up to the cap", async () => {
    const waits: number[] = [];
    const step = failing(4);
    const outcome = await retryUntilStopped(step.attempt, { delayMs: 1, maxDelayMs: 5, stopped: () => false, onRetry: (_, ms) => waits.push(ms) });
    expect(outcome).toEqual({ done: true, value: 5 });
    expect(waits).toEqual([1, 2, 4, 5]);
  });

  it("gives up after the first failure once its owner has stopped", async () => {
    let stopped = false;
    const step = failing(Infinity);
    const seen: unknown[] = [];
    const outcome = await retryUntilStopped(step.attempt, {
      delayMs: 1,
      maxDelayMs: 1,
      stopped: () => stopped,
      onRetry: (error) => {
        seen.push(error);
        if (seen.length === 3) stopped = true;
      },
    });
    expect(outcome).toEqual({ done: false });
    expect(step.calls()).toBe(3);
  });

  it("throws a failure that is not retryable, without retrying it", async () => {
    const poison = new Error("constraint");
    const step = failing(Infinity, poison);
    let retries = 0;
    await expect(retryUntilStopped(step.attempt, { delayMs: 1, maxDelayMs: 1, stopped: () => false, retryable: (e) => e !== poison, onRetry: () => retries++ })).rejects.toBe(
      poison,
    );
    expect(step.calls()).toBe(1);
    expect(retries).toBe(0);
  });
});
