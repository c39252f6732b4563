// Retrying a step that must not be given up on (a write, a publish) while its
// dependency is down: with backoff, for as long as its owner runs. Stopping
// never waits out a retry: the owner hands its work back instead.
import { setTimeout as sleep } from "node:timers/promises";

export interface RetryUntilStoppedOptions {
  /** Wait after the first failure; doubles after each further one, up to maxDelayMs. */
  delayMs: number;
  maxDelayMs: number;
  /** Read after each failure: once true, no further attempt is made. */
  stopped(): boolean;
  /** Whether a failure is worth another attempt (default: every one); any other is thrown to the caller. */
  retryable?(error: unknown): boolean;
  /** Told of each failure that is retried (or would be, but for a stop), with the wait before the next attempt. */
  onRetry(error: unknown, retryInMs: number): void;
}

export type RetryOutcome<T> = { done: true; value: T } | { done: false };

/** Runs `attempt` until it succeeds ({ done: true }) or fails once its owner has stopped ({ done: false }). */
export async function retryUntilStopped<T>(attempt: () => Promise<T>, opts: RetryUntilStoppedOptions): Promise<RetryOutcome<T>> {
  for (let delay = opts.delayMs; ; delay = Math.min(delay * 2, opts.maxDelayMs)) {
    try {
      return { done: true, value: await attempt() };
    } catch (error) {
      if (opts.retryable && !opts.retryable(error)) throw error;
      opts.onRetry(error, delay);
      if (opts.stopped()) return { done: false };
      await sleep(delay);
    }
  }
}
