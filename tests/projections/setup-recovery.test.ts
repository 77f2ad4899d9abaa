import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { eventCountsProjection, readEventCounts } from '../../src/projections/event-counts/event-counts.projection.js';
import { ensureGeneration } from '../../src/projections/runtime/projection-checkpoints.queries.js';
import type { Projection } from '../../src/projections/runtime/projection.js';
import { activeCheckpoint, appendEvents, createHarness, createRuntime, eventually, losingAnswers, onlyPrefix, type Harness } from './support/runtime-harness.js';

let harness: Harness;

beforeAll(async () => {
  harness = await createHarness();
});

afterAll(async () => {
  await harness.close();
});

describe('a generation whose setup met a passing error', () => {
  it('goes on from the first event when the answer to its setup COMMIT was lost, though the setup went through', async () => {
    const name = 'setup_lost';
    // The generation exists already, so that the setup's is the runtime's first COMMIT.
    await ensureGeneration(harness.db, name, 1);
    const { counts, last } = await appendEvents(harness.store, { streams: 2, perStream: 10, prefix: name, type: 'SetUpLost' });
    const losing = losingAnswers(harness.url);
    losing.loseAnswer(/^commit$/i);
    const runtime = createRuntime({ url: harness.url, db: losing.db, revealed: harness.revealed }, [eventCountsProjection({ name, eventTypes: ['SetUpLost'] })]);
    runtime.start();
    try {
      await eventually(() => harness.reached(name, last), 5000, 'the projection to catch up');
      expect(losing.lost()).toBe(1);
      expect(await activeCheckpoint(harness.db, name)).toMatchObject({ status: 'running', lastFailure: null });
      expect(onlyPrefix(await readEventCounts(harness.db, name), name)).toEqual(counts);
    } finally {
      await runtime.stop();
      await losing.db.destroy();
    }
  });

  it('tries its setup again after a deadlock, and records no failure', async () => {
    const name = 'setup_deadlock';
    const counting = eventCountsProjection({ name, eventTypes: ['SetUpDeadlock'] });
    let tries = 0;
    const projection: Projection = {
      ...counting,
      async migrate(db) {
        tries += 1;
        if (tries === 1) throw Object.assign(new Error('deadlock detected'), { code: '40P01' });
        await counting.migrate(db);
      },
    };
    const { counts, last } = await appendEvents(harness.store, { streams: 1, perStream: 5, prefix: name, type: 'SetUpDeadlock' });
    harness.startRuntime([projection]);
    await eventually(() => harness.reached(name, last), 5000, 'the projection to catch up');
    expect(tries).toBe(2);
    expect(await activeCheckpoint(harness.db, name)).toMatchObject({ status: 'running', lastFailure: null });
    expect(onlyPrefix(await readEventCounts(harness.db, name), name)).toEqual(counts);
  });
});
