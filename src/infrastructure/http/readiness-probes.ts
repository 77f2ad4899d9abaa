import type { Kysely } from 'kysely';
import type pg from 'pg';
import type { EventStore } from '../../application/ports/event-store.js';
import { listCheckpointsWithLag } from '../../projections/runtime/projection-checkpoints.queries.js';
import type { CheckpointTables } from '../../projections/runtime/projection-checkpoints.table.js';
import { pendingMigrations } from '../postgres/database.js';
import { NotReady, type ReadinessProbe } from './plugins/health.plugin.js';

/** The schema this code needs is in place: a process started with RUN_MIGRATIONS=false before they ran is not ready. */
export const migrationsProbe = (pool: pg.Pool): ReadinessProbe => ({
  name: 'migrations',
  async check() {
    const pending = await pendingMigrations(pool);
    if (pending.length > 0) throw new NotReady(`not applied: ${pending.join(', ')}`);
  },
});

/**
 * The event store answers a read (EventStoreDB: its own server; PostgreSQL: the events table). Of
 * a stream no aggregate uses, and no `$` one: the EventStoreDB adapter answers those unasked.
 */
export const eventStoreProbe = (store: Pick<EventStore, 'readStream'>): ReadinessProbe => ({
  name: 'event store',
  async check() {
    await store.readStream('readinessProbe-0', { maxCount: 1 });
  },
});

/**
 * Which of `names` readers can query: the active generation's schema is in place and its views
 * published (`setUpGeneration`). Until then (a fresh database, or the query role started before
 * any projector) the read schema's tables do not exist, and every read of them fails. An active
 * generation alone is not enough: the first one is active from the moment its row is created.
 */
async function builtReadModels(db: Kysely<unknown>, names: readonly string[]): Promise<Set<string>> {
  if (names.length === 0) return new Set();
  const rows = await db
    .withTables<CheckpointTables>()
    .selectFrom('projection_checkpoints')
    .select('name')
    .where('name', 'in', names)
    .where('active', '=', true)
    .where('schema_ready', '=', true)
    .execute();
  return new Set(rows.map((row) => row.name));
}

/**
 * The read models the query API serves: none failed, every one built (its active generation's
 * tables in place), none further behind than `maxLagMs` (the oldest event it has not processed
 * was recorded longer ago than that). Active generations only: a rebuild beside them serves
 * nobody yet. Lag is measured where the log is in this database.
 */
export const projectionsProbe = (db: Kysely<unknown>, names: readonly string[], maxLagMs: number, now: () => Date): ReadinessProbe => ({
  name: 'projections',
  async check() {
    const active = (await listCheckpointsWithLag(db, 1)).filter((row) => row.active && names.includes(row.name));
    const failed = active.filter((row) => row.status === 'failed').map((row) => row.name);
    if (failed.length > 0) throw new NotReady(`failed: ${failed.join(', ')}`);
    const built = await builtReadModels(db, names);
    const unbuilt = names.filter((name) => !built.has(name));
    if (unbuilt.length > 0) throw new NotReady(`not built yet: ${unbuilt.join(', ')}`);
    const behind = active.filter((row) => {
      const oldest = row.lag?.oldestUnprocessedAt;
      return oldest !== null && oldest !== undefined && now().getTime() - oldest.getTime() > maxLagMs;
    });
    if (behind.length > 0) throw new NotReady(`more than ${maxLagMs} ms behind: ${behind.map((row) => row.name).join(', ')}`);
  },
});
