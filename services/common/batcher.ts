// Merges calls made in the same turn of the event loop into one batch: the
// order service turns concurrent purchases into one Reserve call this way.

export interface BatcherOptions<I, R> {
  maxBatch: number;
  /** Runs one batch; must return one result per item, in order. */
  run(items: I[]): Promise<R[]>;
}

export function createBatcher<I, R>(options: BatcherOptions<I, R>): (item: I) => Promise<R> {
  let items: I[] = [];
  let waiters: { resolve(r: R): void; reject(e: unknown): void }[] = [];
  let scheduled = false;

  const flush = () => {
    scheduled = false;
    if (items.length === 0) return;
    const batch = items;
    const batchWaiters = waiters;
    items = [];
    waiters = [];
    options.run(batch).then(
      (results) => {
        if (results.length !== batch.length) {
          const error = new Error(`batch returned ${results.length} results for ${batch.length} items`);
          for (const w of batchWaiters) w.reject(error);
          return;
        }
        for (const [i, w] of batchWaiters.entries()) w.resolve(results[i]);
      },
      (error) => {
        for (const w of batchWaiters) w.reject(error);
      },
    );
  };

  return (item) =>
    new Promise<R>((resolve, reject) => {
      items.push(item);
      waiters.push({ resolve, reject });
      if (items.length >= options.maxBatch) flush();
      else if (!scheduled) {
        scheduled = true;
        setImmediate(flush);
      }
    });
}
