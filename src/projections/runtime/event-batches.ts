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
 * An item already waiting when a batch begins arrived while the consumer worked on the previous
 * batch: its wait is counted from when that batch was handed over, the earliest it can have
 * arrived. Else, behind a commit slower than `maxWaitMs`, every batch would wait its full time
 * again on top, and the lag grow by a wait per commit.
 *
 * An error from the source is thrown after the batch of the items it gave before.
 *
 * The source must end when its subscription's signal aborts: a `next()` still waiting for a live
 * item when the consumer stops is left to that signal rather than awaited here.
 */
export async function* batchEvents<T>(source: AsyncIterable<T>, options: BatchOptions): AsyncGenerator<T[]> {
  const iterator = source[Symbol.asyncIterator]();
  // A `next()` that outlived its batch's deadline belongs to the next batch, never dropped.
  let pending: Promise<IteratorResult<T>> | undefined;
  let finished = false;
  let handedOver = performance.now();
  try {
    while (!finished) {
      pending ??= iterator.next();
      const waiting = await ifAlreadyThere(pending);
      const first = waiting === notYet ? await settleWithin(pending, options.idleMs) : waiting;
      if (first === timedOut) {
        handedOver = performance.now();
        yield [];
        continue;
      }
      pending = undefined;
      if (first.done) return;
      const batch = [first.value];
      // What the source threw after the batch's first item: thrown once the items before it are out.
      let failure: { readonly error: unknown } | undefined;
      const waitedMs = waiting === notYet ? 0 : performance.now() - handedOver;
      let timer: NodeJS.Timeout | undefined;
      const deadline = new Promise<typeof timedOut>((resolve) => {
        timer = setTimeout(() => resolve(timedOut), Math.max(0, options.maxWaitMs - waitedMs));
      });
      try {
        while (batch.length < options.size) {
          pending ??= iterator.next();
          let next: IteratorResult<T> | typeof timedOut;
          try {
            next = await Promise.race([pending, deadline]);
          } catch (error) {
            // Thrown at once, it took the items before it down too: however often the consumer
            // read them again, they never got past the item the source could not give.
            pending = undefined;
            failure = { error };
            break;
          }
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
      handedOver = performance.now();
      yield batch;
      if (failure) throw failure.error;
    }
  } finally {
    if (pending) pending.catch(() => undefined);
    else await iterator.return?.();
  }
}

const notYet = Symbol('notYet');

/**
 * The promise's outcome if it is already there, else `notYet`: an item the source holds ready
 * settles in microtasks, all of which run before the event loop's next check phase.
 */
function ifAlreadyThere<T>(promise: Promise<T>): Promise<T | typeof notYet> {
  return settleBefore(promise, notYet, (fire) => {
    const immediate = setImmediate(fire);
    return () => clearImmediate(immediate);
  });
}

/** The promise's outcome, or `timedOut` after `ms` (never, when `ms` is undefined). */
function settleWithin<T>(promise: Promise<T>, ms: number | undefined): Promise<T | typeof timedOut> {
  if (ms === undefined) return promise;
  return settleBefore(promise, timedOut, (fire) => {
    const timer = setTimeout(fire, ms);
    return () => clearTimeout(timer);
  });
}

/** The promise's outcome, or `sentinel` if `arm`'s trigger fires first; the trigger is disarmed either way. */
async function settleBefore<T, S>(promise: Promise<T>, sentinel: S, arm: (fire: () => void) => () => void): Promise<T | S> {
  let disarm = () => undefined as void;
  const fired = new Promise<S>((resolve) => {
    disarm = arm(() => resolve(sentinel));
  });
  try {
    return await Promise.race([promise, fired]);
  } finally {
    disarm();
  }
}
