// Bounded concurrency: at most `size` tasks run at once, the rest wait in order.

export interface Semaphore {
  acquire(): Promise<void>;
  release(): void;
  run<T>(task: () => Promise<T>): Promise<T>;
  readonly active: number;
}

export function semaphore(size: number): Semaphore {
  let active = 0;
  const waiting: (() => void)[] = [];
  const s: Semaphore = {
    acquire() {
      if (active < size) {
        active++;
        return Promise.resolve();
      }
      return new Promise<void>((resolve) => waiting.push(resolve));
    },
    release() {
      const next = waiting.shift();
      if (next) next();
      else active--;
    },
    async run(task) {
      await s.acquire();
      try {
        return await task();
      } finally {
        s.release();
      }
    },
    get active() {
      return active;
    },
  };
  return s;
}

/** Runs `task` over `items`, `size` at a time; results in input order. */
export async function mapBounded<T, R>(items: readonly T[], size: number, task: (item: T) => Promise<R>): Promise<R[]> {
  const out = new Array<R>(items.length);
  let next = 0;
  const worker = async () => {
    while (next < items.length) {
      const i = next++;
      out[i] = await task(items[i]);
    }
  };
  await Promise.all(Array.from({ length: Math.min(size, items.length) }, worker));
  return out;
}
