import { userInfo } from 'node:os';
import { afterEach, beforeEach, describe, expect, it } from 'vitest';
import { cliRebuildRequest } from '../../src/infrastructure/projections/cli-rebuild-request.js';
import { rebuildReadModel } from '../../src/infrastructure/projections/rebuild-read-model.js';
import { eventCountsProjection } from '../../src/projections/event-counts/event-counts.projection.js';
import { ensureGeneration } from '../../src/projections/runtime/projection-checkpoints.queries.js';
import { appendEvents, checkpointsOf, createHarness, type Harness } from './support/runtime-harness.js';

describe('who the rebuild command says asked', () => {
  it('is the operating-system user running it, with no request id and no reason', () => {
    expect(cliRebuildRequest()).toEqual({ requestedBy: `cli:${userInfo().username}`, requestId: null, reason: null });
  });

  it('is still the command line when the user has no name (no passwd entry, as in some containers)', () => {
    const noEntry = () => {
      throw new Error('ENOENT: no such file or directory, uv_os_get_passwd');
    };
    expect(cliRebuildRequest(noEntry).requestedBy).toBe('cli:unknown');
    expect(cliRebuildRequest(() => ({ username: '' })).requestedBy).toBe('cli:unknown');
  });
});

describe('a rebuild asked for on the command line', () => {
  let harness: Harness;
  const counts = eventCountsProjection({ eventTypes: ['Counted'] });

  beforeEach(async () => {
    harness = await createHarness();
  });
  afterEach(() => harness.close());

  it('given a live read model, when rebuilt by the command, then the new generation records the OS user and no request id', async () => {
    await appendEvents(harness.store, { streams: 1, perStream: 5 });
    await ensureGeneration(harness.db, counts.name, counts.version);

    await rebuildReadModel({
      db: harness.db,
      eventStore: harness.store,
      projection: counts,
      startProjectors: () => harness.startRuntime([counts]),
      print: () => undefined,
      pollMs: 50,
    });

    const rebuilt = (await checkpointsOf(harness.db, counts.name)).find((row) => row.active);
    expect(rebuilt).toMatchObject({ generation: 2, requestedBy: `cli:${userInfo().username}`, requestId: null, reason: null, requestedAt: expect.any(Date) });
  });
});
