// Gathers items into batches of up to maxSize units and runs at most
// maxConcurrent batches at once: the order writer turns delivered events into
// Postgres transactions this way. Unlike batcher.ts (one turn of the event
// loop), a batch that is not full may wait lingerMs for more: fewer, larger
// batches when each one has a fixed cost.

export interface LingerBatcherOptions<T> {
  /** Most units in one batch; a single item larger than this is a batch of its own. */
  maxSize: number;
  maxConcurrent: number;
  /** How long a batch that is not full may wait for more items (0: the next turn of the event loop). */
  lingerMs: number;
  /** The units an item counts for. */
  sizeOf(item: T): number;
  /** Runs one batch; must not reject (it handles its own failures). */
  run(batch: T[]): Promise<void>;
}

export interface LingerBatcher<T> {
  add(item: T): void;
  /** Cancels a linger under way; batches already due still start. */
  cancelLinger(): void;
  /** Removes and returns the items not yet in a batch. */
  takeWaiting(): T[];
  /** Resolves once no batch is running. */
  idle(): Promise<void>;
}

export function createLingerBatcher<T>(opts: LingerBatcherOptions<T>): LingerBatcher<T> {
  const waiting: T[] = [];
  /** Units waiting. */
  let waitingSize = 0;
  let running = 0;
  let scheduled = false;
  let lingering: NodeJS.Timeout | undefined;
  const idleWaiters: (() => void)[] = [];

  /** Takes items up to maxSize units (at least one item). */
  function takeBatch(): T[] {
    let size = 0;
    let n = 0;
    while (n < waiting.length && (n === 0 || size + opts.sizeOf(waiting[n]) <= opts.maxSize)) {
      size += opts.sizeOf(waiting[n]);
      n++;
    }
    return waiting.splice(0, n);
  }

  /** Starts batches now when one is full, else once the linger is over. */
  function schedule(): void {
    if (scheduled || running >= opts.maxConcurrent) return;
    scheduled = true;
    if (waitingSize >= opts.maxSize || opts.lingerMs === 0) setImmediate(pump);
    else lingering = setTimeout(pump, opts.lingerMs);
  }

  function pump(): void {
    scheduled = false;
    clearTimeout(lingering);
    lingering = undefined;
    while (waiting.length > 0 && running < opts.maxConcurrent) {
      const batch = takeBatch();
      for (const item of batch) waitingSize -= opts.sizeOf(item);
      running++;
      void opts.run(batch).finally(() => {
        running--;
        if (waiting.length > 0) schedule();
        else if (running === 0) for (const resolve of idleWaiters.splice(0)) resolve();
      });
    }
  }

  return {
    add(item) {
      waiting.push(item);
      waitingSize += opts.sizeOf(item);
      if (scheduled && waitingSize >= opts.maxSize && lingering) {
        // A full batch does not wait out the linger.
        clearTimeout(lingering);
        lingering = undefined;
        setImmediate(pump);
        return;
      }
      schedule();
    },
    cancelLinger: () => clearTimeout(lingering),
    takeWaiting() {
      waitingSize = 0;
      return waiting.splice(0);
    },
    idle: () => (running > 0 ? new Promise<void>((resolve) => idleWaiters.push(resolve)) : Promise.resolve()),
  };
}
