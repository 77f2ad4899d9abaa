import { sleep } from '../sleep.js';

/**
 * How long a task waits for the one before it on its stream, by default: far longer than a
 * command takes, far shorter than a hung append (a dead connection) could hold every later one.
 */
export const defaultMaxWaitMs = 2_000;

/**
 * Runs tasks one at a time per stream, in the order they arrive: each waits for the one before it
 * on its stream to settle, fulfilled or rejected, so a failure never blocks the next; but for
 * `maxWaitMs` at most, so a task that hangs holds the ones behind it back no longer: they then run
 * beside it, and contend for the stream as tasks of other processes do. A stream's entry goes
 * when its last task settles: only streams with work in flight are kept.
 */
export function streamQueue({ maxWaitMs = defaultMaxWaitMs }: { readonly maxWaitMs?: number | undefined } = {}) {
  /** Per stream, a promise that settles (never rejects) once its last task has. */
  const tails = new Map<string, Promise<void>>();

  function run<Result>(streamId: string, task: () => Promise<Result>): Promise<Result> {
    const previous = tails.get(streamId);
    // Nothing ahead: started at once, not a tick later.
    const result = previous ? turn(previous).then(task) : task();
    const settled = () => {
      if (tails.get(streamId) === tail) tails.delete(streamId);
    };
    const tail: Promise<void> = result.then(settled, settled);
    tails.set(streamId, tail);
    return result;
  }

  /** Once `previous` settles, or `maxWaitMs` passed; the timer is cleared when `previous` came first. */
  async function turn(previous: Promise<void>): Promise<void> {
    const done = new AbortController();
    try {
      await Promise.race([previous, sleep(maxWaitMs, done.signal)]);
    } finally {
      done.abort();
    }
  }

  return {
    run,
    /** How many streams have a task running or waiting. */
    get size(): number {
      return tails.size;
    },
  };
}
