import type { Kysely } from 'kysely';
import { toPage, type Page, type PageRequest } from '../shared/page.js';
import type { AuditEventsTable, AuditIndexDatabase } from './audit-index.table.js';

/** An indexed event: where to find it in the log (the audit routes read the event itself from there). */
export type IndexedEvent = {
  readonly streamId: string;
  readonly revision: number;
  readonly position: string;
  readonly type: string;
  readonly occurredAt: string;
  readonly actorId: string | null;
  readonly correlationId: string | null;
};

/** Time order, ties broken by stream and revision. */
export type IndexedEventKey = { readonly occurredAt: string; readonly streamId: string; readonly revision: number };

export type IndexFilter =
  | { readonly actorId: string; readonly from?: Date | undefined; readonly to?: Date | undefined }
  | { readonly correlationId: string };

export async function indexedEvents(
  db: Kysely<AuditIndexDatabase>,
  filter: IndexFilter,
  page: PageRequest<IndexedEventKey>,
): Promise<Page<IndexedEvent, IndexedEventKey>> {
  let query = db.selectFrom('rm_audit_index.audit_events').selectAll();
  if ('actorId' in filter) {
    query = query.where('actor_id', '=', filter.actorId);
    if (filter.from) query = query.where('occurred_at', '>=', filter.from);
    if (filter.to) query = query.where('occurred_at', '<', filter.to);
  } else {
    query = query.where('correlation_id', '=', filter.correlationId);
  }
  const { after } = page;
  if (after) {
    query = query.where((eb) => eb(eb.refTuple('occurred_at', 'stream_id', 'revision'), '>', eb.tuple(new Date(after.occurredAt), after.streamId, after.revision)));
  }
  const rows = await query.orderBy('occurred_at').orderBy('stream_id').orderBy('revision').limit(page.limit + 1).execute();
  return toPage(rows, page.limit, toIndexedEvent, (row) => ({ occurredAt: row.occurred_at.toISOString(), streamId: row.stream_id, revision: row.revision }));
}

function toIndexedEvent(row: AuditEventsTable): IndexedEvent {
  return {
    streamId: row.stream_id,
    revision: row.revision,
    position: `${row.position_commit}.${row.position_prepare}`,
    type: row.event_type,
    occurredAt: row.occurred_at.toISOString(),
    actorId: row.actor_id,
    correlationId: row.correlation_id,
  };
}
