import type pg from 'pg';
import { comparePositions, START } from '../../application/ports/position.js';
import { holdsTheLog, rowPosition } from '../../projections/runtime/projection-checkpoints.queries.js';
import { ConfigError } from '../config/config.js';
import { createKysely } from '../postgres/database.js';

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
 * What a process does about the record: `claim`, a process that resumes checkpoints (projectors,
 * process managers) and records its log when none is recorded; `check`, any other (the APIs, the
 * command-line tools), which compares with a record if there is one and records nothing: a tool
 * run from a shell without `EVENTSTORE_URL` must not name the log of a deployment it reads.
 */
export type EventLogClaim = 'claim' | 'check';

/**
 * Checks this database's checkpoints (`projection_checkpoints`, `process_checkpoints`) against
 * the log `kind` before any projector or process manager resumes from a position of the other,
 * and refuses a mismatch. The first `claim` records the log; on a database that already holds
 * checkpoints (one from before the record was kept) it records the log they came from, not its
 * own: a PostgreSQL checkpoint names an event of the events table, an EventStoreDB one does not
 * (`holdsTheLog`). A claim is two statements, so that processes starting at once all read the one
 * row that won: the insert waits for a concurrent one to commit and then does nothing, and the
 * select, a statement of its own, sees the row. `schema-behind`: the migration has not run (a
 * release started with `RUN_MIGRATIONS=false` ahead of its migrations), so nothing could be
 * checked; the process starts, not ready until they run, as it always did on a schema behind its
 * release. `unrecorded`: a `check` found no record, nor any checkpoint to tell the log by.
 * `same-log`: the checkpoints are this log's (recorded now, or before).
 */
export async function claimEventLog(pool: pg.Pool, kind: EventLogKind, claim: EventLogClaim): Promise<'same-log' | 'unrecorded' | 'schema-behind'> {
  let recorded: string | undefined;
  try {
    recorded = await recordedKind(pool);
    // Unrecorded, a check compares with the log the checkpoints came from, if there are any,
    // and writes nothing.
    if (recorded === undefined && claim === 'check') recorded = await checkpointsLog(pool, undefined);
    else if (recorded === undefined) {
      await pool.query('INSERT INTO event_log_identity (kind) VALUES ($1) ON CONFLICT DO NOTHING', [await checkpointsLog(pool, kind)]);
      recorded = await recordedKind(pool);
      if (recorded === undefined) throw new Error('event_log_identity is empty after its insert');
    }
  } catch (error) {
    if (isUndefinedTable(error)) return 'schema-behind';
    throw error;
  }
  if (recorded === undefined) return 'unrecorded';
  if (recorded !== kind) throw new ConfigError(refusal(recorded, kind));
  return 'same-log';
}

async function recordedKind(pool: pg.Pool): Promise<string | undefined> {
  const { rows } = await pool.query<{ kind: string }>('SELECT kind FROM event_log_identity');
  return rows[0]?.kind;
}

/** The log the checkpoints already in the database came from; `kind` when there are none yet. */
async function checkpointsLog<Fallback extends EventLogKind | undefined>(pool: pg.Pool, kind: Fallback): Promise<EventLogKind | Fallback> {
  const { rows } = await pool.query<{ position_commit: string; position_prepare: string }>(
    'SELECT position_commit, position_prepare FROM projection_checkpoints UNION ALL SELECT position_commit, position_prepare FROM process_checkpoints',
  );
  const positions = rows.map(rowPosition).filter((position) => comparePositions(position, START) !== 0);
  if (positions.length === 0) return kind;
  return (await holdsTheLog(createKysely<unknown>(pool), positions)) ? 'postgres' : 'eventstoredb';
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
