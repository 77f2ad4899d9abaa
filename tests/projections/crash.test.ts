import { spawn, type ChildProcess } from 'node:child_process';
import { fileURLToPath } from 'node:url';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { parsePosition } from '../../src/application/ports/position.js';
import { eventCountsProjection, readEventCounts } from '../../src/projections/event-counts/event-counts.projection.js';
import { requestRebuild } from '../../src/projections/runtime/projection-checkpoints.queries.js';
import { hasProcessed } from '../../src/projections/runtime/wait-for-position.js';
import { activeCheckpoint, appendEvents, countsInLog, createHarness, createRuntime, eventually, type Harness } from './support/runtime-harness.js';

const child = fileURLToPath(new URL('./support/crash-child.ts', import.meta.url));
let harness: Harness;

beforeAll(async () => {
  harness = await createHarness();
});

afterAll(async () => {
  await harness.close();
});

/**
 * `node --import tsx` rather than `npx tsx`: npx would be the process we kill, and the projector
 * running under it would live on, holding its lock.
 */
function startChild(): ChildProcess {
  return spawn(process.execPath, ['--import', 'tsx', child, harness.url, 'crashed'], { stdio: ['ignore', 'ignore', 'inherit'] });
}

async function kill(projector: ChildProcess): Promise<void> {
  const exited = new Promise((resolve) => projector.once('exit', resolve));
  projector.kill('SIGKILL');
  await exited;
}

async function processed(): Promise<bigint> {
  return (await activeCheckpoint(harness.db, 'crashed'))?.eventsProcessed ?? 0n;
}

describe('crash safety', () => {
  it('after SIGKILLs in the middle of batches, the rows are exactly the log: nothing lost, nothing applied twice', async () => {
    await appendEvents(harness.store, { streams: 8, perStream: 100, prefix: 'crashed' });

    const one = startChild();
    await eventually(async () => (await processed()) >= 120n, 30_000, 'the first child to commit some batches');
    await kill(one);
    const afterFirst = await processed();
    expect(afterFirst).toBeLessThan(800n);

    // The second child takes over from the first's checkpoint while events keep coming in.
    const two = startChild();
    const appending = appendEvents(harness.store, { streams: 8, perStream: 30, prefix: 'crashed' });
    await eventually(async () => (await processed()) >= afterFirst + 120n, 30_000, 'the second child to make progress');
    await kill(two);
    const { last } = await appending;

    const runtime = createRuntime(harness, [eventCountsProjection({ name: 'crashed', eventTypes: ['Counted'] })]);
    runtime.start();
    try {
      await eventually(async () => hasProcessed(parsePosition((await activeCheckpoint(harness.db, 'crashed'))?.position ?? ''), last), 30_000, 'catch-up');
      const counts = await readEventCounts(harness.db, 'crashed');
      expect(counts).toEqual(await countsInLog(harness.store, ['Counted'], last));
      expect([...counts.values()]).toEqual(Array.from({ length: 8 }, () => 130));

      // And a rebuild from the first event, swapped in, shows the very same rows.
      await requestRebuild(harness.db, 'crashed');
      await eventually(async () => (await activeCheckpoint(harness.db, 'crashed'))?.generation === 2, 30_000, 'the rebuild');
      expect(await readEventCounts(harness.db, 'crashed')).toEqual(counts);
    } finally {
      await runtime.stop();
    }
  });
});
