import type { Kysely } from 'kysely';
import type { CommandSide } from '../../../src/application/command-handlers.js';
import type { EventStore, RecordedEvent } from '../../../src/application/ports/event-store.js';
import { comparePositions, maxPosition, START, type Position } from '../../../src/application/ports/position.js';
import { createKysely } from '../../../src/infrastructure/postgres/database.js';
import type { Database } from '../../../src/projections/read-models.js';
import { readActivePositions, withSearchPath } from '../../../src/projections/runtime/projection-checkpoints.queries.js';
import type { ProjectionRuntime } from '../../../src/projections/runtime/projection-runtime.js';
import { generationSchema, readSchema, type Projection } from '../../../src/projections/runtime/projection.js';
import { createTestSide, fakeClock } from '../../support/command-side.js';
import { tableRows } from '../../support/read-model-tables.js';
import { activeCheckpoint, createHarness, createRuntime, eventually, type Harness } from './runtime-harness.js';

/** Remembers the highest position appended through it: what the read models must reach. */
export function trackingStore(store: EventStore): { readonly store: EventStore; head(): Position } {
  let head = START;
  const tracked: EventStore = {
    async appendToStream(streamId, events, options) {
      const result = await store.appendToStream(streamId, events, options);
      head = maxPosition(head, result.position);
      return result;
    },
    readStream: (streamId, options) => store.readStream(streamId, options),
    readAll: (options) => store.readAll(options),
    subscribeToAll: (options) => store.subscribeToAll(options),
    headPosition: () => store.headPosition(),
    close: () => store.close(),
  };
  return { store: tracked, head: () => head };
}

export type ReadModelHarness = {
  readonly harness: Harness;
  readonly db: Kysely<Database>;
  readonly side: CommandSide;
  readonly clock: ReturnType<typeof fakeClock>;
  readonly runtime: ProjectionRuntime;
  /** Waits until every projection has applied everything appended so far. */
  settle(): Promise<void>;
  head(): Position;
  /** Applies the whole log again, in one batch, to the projection's active generation. */
  replay(projection: Projection): Promise<void>;
  /** Every row of a read model's table, in a stable order (by every column). */
  rows(projectionName: string, table: string): Promise<Record<string, unknown>[]>;
  close(): Promise<void>;
};

export async function allEvents(store: EventStore): Promise<RecordedEvent[]> {
  const events: RecordedEvent[] = [];
  for await (const event of store.readAll()) events.push(event);
  return events;
}

/**
 * A fresh database, the PostgreSQL event store, the real use cases on a fake clock, and the
 * runtime building `projections`.
 */
export async function startReadModels(projections: readonly Projection[], start = '2030-01-10T10:00:00Z'): Promise<ReadModelHarness> {
  const harness = await createHarness();
  const tracked = trackingStore(harness.store);
  const clock = fakeClock(start);
  const side = createTestSide(tracked.store, clock, 15, harness.vault);
  const runtime = createRuntime(harness, projections, { batchMaxWaitMs: 5 });
  runtime.start();
  const db = createKysely<Database>(harness.pool);
  const names = projections.map((projection) => projection.name);
  return {
    harness,
    db,
    side,
    clock,
    runtime,
    head: tracked.head,
    async settle() {
      const head = tracked.head();
      await eventually(async () => {
        const positions = await readActivePositions(harness.db, names);
        return names.every((name) => {
          const position = positions.get(name);
          return position !== undefined && comparePositions(position, head) >= 0;
        });
      }, 15_000, 'read models to catch up');
    },
    async replay(projection) {
      const active = await activeCheckpoint(harness.db, projection.name);
      if (!active) throw new Error(`${projection.name} has no active generation`);
      const events = await allEvents(harness.revealed);
      const schema = generationSchema(projection.name, active.generation);
      await harness.db.transaction().execute((trx) => withSearchPath(trx, schema, () => projection.apply(trx, events)));
    },
    rows: (projectionName, table) => tableRows(harness.db, readSchema(projectionName), table),
    async close() {
      await runtime.stop();
      await harness.close();
    },
  };
}
