import { fc, test } from '@fast-check/vitest';
import { describe, expect, it } from 'vitest';
import { Batcher, type Outcome } from '../../../src/infrastructure/pg-event-store/batcher.js';

/** A sender whose sends the test finishes by hand, recording what went out together. */
function manualSender() {
  const sends: Array<{ items: number[]; finish(fail?: boolean): void }> = [];
  const answer = (item: number): Outcome<string> => (item < 0 ? { ok: false, error: new Error(`refused ${item}`) } : { ok: true, value: `done ${item}` });
  const pending = (items: number[]) =>
    new Promise<void>((resolve, reject) => sends.push({ items, finish: (fail) => (fail ? reject(new Error('batch failed')) : resolve()) }));
  const commit = new Batcher<number, string>(
    async (item) => {
      await pending([item]);
      const outcome = answer(item);
      if (!outcome.ok) throw outcome.error;
      return outcome.value;
    },
    async (items) => {
      await pending([...items]);
      return items.map(answer);
    },
    { concurrency: 2, maxBatch: 3 },
  );
  return { commit, sends };
}

const settled = <T>(promise: Promise<T>) => promise.then((value) => ({ value }), (error: unknown) => ({ error: String(error) }));
const tick = () => new Promise((resolve) => setImmediate(resolve));

describe('Batcher', () => {
  it('sends a lone item at once, alone', async () => {
    const { commit, sends } = manualSender();
    const result = commit.submit(1);
    expect(sends.map((send) => send.items)).toEqual([[1]]);
    sends[0]?.finish();
    await expect(result).resolves.toBe('done 1');
  });

  it('sends what arrives while `concurrency` sends are in flight as batches of at most maxBatch, when one finishes', async () => {
    const { commit, sends } = manualSender();
    const results = [1, 2, 3, 4, 5, 6, 7].map((item) => commit.submit(item));
    expect(sends.map((send) => send.items)).toEqual([[1], [2]]);
    sends[0]?.finish();
    await tick();
    expect(sends.map((send) => send.items)).toEqual([[1], [2], [3, 4, 5]]);
    sends[1]?.finish();
    await tick();
    expect(sends.map((send) => send.items)).toEqual([[1], [2], [3, 4, 5], [6, 7]]);
    sends[2]?.finish();
    sends[3]?.finish();
    expect(await Promise.all(results)).toEqual(['done 1', 'done 2', 'done 3', 'done 4', 'done 5', 'done 6', 'done 7']);
  });

  it('refuses only the refused item of a batch', async () => {
    const { commit, sends } = manualSender();
    const results = [1, 2, -3, 4, 5].map((item) => settled(commit.submit(item)));
    sends[0]?.finish();
    sends[1]?.finish();
    await tick();
    expect(sends.map((send) => send.items)).toEqual([[1], [2], [-3, 4, 5]]);
    sends[2]?.finish();
    expect(await Promise.all(results)).toEqual([{ value: 'done 1' }, { value: 'done 2' }, { error: 'Error: refused -3' }, { value: 'done 4' }, { value: 'done 5' }]);
  });

  it('sends each item of a batch that failed as a whole again alone, one after the other', async () => {
    const { commit, sends } = manualSender();
    const results = [1, 2, 3, 4].map((item) => settled(commit.submit(item)));
    sends[0]?.finish();
    await tick();
    sends[2]?.finish(true);
    await tick();
    expect(sends.map((send) => send.items)).toEqual([[1], [2], [3, 4], [3]]);
    sends[3]?.finish();
    await tick();
    expect(sends.map((send) => send.items)).toEqual([[1], [2], [3, 4], [3], [4]]);
    sends[4]?.finish(true);
    sends[1]?.finish();
    expect(await Promise.all(results)).toEqual([{ value: 'done 1' }, { value: 'done 2' }, { value: 'done 3' }, { error: 'Error: batch failed' }]);
  });
});

/**
 * The model: whatever the arrival order, concurrency, batch size and failures, every item is
 * answered exactly once with its own outcome (a failed batch costs a resend, never an answer),
 * and no more than `concurrency` sends are ever in flight.
 */
test.prop(
  [
    fc.array(fc.record({ item: fc.integer({ min: -5, max: 50 }), delay: fc.nat({ max: 3 }) }), { minLength: 1, maxLength: 40 }),
    fc.integer({ min: 1, max: 4 }),
    fc.integer({ min: 1, max: 6 }),
    fc.array(fc.boolean(), { minLength: 1, maxLength: 10 }),
  ],
  { numRuns: 150 },
)('answers every item once with its own outcome, with at most `concurrency` sends in flight', async (arrivals, concurrency, maxBatch, batchFailures) => {
  let inFlight = 0;
  let most = 0;
  let batches = 0;
  const sent: number[] = [];
  const send = async <T>(work: () => T): Promise<T> => {
    inFlight++;
    most = Math.max(most, inFlight);
    await tick();
    inFlight--;
    return work();
  };
  const commit = new Batcher<number, number>(
    (item) =>
      send(() => {
        sent.push(item);
        if (item < 0) throw new Error(`refused ${item}`);
        return item * 10;
      }),
    (items) =>
      send(() => {
        if (batchFailures[batches++ % batchFailures.length]) throw new Error('the whole batch failed');
        sent.push(...items);
        return items.map((item): Outcome<number> => (item < 0 ? { ok: false, error: new Error(`refused ${item}`) } : { ok: true, value: item * 10 }));
      }),
    { concurrency, maxBatch },
  );
  const answers: Array<Promise<{ value: number } | { error: string }>> = [];
  for (const { item, delay } of arrivals) {
    for (let i = 0; i < delay; i++) await tick();
    answers.push(settled(commit.submit(item)));
  }
  const expected = arrivals.map(({ item }) => (item < 0 ? { error: `Error: refused ${item}` } : { value: item * 10 }));
  expect(await Promise.all(answers)).toEqual(expected);
  expect(most).toBeLessThanOrEqual(concurrency);
  expect(sent.slice().sort((a, b) => a - b)).toEqual(arrivals.map(({ item }) => item).sort((a, b) => a - b));
});
