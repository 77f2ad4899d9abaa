import { describe, expect, it } from 'vitest';
import { sleep } from '../../src/application/sleep.js';

describe('sleep', () => {
  it('resolves after the time given', async () => {
    const started = performance.now();
    await sleep(30);
    expect(performance.now() - started).toBeGreaterThanOrEqual(29);
  });

  it('resolves at once when its signal aborts while it waits', async () => {
    const stop = new AbortController();
    const started = performance.now();
    setTimeout(() => stop.abort(), 10);
    await sleep(10_000, stop.signal);
    expect(performance.now() - started).toBeLessThan(5_000);
  });

  it('resolves at once when its signal has already aborted', async () => {
    const started = performance.now();
    await sleep(10_000, AbortSignal.abort());
    expect(performance.now() - started).toBeLessThan(5_000);
  });
});
