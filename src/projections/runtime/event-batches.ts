export type BatchOptions = {
  /** A batch closes when it holds this many items… */
  readonly size: number;
  /** …or this long after its first item arrived, whichever comes first. */
  readonly maxWaitMs: number;
  /** When set, an empty batch is yielded after this long without any item (a heartbeat). */
  readonly idleMs?: number;
};

const timedOut = Symbol('timedOut');

/**
 * Groups a catch-up-then-live iteration into batches, empty only as an idle heartbeat. While catching up the items
 * are already there and batches fill to `size` at once; live, an item waits at most `maxWaitMs`
 * for company, which is what keeps both throughput (one transaction per batch) and latency.
 *
 * The source must end when its subscription's signal aborts: a `next()` still waiting for a live
 * item when the consumer stops is left to that signal rather than awaited here.
 */
export async function* batchEvents<T>(source: AsyncIterable<T>, options: BatchOptions): AsyncGenerator<T[]> {
  const iterator = source[Symbol.asyncIterator]();
  // A `next()` that outlived its batch's deadline belongs to the next batch, never dropped.
  let pending: Promise<IteratorResult<T>> | undefined;
  let finished = false;
  try {
    while (!finished) {
      pending ??= iterator.next();
      const first = await settleWithin(pending, options.idleMs);
      if (first === timedOut) {
        yield [];
        continue;
      }
      pending = undefined;
      if (first.done) return;
      const batch = [first.value];
      let timer: NodeJS.Timeout | undefined;
      const deadline = new Promise<typeof timedOut>((resolve) => {
        timer = setTimeout(() => resolve(timedOut), options.maxWaitMs);
      });
      try {
        while (batch.length < options.size) {
          pending ??= iterator.next();
          const next = await Promise.race([pending, deadline]);
          if (next === timedOut) break;
          pending = undefined;
          if (next.done) {
            finished = true;
            break;
          }
          batch.push(next.value);
        }
      } finally {
        clearTimeout(timer);
      }
      yield batch;
    }
  } finally {
    if (pending) pending.catch(() => undefined);
    else await iterator.return?.();
  }
}

/** The promise's outcome, or `timedOut` after `ms` (never, when `ms` is undefined). */
async function settleWithin<T>(promise: Promise<T>, ms: number | undefined): Promise<T | typeof timedOut> {
  if (ms === undefined) return promise;
  let timer: NodeJS.Timeout | undefined;
  const timeout = new Promise<typeof timedOut>((resolve) => {
    timer = setTimeout(() => resolve(timedOut), ms);
  });
  try {
    return await Promise.race([promise, timeout]);
  } finally {
    clearTimeout(timer);
  }
}
