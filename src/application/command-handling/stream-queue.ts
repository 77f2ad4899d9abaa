/**
 * Runs tasks one at a time per stream, in the order they arrive: each waits for the one before it
 * on its stream to settle, fulfilled or rejected, so a failure never blocks the next. A stream's
 * entry goes when its last task settles: only streams with work in flight are kept.
 */
export function streamQueue() {
  /** Per stream, a promise that settles (never rejects) once its last task has. */
  const tails = new Map<string, Promise<void>>();

  function run<Result>(streamId: string, task: () => Promise<Result>): Promise<Result> {
    const previous = tails.get(streamId);
    // Nothing ahead: started at once, not a tick later.
    const result = previous ? previous.then(task) : task();
    const settled = () => {
      if (tails.get(streamId) === tail) tails.delete(streamId);
    };
    const tail: Promise<void> = result.then(settled, settled);
    tails.set(streamId, tail);
    return result;
  }

  return {
    run,
    /** How many streams have a task running or waiting. */
    get size(): number {
      return tails.size;
    },
  };
}
