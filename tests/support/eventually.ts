import { sleep } from '../../src/application/sleep.js';

/**
 * Polls `probe` until it returns something other than undefined/false, or fails after
 * `timeoutMs`. A probe that throws counts as "not yet" (a read schema not created yet, say).
 */
export async function eventually<T>(probe: () => Promise<T | undefined | false>, timeoutMs = 10_000, what = 'condition'): Promise<T> {
  const deadline = Date.now() + timeoutMs;
  let lastError: unknown;
  for (;;) {
    try {
      const value = await probe();
      if (value !== undefined && value !== false) return value;
    } catch (error) {
      lastError = error;
    }
    if (Date.now() > deadline) throw new Error(`Timed out waiting for ${what}`, { cause: lastError });
    await sleep(25);
  }
}
