// A task run every intervalMs and on demand, never two runs at once: the
// periodic reads and checks of a service (the order writer's queue lag, the
// inventory's Redis loss watch). A failed run is logged once until one succeeds.
import type { Logger } from "./log.js";
import { errorMessage } from "./error-message.js";

export interface Poll {
  /** Runs the task now, or joins the run in progress; resolves when it ends (never rejects). Nothing after stop(). */
  run(): Promise<void>;
  /** Ends the interval and waits for the run in progress. */
  stop(): Promise<void>;
}

/** Runs `task` every intervalMs (the first time after intervalMs: run() for one now); `failed` is logged, with "; retrying", when it throws. */
export function poll(task: () => Promise<void>, intervalMs: number, log: Logger, failed: string): Poll {
  let running: Promise<void> | undefined;
  let failing = false;
  let stopped = false;
  const run = (): Promise<void> => {
    if (stopped) return Promise.resolve();
    running ??= task()
      .then(
        () => {
          failing = false;
        },
        (error: unknown) => {
          if (!failing) log.warn(`${failed}; retrying`, { err: errorMessage(error) });
          failing = true;
        },
      )
      .finally(() => (running = undefined));
    return running;
  };
  const timer = setInterval(() => void run(), intervalMs);
  timer.unref();
  return {
    run,
    async stop() {
      stopped = true;
      clearInterval(timer);
      await running;
    },
  };
}
