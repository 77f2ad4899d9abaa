import { sql, type AliasedRawBuilder, type Kysely, type RawBuilder, type Transaction } from 'kysely';
import { comparePositions, formatPosition, maxPosition, START, type Position } from '../../application/ports/position.js';
import { advisoryLockKey } from './projection-lock.js';
import { generationSchema, readSchema } from './projection.js';
import type { CheckpointRow, CheckpointStatus, CheckpointTables } from './projection-checkpoints.table.js';

/** What the admin API shows per generation (`GET /v1/admin/projections`). */
export type CheckpointView = {
  readonly name: string;
  readonly generation: number;
  readonly version: number;
  readonly active: boolean;
  readonly status: CheckpointStatus;
  /** `formatPosition` form; `0.0` before the first event. */
  readonly position: string;
  readonly eventsProcessed: bigint;
  readonly lastEventRecordedAt: Date | null;
  readonly updatedAt: Date;
  /** The last failure, kept after a restart until the next one so that it stays visible. */
  readonly lastFailure: {
    readonly at: Date;
    readonly error: string;
    readonly eventPosition: string | null;
    readonly eventType: string | null;
    readonly eventId: string | null;
  } | null;
  /** Who asked for this generation, and why; all null when nobody did (a first copy, a new version's). */
  readonly requestedBy: string | null;
  readonly requestId: string | null;
  readonly requestedAt: Date | null;
  readonly reason: string | null;
};

/** Who asks for a rebuild, and why: kept on the generation it creates, for auditors. */
export type RebuildRequest = {
  /** An actor id, or `cli:<os user>` for the rebuild command. */
  readonly requestedBy: string;
  /** The HTTP request's id; null from the command line. */
  readonly requestId: string | null;
  readonly reason: string | null;
};

function checkpoints(db: Kysely<unknown>): Kysely<CheckpointTables> {
  return db.withTables<CheckpointTables>();
}

function inTransaction(trx: Transaction<unknown>): Transaction<CheckpointTables> {
  return trx.withTables<CheckpointTables>();
}

export function rowPosition(row: Pick<CheckpointRow, 'position_commit' | 'position_prepare'>): Position {
  return { commit: BigInt(row.position_commit), prepare: BigInt(row.position_prepare) };
}

export function toCheckpointView(row: CheckpointRow): CheckpointView {
  return {
    name: row.name,
    generation: row.generation,
    version: row.version,
    active: row.active,
    status: row.status,
    position: formatPosition(rowPosition(row)),
    eventsProcessed: BigInt(row.events_processed),
    lastEventRecordedAt: row.last_event_recorded_at,
    updatedAt: row.updated_at,
    lastFailure:
      row.failed_at && row.error !== null
        ? {
            at: row.failed_at,
            error: row.error,
            eventPosition: row.failed_event_position,
            eventType: row.failed_event_type,
            eventId: row.failed_event_id,
          }
        : null,
    requestedBy: row.requested_by,
    requestId: row.request_id,
    requestedAt: row.requested_at,
    reason: row.reason,
  };
}

/** Every generation of every projection, active first; for the admin API. */
export async function listCheckpoints(db: Kysely<unknown>): Promise<CheckpointView[]> {
  return (await listRows(db)).map(toCheckpointView);
}

function listRows(db: Kysely<unknown>): Promise<CheckpointRow[]> {
  return checkpoints(db).selectFrom('projection_checkpoints').selectAll().orderBy('name').orderBy('active', 'desc').orderBy('generation').execute();
}

/** How far a generation's checkpoint is behind the log. */
export type CheckpointLag = {
  /** Events in the log after the checkpoint, counted up to the cap asked for. */
  readonly events: number;
  /** True when there are more than `events`: counting stopped at the cap. */
  readonly capped: boolean;
  /** When the first event after the checkpoint, the oldest one not yet processed, was recorded. */
  readonly oldestUnprocessedAt: Date | null;
};

/**
 * `listCheckpoints` with each generation's lag, counted in the PostgreSQL event store's `events`
 * table in this database. `lag` is null for every generation when the checkpoints point into a
 * log kept elsewhere (EventStoreDB): the migrated table is there, but does not hold the events.
 */
export async function listCheckpointsWithLag(db: Kysely<unknown>, cap: number): Promise<(CheckpointView & { readonly lag: CheckpointLag | null })[]> {
  const rows = await listRows(db);
  // Generations at one position (all of them, when caught up or when their process is down) share one count.
  const positions = [...new Map(rows.map((row) => [formatPosition(rowPosition(row)), rowPosition(row)])).values()];
  const lags = (await holdsTheLog(db, positions)) ? await measureLags(db, positions, cap) : [];
  const byPosition = new Map(positions.map((position, index) => [formatPosition(position), lags[index]]));
  return rows.map((row) => ({ ...toCheckpointView(row), lag: byPosition.get(formatPosition(rowPosition(row))) ?? null }));
}

/** The largest values of the events table's `xid8` and `bigint` position columns. */
const maxTransactionId = 2n ** 64n - 1n;
const maxGlobalPosition = 2n ** 63n - 1n;

/**
 * Whether the events table holds the event at the furthest checkpoint: checkpoints only ever
 * stop on an event (or at `START`), and events are never deleted, so it does exactly when the
 * projectors read their log from this table. One probe of the global-order index.
 */
export async function holdsTheLog(db: Kysely<unknown>, positions: readonly Position[]): Promise<boolean> {
  const furthest = positions.reduce(maxPosition, START);
  if (comparePositions(furthest, START) === 0) return true;
  if (furthest.commit > maxTransactionId || furthest.prepare > maxGlobalPosition) return false;
  const { rows } = await sql<{ found: boolean }>`
    select exists (
      select 1 from events
       where transaction_id = ${furthest.commit.toString()}::xid8 and global_position = ${furthest.prepare.toString()}::bigint
    ) as found`.execute(db);
  return rows[0]?.found ?? false;
}

/**
 * Per position, in order: the events after it, in the store's own order and its own row
 * comparison, counted along the global-order index up to `cap` + 1 entries, and the first of them,
 * one more probe of the index. One statement, so one snapshot: both agree. Events committed but
 * still held behind an older open transaction count too: the projection has not processed them.
 */
async function measureLags(db: Kysely<unknown>, positions: readonly Position[], cap: number): Promise<CheckpointLag[]> {
  if (positions.length === 0) return [];
  const { rows } = await sql<{ events: number; oldest: Date | null }>`
    select behind.events, first.recorded_at as oldest
      from unnest(${positions.map((p) => p.commit.toString())}::xid8[], ${positions.map((p) => p.prepare.toString())}::bigint[])
           with ordinality as p (transaction_id, global_position, n)
     cross join lateral (
       select count(*)::integer as events from (
         select 1 from events e
          where (e.transaction_id, e.global_position) > (p.transaction_id, p.global_position)
          order by e.transaction_id, e.global_position
          limit ${cap + 1}
       ) counted
     ) behind
      left join lateral (
       select e.recorded_at from events e
        where (e.transaction_id, e.global_position) > (p.transaction_id, p.global_position)
        order by e.transaction_id, e.global_position
        limit 1
     ) first on true
     order by p.n`.execute(db);
  return rows.map((row) => ({ events: Math.min(row.events, cap), capped: row.events > cap, oldestUnprocessedAt: row.oldest }));
}

/**
 * The positions the query side can rely on: each named projection's active generation. A name
 * without an active generation is missing from the map.
 */
export async function readActivePositions(db: Kysely<unknown>, names: readonly string[]): Promise<Map<string, Position>> {
  if (names.length === 0) return new Map();
  const rows = await checkpoints(db)
    .selectFrom('projection_checkpoints')
    .select(['name', 'position_commit', 'position_prepare'])
    .where('name', 'in', names)
    .where('active', '=', true)
    .execute();
  return new Map(rows.map((row) => [row.name, rowPosition(row)]));
}

export async function readGenerations(db: Kysely<unknown>, name: string): Promise<CheckpointRow[]> {
  return checkpoints(db).selectFrom('projection_checkpoints').selectAll().where('name', '=', name).orderBy('generation').execute();
}

export async function readGeneration(db: Kysely<unknown>, name: string, generation: number): Promise<CheckpointRow | undefined> {
  return checkpoints(db)
    .selectFrom('projection_checkpoints')
    .selectAll()
    .where('name', '=', name)
    .where('generation', '=', generation)
    .executeTakeFirst();
}

/**
 * A generation's row as a new lock holder starts from it. The row lock waits for a batch that
 * the previous holder's projector had under way when its session died: the fence let its
 * checkpoint statement through, which holds the row until the rows commit or roll back. Read
 * without waiting, the new holder could start before that batch and apply it a second time.
 */
export async function takeGeneration(db: Kysely<unknown>, name: string, generation: number): Promise<CheckpointRow | undefined> {
  return checkpoints(db)
    .selectFrom('projection_checkpoints')
    .selectAll()
    .where('name', '=', name)
    .where('generation', '=', generation)
    .forUpdate()
    .executeTakeFirst();
}

/** Serialises creating generations of one projection across processes, for one transaction. */
async function lockSetup(trx: Transaction<unknown>, name: string): Promise<void> {
  await sql`select pg_advisory_xact_lock(${advisoryLockKey(`projection-setup:${name}`).toString()}::bigint)`.execute(trx);
}

async function insertGeneration(
  trx: Transaction<CheckpointTables>,
  rows: readonly CheckpointRow[],
  values: { name: string; version: number; active: boolean },
  request?: RebuildRequest,
): Promise<number> {
  const generation = Math.max(0, ...rows.map((row) => row.generation)) + 1;
  const requested = request && {
    requested_by: request.requestedBy,
    request_id: request.requestId,
    requested_at: sql<Date>`now()`,
    reason: request.reason,
  };
  await trx
    .insertInto('projection_checkpoints')
    .values({ ...values, ...requested, generation, status: values.active ? 'running' : 'rebuilding' })
    .execute();
  return generation;
}

/**
 * Makes sure a generation of `version` exists: the very first one becomes active at once (there
 * is nothing to serve yet); a higher version than the active one's starts a rebuild beside it. A
 * lower version (old code still running during a deploy) creates nothing.
 */
export async function ensureGeneration(db: Kysely<unknown>, name: string, version: number): Promise<void> {
  await db.transaction().execute(async (trx) => {
    await lockSetup(trx, name);
    const tx = inTransaction(trx);
    const rows = await tx.selectFrom('projection_checkpoints').selectAll().where('name', '=', name).execute();
    const missing = missingGeneration(rows, version);
    if (missing) await insertGeneration(tx, rows, { name, version, active: missing === 'first' });
  });
}

/**
 * What `ensureGeneration` would create, judging by a projection's rows: the first generation,
 * a rebuild of a higher version than the active one's, or nothing (`undefined`).
 */
export function missingGeneration(rows: readonly CheckpointRow[], version: number): 'first' | 'rebuild' | undefined {
  const active = rows.find((row) => row.active);
  if (!active) return rows.some((row) => row.status !== 'retired') ? undefined : 'first';
  const building = rows.some((row) => row.version === version && row.status !== 'retired');
  return active.version < version && !building ? 'rebuild' : undefined;
}

/**
 * Asks for a rebuild of `name` from the first event, e.g. after fixing data by hand or losing it,
 * with the requesting code's `version` of the projection (by default the active generation's).
 * Any process running that version picks it up within its control interval. A rebuild already
 * under way is returned instead of a second one, but only one that can still get there: a
 * pending generation that failed, or that is of another version than the one asked for, is
 * retired (its lock holder, or any process, then drops it) and a new one started. Otherwise a
 * rebuild that failed on a passing cause, or that no running code can build, would stand in for
 * every later request. Without a `version`, a newer version's rebuild (a deploy under way) is
 * left to go on, and answers the request.
 *
 * `request` is recorded on a generation this creates; one under way keeps its own requester.
 */
export async function requestRebuild(
  db: Kysely<unknown>,
  name: string,
  version?: number,
  request?: RebuildRequest,
): Promise<{ readonly generation: number }> {
  return db.transaction().execute(async (trx) => {
    await lockSetup(trx, name);
    const tx = inTransaction(trx);
    const rows = await tx.selectFrom('projection_checkpoints').selectAll().where('name', '=', name).orderBy('generation').execute();
    const active = rows.find((row) => row.active);
    if (!active) throw new RangeError(`Projection ${name} has no active generation to rebuild`);
    const wanted = version ?? active.version;
    if (wanted < active.version) throw new RangeError(`Projection ${name} is at version ${active.version}; version ${wanted} cannot rebuild it`);
    const pending = rows.filter((row) => !row.active && row.status !== 'retired');
    const usable = (row: CheckpointRow) => row.status !== 'failed' && (version === undefined ? row.version >= active.version : row.version === version);
    await retireGenerations(trx, name, pending.filter((row) => !usable(row)).map((row) => row.generation));
    const underWay = pending.find(usable);
    if (underWay) return { generation: underWay.generation };
    return { generation: await insertGeneration(tx, rows, { name, version: wanted, active: false }, request) };
  });
}

/**
 * The generations of `name` that are neither active nor retired but of a lower version than the
 * active one: never to be swapped in (a newer version is live), and no running code may build
 * them any more. `retireGenerations` lets them go.
 */
export function obsoleteGenerations(rows: readonly CheckpointRow[]): number[] {
  const active = rows.find((row) => row.active);
  if (!active) return [];
  return rows.filter((row) => !row.active && row.status !== 'retired' && row.version < active.version).map((row) => row.generation);
}

/**
 * Retires generations that are not active, whoever holds them: the holder's next write is
 * refused, and the holder (or any process, if none) drops the schema and the row. Stamped with
 * the server's clock, as a requested generation's row is when it is created.
 */
export async function retireGenerations(db: Kysely<unknown>, name: string, generations: readonly number[]): Promise<void> {
  if (generations.length === 0) return;
  await checkpoints(db)
    .updateTable('projection_checkpoints')
    .set({ status: 'retired', updated_at: sql<Date>`now()` })
    .where('name', '=', name)
    .where('generation', 'in', generations)
    .where('active', '=', false)
    .where('status', '<>', 'retired')
    .execute();
}

/** A generation's row as its lock holder sees it: who it is and where it writes. */
export type GenerationRef = {
  readonly name: string;
  readonly generation: number;
  /** The key only the session holding the generation's advisory lock holds (`HeldLock.sessionKey`). */
  readonly sessionKey: bigint;
};

/**
 * True only while the session holding the generation's advisory lock is alive, which is while
 * somebody holds `ref.sessionKey`: nobody but that session ever takes it. Every write of the
 * runtime is conditioned on it, so a process whose lock session died (network, server restart)
 * cannot write beside the instance that has taken over. Trying the key is one lookup in the lock
 * table, where finding the holder in `pg_locks` copies every lock of every backend (half of what
 * a batch of ignored events cost PostgreSQL). The try fails while the session holds the key;
 * when it succeeds, the session is gone, and the caller's transaction keeps a key nobody wants.
 */
function holdsLock(ref: GenerationRef) {
  return sessionLives(sql`${ref.sessionKey.toString()}::bigint`);
}

/** `holdsLock` for a session key that a statement reads from a column. */
function sessionLives(sessionKey: RawBuilder<unknown>) {
  return sql<boolean>`not pg_try_advisory_xact_lock_shared(${sessionKey})`;
}

export type CheckpointUpdate = {
  readonly position: Position;
  readonly events: number;
  readonly lastEventRecordedAt: Date | undefined;
  readonly now: Date;
  /** A rebuild swapping in becomes the active generation. */
  readonly activate: boolean;
};

/** What a batch's transaction needs besides its rows, set by `claimBatch` once the checkpoint moved. */
export type BatchScope = {
  /** `pg_notify(channel, payload)`, delivered when the transaction commits. */
  readonly notify?: { readonly channel: string; readonly payload: string } | undefined;
  /** The schema `search_path` names alone for the rest of the transaction (the read model's `apply`). */
  readonly schema?: string | undefined;
};

/**
 * Moves a generation's checkpoint forward with its batch, and sets up everything else the batch
 * asks of PostgreSQL besides its rows, in one statement and only if the checkpoint moved: the
 * NOTIFY, `search_path` for the rows that follow (transaction-scoped: nothing to reset), and no
 * wait for the WAL flush at commit. Run it first in the batch's transaction: its row lock then
 * keeps a swap or a new holder waiting until the rows have committed. (A batch of events the read
 * model ignores has no rows: `claimCheckpoints` moves its checkpoint with other projections'.)
 * Returns false when the generation is no longer this holder's to write (retired by a swap, or
 * the lock is gone), or when its checkpoint already stands at the batch or past it: the caller
 * rolls back. (A checkpoint only moves forward. A COMMIT whose answer was lost to a dropped
 * connection may have landed: the batch, retried, would be applied twice and the checkpoint
 * moved back; `readHeldCheckpoint` tells the two refusals apart.)
 *
 * No wait for the flush: rows and checkpoint commit or vanish together, and the events they come
 * from are durable, so a crash of the process at worst replays a batch, and one of the server the
 * batches of its last moments, announced already (README, "One transaction per batch"). Waiting
 * would put every projector's commit in the disk's queue beside the appends that must wait.
 */
export async function claimBatch(db: Kysely<unknown>, ref: GenerationRef, update: CheckpointUpdate, scope: BatchScope = {}): Promise<boolean> {
  const settings: AliasedRawBuilder<string, string>[] = [sql<string>`set_config('synchronous_commit', 'off', true)`.as('synchronous_commit')];
  if (scope.schema !== undefined) settings.push(sql<string>`set_config('search_path', ${quoteIdentifier(scope.schema)}, true)`.as('search_path'));
  if (scope.notify) settings.push(sql<string>`pg_notify(${scope.notify.channel}, ${scope.notify.payload})::text`.as('notified'));
  const moved = await checkpoints(db)
    .with('moved', (qb) =>
      qb
        .updateTable('projection_checkpoints')
        .set({
          position_commit: update.position.commit.toString(),
          position_prepare: update.position.prepare.toString(),
          events_processed: sql<string>`events_processed + ${update.events}`,
          ...(update.lastEventRecordedAt ? { last_event_recorded_at: update.lastEventRecordedAt } : {}),
          updated_at: update.now,
          ...(update.activate ? { active: true, status: 'running' as const } : {}),
        })
        .where('name', '=', ref.name)
        .where('generation', '=', ref.generation)
        .where('status', 'in', ['running', 'rebuilding'])
        .where(checkpointBefore(update.position, update.activate))
        .where(holdsLock(ref))
        .returning('generation'),
    )
    .selectFrom('moved')
    .select(settings)
    .executeTakeFirst();
  return moved !== undefined;
}

/** A checkpoint to move with no rows beside it, and the notification to send if it moves. */
export type CheckpointClaim = {
  readonly ref: GenerationRef;
  readonly update: Omit<CheckpointUpdate, 'activate'>;
  readonly notify: { readonly channel: string; readonly payload: string } | undefined;
};

/** How `claimCheckpoints` names a generation in its answer. */
export function generationKey(ref: Pick<GenerationRef, 'name' | 'generation'>): string {
  return `${ref.name}:${ref.generation}`;
}

/**
 * `claimBatch` for several generations' batches of events they ignore, as one statement that is
 * its own transaction: each row fenced on its own, each notification sent if its row moved, no
 * wait for the WAL flush. Returns the `generationKey`s of the rows that moved.
 */
export async function claimCheckpoints(db: Kysely<unknown>, claims: readonly CheckpointClaim[]): Promise<Set<string>> {
  if (claims.length === 0) return new Set();
  const rows = claims.map(({ ref, update, notify }) => sql`(
    ${ref.name}::text, ${ref.generation}::integer, ${update.position.commit.toString()}::numeric,
    ${update.position.prepare.toString()}::numeric, ${update.events}::bigint, ${update.lastEventRecordedAt ?? null}::timestamptz,
    ${update.now}::timestamptz, ${ref.sessionKey.toString()}::bigint, ${notify?.channel ?? null}::text, ${notify?.payload ?? null}::text)`);
  const moved = await sql<{ name: string; generation: number }>`
    with claim (name, generation, position_commit, position_prepare, events, last_event_recorded_at, updated_at, session_key, channel, payload) as (
      values ${sql.join(rows)}
    ), moved as (
      update projection_checkpoints c
         set position_commit = claim.position_commit,
             position_prepare = claim.position_prepare,
             events_processed = c.events_processed + claim.events,
             last_event_recorded_at = coalesce(claim.last_event_recorded_at, c.last_event_recorded_at),
             updated_at = claim.updated_at
        from claim
       where c.name = claim.name and c.generation = claim.generation and c.status in ('running', 'rebuilding')
         and (c.position_commit, c.position_prepare) < (claim.position_commit, claim.position_prepare)
         and ${sessionLives(sql.ref('claim.session_key'))}
      returning c.name, c.generation, claim.channel, claim.payload
    )
    select name, generation, set_config('synchronous_commit', 'off', true),
           case when channel is not null then pg_notify(channel, payload)::text end as notified
      from moved`.execute(db);
  return new Set(moved.rows.map(generationKey));
}

/**
 * The checkpoint is behind `position` (a batch ending there has not been committed yet), or
 * `orAt` it: a swap with no events of its own claims the position its generation already has.
 */
function checkpointBefore(position: Position, orAt = false) {
  const comparison = sql.raw(orAt ? '<=' : '<');
  return sql<boolean>`(position_commit, position_prepare) ${comparison} (${position.commit.toString()}::numeric, ${position.prepare.toString()}::numeric)`;
}

/**
 * Where the generation's checkpoint stands, while it is still `ref`'s to write; undefined once
 * it is not (retired, failed, or the lock session gone). After a refused claim, a position at or
 * past the batch means the batch has been committed already.
 */
export async function readHeldCheckpoint(db: Kysely<unknown>, ref: GenerationRef): Promise<Position | undefined> {
  const row = await checkpoints(db)
    .selectFrom('projection_checkpoints')
    .select(['position_commit', 'position_prepare'])
    .where('name', '=', ref.name)
    .where('generation', '=', ref.generation)
    .where('status', 'in', ['running', 'rebuilding'])
    .where(holdsLock(ref))
    .executeTakeFirst();
  return row && rowPosition(row);
}

/** `search_path` syntax for one schema name (ours never contain a double quote, but still). */
function quoteIdentifier(name: string): string {
  return `"${name.replaceAll('"', '""')}"`;
}

/**
 * Puts a failed (or interrupted) generation back to work when a holder takes it: failures are
 * recorded for people to see, not to block a fixed deploy. The failure columns stay.
 */
export async function resumeGeneration(db: Kysely<unknown>, ref: GenerationRef, now: Date): Promise<boolean> {
  const result = await checkpoints(db)
    .updateTable('projection_checkpoints')
    .set({ status: sql<CheckpointStatus>`case when active then 'running' else 'rebuilding' end`, updated_at: now })
    .where('name', '=', ref.name)
    .where('generation', '=', ref.generation)
    .where('status', '=', 'failed')
    .where(holdsLock(ref))
    .executeTakeFirst();
  return result.numUpdatedRows === 1n;
}

export async function recordFailure(
  db: Kysely<unknown>,
  ref: GenerationRef,
  /** No event when the generation's setup (its `migrate`) is what failed. */
  failure: { at: Date; error: string; event?: { position: Position; type: string; id: string } },
): Promise<boolean> {
  const result = await checkpoints(db)
    .updateTable('projection_checkpoints')
    .set({
      status: 'failed',
      failed_at: failure.at,
      error: failure.error,
      failed_event_position: failure.event ? formatPosition(failure.event.position) : null,
      failed_event_type: failure.event?.type ?? null,
      failed_event_id: failure.event?.id ?? null,
      updated_at: failure.at,
    })
    .where('name', '=', ref.name)
    .where('generation', '=', ref.generation)
    .where('status', 'in', ['running', 'rebuilding'])
    .where(holdsLock(ref))
    .executeTakeFirst();
  return result.numUpdatedRows === 1n;
}

/**
 * Notes on a rebuilding generation's row, where `GET /v1/admin/projections` shows it as its last
 * failure, that its swap keeps failing; the generation stays `rebuilding` and keeps trying. No
 * event: none is at fault.
 */
export async function recordSwapStarved(db: Kysely<unknown>, ref: GenerationRef, note: { at: Date; error: string }): Promise<boolean> {
  const result = await checkpoints(db)
    .updateTable('projection_checkpoints')
    .set({ failed_at: note.at, error: note.error, failed_event_position: null, failed_event_type: null, failed_event_id: null })
    .where('name', '=', ref.name)
    .where('generation', '=', ref.generation)
    .where('status', '=', 'rebuilding')
    .where(holdsLock(ref))
    .executeTakeFirst();
  return result.numUpdatedRows === 1n;
}

/** Marks a generation superseded by a newer version's active one, so that it stops and is dropped. */
export async function retireGeneration(db: Kysely<unknown>, ref: GenerationRef, now: Date): Promise<void> {
  await checkpoints(db)
    .updateTable('projection_checkpoints')
    .set({ status: 'retired', active: false, updated_at: now })
    .where('name', '=', ref.name)
    .where('generation', '=', ref.generation)
    .where('active', '=', false)
    .where(holdsLock(ref))
    .execute();
}

/**
 * Sets `search_path` to `schema` alone for `apply` or `migrate`, then restores it: unqualified
 * table names in read-model code land in their generation, and nowhere else.
 */
export async function withSearchPath<T>(trx: Transaction<unknown>, schema: string, work: () => Promise<T>): Promise<T> {
  const previous = await sql<{ path: string }>`select current_setting('search_path') as path`.execute(trx);
  await sql`select set_config('search_path', ${`"${schema}"`}, true)`.execute(trx);
  const result = await work();
  await sql`select set_config('search_path', ${previous.rows[0]?.path ?? 'public'}, true)`.execute(trx);
  return result;
}

/**
 * Creates a generation's schema and tables (once, by its first lock holder); for the active
 * generation also the read schema's views, so the query side finds its tables from the start.
 */
export async function setUpGeneration(
  db: Kysely<unknown>,
  ref: GenerationRef,
  migrate: (db: Kysely<unknown>) => Promise<void>,
): Promise<boolean> {
  return db.transaction().execute(async (trx) => {
    const row = await inTransaction(trx)
      .selectFrom('projection_checkpoints')
      .select(['active', 'schema_ready'])
      .where('name', '=', ref.name)
      .where('generation', '=', ref.generation)
      .where(holdsLock(ref))
      .forUpdate()
      .executeTakeFirst();
    if (!row) return false;
    if (row.schema_ready) return true;
    const schema = generationSchema(ref.name, ref.generation);
    // A schema left by a generation number reused after a lost row would hold stale rows.
    await sql`drop schema if exists ${sql.id(schema)} cascade`.execute(trx);
    await sql`create schema ${sql.id(schema)}`.execute(trx);
    await withSearchPath(trx, schema, () => migrate(trx));
    if (row.active) await publishViews(trx, ref.name, schema);
    await inTransaction(trx)
      .updateTable('projection_checkpoints')
      .set({ schema_ready: true })
      .where('name', '=', ref.name)
      .where('generation', '=', ref.generation)
      .execute();
    return true;
  });
}

/**
 * Points the read schema at `schema`: one `select *` view per table. Simple views are inlined by
 * the planner (indexes apply), and replacing them inside a transaction is atomic for readers.
 * The read schema belongs to the runtime: anything else put there is dropped on the next swap.
 * Its drop is what takes the views from readers in a swap: it waits for the reads in progress
 * (within the transaction's `limitLockWaits`), and every read that starts afterwards waits for
 * the COMMIT, which is why a swap does it last.
 */
export async function publishViews(trx: Transaction<unknown>, name: string, schema: string): Promise<void> {
  const target = readSchema(name);
  const tables = await sql<{ table_name: string }>`
    select table_name from information_schema.tables where table_schema = ${schema} order by table_name`.execute(trx);
  await sql`drop schema if exists ${sql.id(target)} cascade`.execute(trx);
  await sql`create schema ${sql.id(target)}`.execute(trx);
  for (const { table_name: table } of tables.rows) {
    await sql`create view ${sql.id(target, table)} as select * from ${sql.id(schema, table)}`.execute(trx);
  }
}

/**
 * A swap's first statement: no lock the rest of its transaction asks for (the live generation's
 * row, the read schema's views) is waited for longer than `lockTimeoutMs`; past it PostgreSQL
 * raises 55P03 (`isLockUnavailable`) and the whole transaction rolls back.
 *
 * The bound is the point: a lock request waits with the transaction's id assigned (the row lock
 * takes one, and wal_level replica or above logs an ACCESS EXCLUSIVE request for standbys), and an
 * open id holds back what every event subscriber may read, while every new read of the views
 * queues behind a request for them.
 */
export async function limitLockWaits(trx: Transaction<unknown>, lockTimeoutMs: number): Promise<void> {
  await sql`select set_config('lock_timeout', ${`${lockTimeoutMs}ms`}, true)`.execute(trx);
}

/** The active generation's row as it stands, unlocked: where a rebuild has to get to. */
export async function readActiveGeneration(db: Kysely<unknown>, name: string): Promise<CheckpointRow | undefined> {
  return activeGeneration(db, name).executeTakeFirst();
}

/**
 * Inside a rebuild's batch transaction: locks the active generation's row, so that it cannot
 * commit until the swap has, and returns it.
 */
export async function lockActiveGeneration(trx: Transaction<unknown>, name: string): Promise<CheckpointRow | undefined> {
  return activeGeneration(trx, name).forUpdate().executeTakeFirst();
}

function activeGeneration(db: Kysely<unknown>, name: string) {
  return checkpoints(db).selectFrom('projection_checkpoints').selectAll().where('name', '=', name).where('active', '=', true);
}

/** The other half of a swap: the old active generation steps down (before the new one steps up). */
export async function deactivateGeneration(trx: Transaction<unknown>, name: string, generation: number, now: Date): Promise<void> {
  await inTransaction(trx)
    .updateTable('projection_checkpoints')
    .set({ active: false, status: 'retired', updated_at: now })
    .where('name', '=', name)
    .where('generation', '=', generation)
    .execute();
}

/** Drops a retired generation's schema and row; its lock holder does it, so nobody still writes there. */
export async function dropGeneration(db: Kysely<unknown>, ref: GenerationRef): Promise<void> {
  await db.transaction().execute(async (trx) => {
    const deleted = await inTransaction(trx)
      .deleteFrom('projection_checkpoints')
      .where('name', '=', ref.name)
      .where('generation', '=', ref.generation)
      .where('status', '=', 'retired')
      .where(holdsLock(ref))
      .executeTakeFirst();
    if (deleted.numDeletedRows === 1n) {
      await sql`drop schema if exists ${sql.id(generationSchema(ref.name, ref.generation))} cascade`.execute(trx);
    }
  });
}
