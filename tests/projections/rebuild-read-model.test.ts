import { afterEach, beforeEach, describe, expect, it } from 'vitest';
import { formatPosition } from '../../src/application/ports/position.js';
import { rebuildReadModel, rebuildRate } from '../../src/infrastructure/projections/rebuild-read-model.js';
import { eventCountsProjection, readEventCounts } from '../../src/projections/event-counts/event-counts.projection.js';
import { ensureGeneration, requestRebuild } from '../../src/projections/runtime/projection-checkpoints.queries.js';
import { appendEvents, checkpointsOf, createHarness, type Harness } from './support/runtime-harness.js';

let harness: Harness;

const counts = eventCountsProjection({ eventTypes: ['Counted'] });

/** `npm run projections:rebuild -- event_counts` as the command runs it, in this process; what it printed. */
async function rebuild(): Promise<string[]> {
  const printed: string[] = [];
  await rebuildReadModel({
    db: harness.db,
    eventStore: harness.store,
    projection: counts,
    startProjectors: () => harness.startRuntime([counts]),
    print: (line) => printed.push(line),
    pollMs: 50,
  });
  return printed;
}

describe('rebuilding a read model', () => {
  beforeEach(async () => {
    harness = await createHarness();
  });

  afterEach(async () => {
    await harness.close();
  });

  it('given a read model never built, when rebuilt, then its first copy is built once, reported as generation 1 once it has every event, and no second copy is made', async () => {
    const { last, counts: inLog } = await appendEvents(harness.store, { streams: 3, perStream: 20 });

    const printed = await rebuild();

    expect(printed).toEqual([
      'event_counts has no copy yet: building it as generation 1',
      expect.stringMatching(/^event_counts built: 60 events in \d+\.\d s \(\d+ events\/s\), now live$/),
    ]);
    const generations = await checkpointsOf(harness.db, counts.name);
    expect(generations.map((row) => [row.generation, row.active, row.position])).toEqual([[1, true, formatPosition(last)]]);
    expect(await readEventCounts(harness.db)).toEqual(inLog);
  });

  it('given a rebuild already under way, when asked again, then the rate counts only the events processed since the request', async () => {
    const { last } = await appendEvents(harness.store, { streams: 2, perStream: 10 });
    await ensureGeneration(harness.db, counts.name, counts.version);
    // The live copy has every event: the rebuild goes live only once it has them too.
    await harness.pool.query(`update projection_checkpoints set position_commit = $2, position_prepare = $3 where name = $1 and active`, [
      counts.name,
      last.commit.toString(),
      last.prepare.toString(),
    ]);
    // A copy a projector had taken 51,500 events into before this request, say.
    const { generation } = await requestRebuild(harness.db, counts.name, counts.version);
    await harness.pool.query(`update projection_checkpoints set events_processed = 51500 where name = $1 and generation = $2`, [counts.name, generation]);

    const printed = await rebuild();

    const built = (await checkpointsOf(harness.db, counts.name)).find((row) => row.generation === generation);
    const since = Number(built?.eventsProcessed) - 51_500;
    expect(since).toBe(20);
    expect(printed).toEqual([`rebuilding event_counts as generation ${generation}`, expect.stringMatching(/^event_counts rebuilt: 20 events in \d+\.\d s \(\d+ events\/s\), now live$/)]);
  });
});

describe('the rebuild rate', () => {
  it('is the events processed since the request over the time since', () => {
    expect(rebuildRate(148_512n, 3.8)).toBe('148512 events in 3.8 s (39082 events/s)');
  });
});
