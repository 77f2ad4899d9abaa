import { sql, type Kysely } from 'kysely';
import type { RecordedEvent } from '../../application/ports/event-store.js';
import { formatPosition } from '../../application/ports/position.js';
import { defineProjection, readSchema } from '../runtime/projection.js';

/**
 * The smallest read model: how many events each stream has, and the last one's position. It
 * exists to exercise the runtime in tests, and is deliberately *not* idempotent (`events =
 * events + n`): an event applied twice shows up as a wrong count, where a real read model's
 * version guard would hide it.
 */
export type StreamEventCountsTable = {
  stream_id: string;
  events: number;
  last_position: string;
};

export type EventCountsTables = { stream_event_counts: StreamEventCountsTable };

export const eventCountsProjectionName = 'event_counts';

export function eventCountsProjection(options: {
  eventTypes: readonly string[];
  version?: number;
  /** Tests run several side by side. */
  name?: string;
  /**
   * Runs after the batch's rows are written, inside its transaction: tests make it slow, or
   * throw to show that the rows written before the throw roll back with it.
   */
  afterApply?: (events: readonly RecordedEvent[]) => Promise<void>;
}) {
  return defineProjection<EventCountsTables>({
    name: options.name ?? eventCountsProjectionName,
    version: options.version ?? 1,
    eventTypes: options.eventTypes,
    async migrate(db) {
      await db.schema
        .createTable('stream_event_counts')
        .addColumn('stream_id', 'text', (c) => c.primaryKey())
        .addColumn('events', 'integer', (c) => c.notNull())
        .addColumn('last_position', 'text', (c) => c.notNull())
        .execute();
    },
    async apply(trx, events) {
      // One upsert per stream per batch rather than per event: the batch is what the runtime is for.
      for (const [streamId, streamEvents] of groupByStream(events)) {
        const last = streamEvents[streamEvents.length - 1];
        if (!last) continue;
        await trx
          .insertInto('stream_event_counts')
          .values({ stream_id: streamId, events: streamEvents.length, last_position: formatPosition(last.position) })
          .onConflict((oc) =>
            oc.column('stream_id').doUpdateSet({
              events: sql<number>`stream_event_counts.events + excluded.events`,
              last_position: (eb) => eb.ref('excluded.last_position'),
            }),
          )
          .execute();
      }
      await options.afterApply?.(events);
    },
  });
}

function groupByStream(events: readonly RecordedEvent[]): Map<string, RecordedEvent[]> {
  const streams = new Map<string, RecordedEvent[]>();
  for (const event of events) {
    const stream = streams.get(event.streamId);
    if (stream) stream.push(event);
    else streams.set(event.streamId, [event]);
  }
  return streams;
}

/** Query side: reads through the read schema's views, whichever generation is active. */
export async function readEventCounts(db: Kysely<unknown>, name = eventCountsProjectionName): Promise<Map<string, number>> {
  const rows = await db
    .withTables<EventCountsTables>()
    .withSchema(readSchema(name))
    .selectFrom('stream_event_counts')
    .select(['stream_id', 'events'])
    .execute();
  return new Map(rows.map((row) => [row.stream_id, row.events]));
}
