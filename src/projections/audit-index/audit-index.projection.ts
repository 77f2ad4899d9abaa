import { providerEventUnmatchedType } from '../../application/payments/provider-events.js';
import { sql, type Kysely, type Transaction } from 'kysely';
import { aggregates } from '../../application/aggregates/aggregates.js';
import { occurredAt } from '../../application/metadata.js';
import type { RecordedEvent } from '../../application/ports/event-store.js';
import { defineProjection } from '../runtime/projection.js';
import { withinParameterLimit } from '../shared/parameter-limit.js';
import { auditIndexProjectionName, type AuditEventsTable, type AuditIndexTables } from './audit-index.table.js';

async function migrate(db: Kysely<unknown>): Promise<void> {
  await db.schema
    .createTable('audit_events')
    .addColumn('stream_id', 'text', (c) => c.notNull())
    .addColumn('revision', 'integer', (c) => c.notNull())
    .addColumn('position_commit', 'bigint', (c) => c.notNull())
    .addColumn('position_prepare', 'bigint', (c) => c.notNull())
    .addColumn('event_type', 'text', (c) => c.notNull())
    .addColumn('occurred_at', 'timestamptz', (c) => c.notNull())
    .addColumn('actor_id', 'text')
    .addColumn('correlation_id', 'text')
    .addPrimaryKeyConstraint('audit_events_pk', ['stream_id', 'revision'])
    .execute();
  // The two ways in, each in the keyset order of its pages.
  for (const by of ['actor_id', 'correlation_id']) {
    await sql`CREATE INDEX ${sql.id(`audit_events_${by}_idx`)} ON audit_events (${sql.id(by)}, position_commit, position_prepare) WHERE ${sql.id(by)} IS NOT NULL`.execute(db);
  }
}

const text = (value: unknown): string | null => (typeof value === 'string' && value.length > 0 ? value : null);

function toRow(event: RecordedEvent): AuditEventsTable | undefined {
  const actorId = text(event.metadata.actorId);
  const correlationId = text(event.metadata.correlationId);
  if (actorId === null && correlationId === null) return undefined;
  return {
    stream_id: event.streamId,
    revision: event.revision,
    position_commit: event.position.commit.toString(),
    position_prepare: event.position.prepare.toString(),
    event_type: event.type,
    occurred_at: occurredAt(event),
    actor_id: actorId,
    correlation_id: correlationId,
  };
}

async function apply(trx: Transaction<AuditIndexTables>, events: readonly RecordedEvent[]): Promise<void> {
  const rows = events.flatMap((event) => toRow(event) ?? []);
  if (rows.length === 0) return;
  // An event is indexed once whatever replays it: its stream and revision are its identity.
  for (const run of withinParameterLimit(rows)) {
    await trx.insertInto('audit_events').values(run).onConflict((oc) => oc.columns(['stream_id', 'revision']).doNothing()).execute();
  }
}

/** Every type the command side writes: the index covers every aggregate, and what a webhook kept unmatched. */
const eventTypes = [...new Set([...Object.values(aggregates).flatMap((aggregate) => aggregate.codec.eventTypes), providerEventUnmatchedType])];

/**
 * Events by actor and by correlation id, for the audit API. Version 2 takes in unmatched provider
 * events, which version 1 left out of the actor and correlation trails; version 3 indexes them in
 * log order, which the pages now follow (see `IndexedEventKey`).
 */
export const auditIndexProjection = defineProjection<AuditIndexTables>({
  name: auditIndexProjectionName,
  version: 3,
  eventTypes,
  migrate,
  apply,
});
