import { setTimeout } from 'node:timers/promises';

/** Resolves after `ms`, or at once when `signal` aborts: a loop that waits wakes up to see it is told to stop. */
export async function sleep(ms: number, signal?: AbortSignal): Promise<void> {
  try {
    await setTimeout(ms, undefined, { signal });
  } catch (error) {
    if (!signal?.aborted) throw error;
  }
}
