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

/**
 * Log order (the global position, as `commit.prepare`). Not the time the command side stamped: one
 * command's events share it (and came out by stream name), and an event committed late with an
 * earlier time would sort before a page already served, so a reader paging past it never saw it.
 * The index takes events in log order, so nothing lands behind a page once it is served.
 */
export type IndexedEventKey = { readonly position: string };

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
    const [commit = '0', prepare = '0'] = after.position.split('.');
    query = query.where((eb) => eb(eb.refTuple('position_commit', 'position_prepare'), '>', eb.tuple(commit, prepare)));
  }
  const rows = await query.orderBy('position_commit').orderBy('position_prepare').limit(page.limit + 1).execute();
  return toPage(rows, page.limit, toIndexedEvent, (row) => ({ position: `${row.position_commit}.${row.position_prepare}` }));
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
