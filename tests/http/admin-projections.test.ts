import { randomUUID } from 'node:crypto';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { createListing } from '../../src/application/listings/listing.use-cases.js';
import type { RecordedEvent } from '../../src/application/ports/event-store.js';
import { formatPosition } from '../../src/application/ports/position.js';
import { readModelProjections } from '../../src/projections/read-models.js';
import { requestRebuild } from '../../src/projections/runtime/projection-checkpoints.queries.js';
import type { CheckpointTables } from '../../src/projections/runtime/projection-checkpoints.table.js';
import { admin, as, listingInput, owner } from '../support/command-side.js';
import { startQueryApi, type QueryApiFixture } from './support/query-api.fixture.js';

type ProjectionItem = {
  name: string;
  active: boolean;
  position: string;
  lagEvents: number | null;
  lagEventsCapped: boolean;
  lagMs: number | null;
};

/**
 * `GET /v1/admin/projections` over the real query API and every read model. The tests run in
 * order on one fixture: caught up first, then with the projectors stopped and events appended.
 */
describe('GET /v1/admin/projections: lag', () => {
  let q: QueryApiFixture;

  beforeAll(async () => {
    q = await startQueryApi();
    await createListing(q.side, listingInput, as(owner));
    await q.settle();
  });
  afterAll(() => q.close());

  async function activeGenerations(): Promise<ProjectionItem[]> {
    const response = await q.app.inject({ url: '/v1/admin/projections', headers: q.auth(admin) });
    expect(response.statusCode).toBe(200);
    const items = response.json<{ items: ProjectionItem[] }>().items.filter((item) => item.active);
    expect(items.map((item) => item.name).sort()).toEqual(readModelProjections.map((projection) => projection.name).sort());
    return items;
  }

  /** Appends `count` events no read model handles, to a new stream; returns the first as stored. */
  async function appendUnhandled(count: number): Promise<RecordedEvent> {
    const streamId = `lag-probe-${randomUUID()}`;
    for (let done = 0; done < count; done += 1000) {
      const events = Array.from({ length: Math.min(1000, count - done) }, () => ({ id: randomUUID(), type: 'LagProbed', data: {}, metadata: {} }));
      await q.harness.store.appendToStream(streamId, events);
    }
    // Read by stream: `readAll` stops below the oldest open transaction on the whole server.
    const stream = await q.harness.store.readStream(streamId, { maxCount: 1 });
    if (stream.status === 'no_stream') throw new Error(`${streamId} was not appended`);
    for await (const event of stream.events) return event;
    throw new Error(`${streamId} is empty`);
  }

  it('reports a caught-up projection 0 events and 0 ms behind, however long ago its last event was', async () => {
    q.clock.advance(60 * 60 * 1000);
    for (const item of await activeGenerations()) {
      expect(item, item.name).toMatchObject({ position: formatPosition(q.head()), lagEvents: 0, lagEventsCapped: false, lagMs: 0 });
    }
  });

  it('counts the events a stopped projector has not processed, and how long the oldest of them has waited', async () => {
    await q.runtime.stop();
    const checkpoint = formatPosition(q.head());
    const oldest = await appendUnhandled(3);
    q.clock.advance(5000);
    const lagMs = q.clock.now().getTime() - oldest.recordedAt.getTime();
    expect(lagMs).toBeGreaterThan(0);
    for (const item of await activeGenerations()) {
      expect(item, item.name).toMatchObject({ position: checkpoint, lagEvents: 3, lagEventsCapped: false, lagMs });
    }
  });

  it('stops counting past 10000 events behind, says so, and still ages the oldest', async () => {
    const before = await activeGenerations();
    await appendUnhandled(10_000);
    for (const item of await activeGenerations()) {
      const was = before.find((generation) => generation.name === item.name);
      expect(item, item.name).toMatchObject({ position: was?.position, lagEvents: 10_000, lagEventsCapped: true, lagMs: was?.lagMs });
    }
  });

  it('shows no lag rather than a false one when the checkpoints point into a log kept elsewhere (EventStoreDB)', async () => {
    // An EventStoreDB log position, far beyond any transaction id: the events table here does not hold it.
    await q.harness.db
      .withTables<CheckpointTables>()
      .insertInto('projection_checkpoints')
      .values({ name: 'kept_elsewhere', generation: 1, version: 1, active: false, status: 'rebuilding', position_commit: '90000000000000', position_prepare: '90000000000000' })
      .execute();
    for (const item of await activeGenerations()) {
      expect(item, item.name).toMatchObject({ lagEvents: null, lagEventsCapped: false, lagMs: null });
    }
  });
});

describe('GET /v1/admin/projections: who asked for each generation', () => {
  let q: QueryApiFixture;

  beforeAll(async () => {
    q = await startQueryApi();
    await q.settle();
    // Stopped, so that the rebuild below stays beside the live copy instead of replacing it.
    await q.runtime.stop();
  });
  afterAll(() => q.close());

  type Requested = { name: string; generation: number; active: boolean; requestedBy: string | null; requestId: string | null; requestedAt: string | null; reason: string | null };

  it('shows the requester, request, time and reason of a requested rebuild, and nulls for generations nobody asked for', async () => {
    const before = Date.now();
    const request = { requestedBy: 'admin-7', requestId: 'req-7', reason: 'Restored from last night\'s backup' };
    const { generation } = await requestRebuild(q.harness.db, 'listings', undefined, request);

    const response = await q.app.inject({ url: '/v1/admin/projections', headers: q.auth(admin) });
    expect(response.statusCode).toBe(200);
    const listings = response.json<{ items: Requested[] }>().items.filter((item) => item.name === 'listings');
    expect(listings).toEqual([
      expect.objectContaining({ generation: 1, active: true, requestedBy: null, requestId: null, requestedAt: null, reason: null }),
      expect.objectContaining({ generation, active: false, ...request, requestedAt: expect.any(String) }),
    ]);
    // The database's clock stamps it; it shares the host's here, give or take a second.
    expect(Date.parse(String(listings[1]?.requestedAt))).toBeGreaterThan(before - 1000);
  });

  it('still lists a generation recorded before requesters were (its columns null)', async () => {
    await q.harness.db
      .withTables<CheckpointTables>()
      .insertInto('projection_checkpoints')
      .values({ name: 'from_before', generation: 1, version: 1, active: true, status: 'running' })
      .execute();
    const response = await q.app.inject({ url: '/v1/admin/projections', headers: q.auth(admin) });
    expect(response.statusCode).toBe(200);
    expect(response.json<{ items: Requested[] }>().items).toContainEqual(
      expect.objectContaining({ name: 'from_before', generation: 1, requestedBy: null, requestId: null, requestedAt: null, reason: null }),
    );
  });
});
