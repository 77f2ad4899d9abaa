import type pg from 'pg';
import { ConfigError } from '../config/config.js';

/**
 * The log a process reads: the PostgreSQL event store's, or EventStoreDB's. A position of one
 * means nothing in the other (a PostgreSQL `(xid, seq)` against an EventStoreDB commit position
 * in the millions), so checkpoints taken from one must never be resumed on the other.
 */
export type EventLogKind = 'postgres' | 'eventstoredb';

const described: Record<EventLogKind, string> = {
  postgres: 'the PostgreSQL event store, EVENTSTORE_URL unset',
  eventstoredb: 'EventStoreDB, EVENTSTORE_URL set',
};

/** PostgreSQL's `undefined_table`: the schema predates `0690_event_log_identity`. */
const undefinedTable = '42P01';

/**
 * Claims this database's checkpoints (`projection_checkpoints`, `process_checkpoints`) for the
 * log `kind`: the first process to start records it; every later one goes on if it reads the same
 * log and is refused if not, before any projector or process manager resumes from a position of
 * the other. Two statements, so that processes starting at once all read the one row that won:
 * the insert waits for a concurrent one to commit and then does nothing, and the select, a
 * statement of its own, sees the row. `schema-behind`: the migration has not run (a release
 * started with `RUN_MIGRATIONS=false` ahead of its migrations), so nothing could be checked; the
 * process starts, not ready until they run, as it always did on a schema behind its release.
 */
export async function claimEventLog(pool: pg.Pool, kind: EventLogKind): Promise<'claimed' | 'schema-behind'> {
  let recorded: string | undefined;
  try {
    await pool.query('INSERT INTO event_log_identity (kind) VALUES ($1) ON CONFLICT DO NOTHING', [kind]);
    const { rows } = await pool.query<{ kind: string }>('SELECT kind FROM event_log_identity');
    recorded = rows[0]?.kind;
  } catch (error) {
    if (isUndefinedTable(error)) return 'schema-behind';
    throw error;
  }
  if (recorded === undefined) throw new Error('event_log_identity is empty after its insert');
  if (recorded !== kind) throw new ConfigError(refusal(recorded, kind));
  return 'claimed';
}

function refusal(recorded: string, kind: EventLogKind): string {
  const recordedAs = recorded === 'postgres' || recorded === 'eventstoredb' ? ` (${described[recorded]})` : '';
  return [
    `The checkpoints in this database were taken from the ${recorded} log${recordedAs}, but this process's event store is ${kind} (${described[kind]}):`,
    'projectors and the payment process would resume from positions of the other log. Either point the service back at the old store,',
    'or switch for good: stop every process, reset the checkpoints (read models are then built again from the new log\'s first event,',
    'the payment process follows it from its start) and start again:',
    '  DELETE FROM projection_checkpoints; DELETE FROM process_checkpoints; DELETE FROM event_log_identity;',
    '(README, "EventStoreDB", "Switching event stores")',
  ].join('\n');
}

function isUndefinedTable(error: unknown): boolean {
  return typeof error === 'object' && error !== null && 'code' in error && error.code === undefinedTable;
}
