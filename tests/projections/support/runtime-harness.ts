import { randomUUID } from 'node:crypto';
import { Kysely, PostgresDialect } from 'kysely';
import pg from 'pg';
import type { EventStore, JsonObject } from '../../../src/application/ports/event-store.js';
import { comparePositions, maxPosition, START, type Position } from '../../../src/application/ports/position.js';
import { PgEventStore } from '../../../src/infrastructure/pg-event-store/pg-event-store.js';
import { createKysely, createPool, migrateToLatest } from '../../../src/infrastructure/postgres/database.js';
import { PgAdvisoryLocks } from '../../../src/infrastructure/projections/pg-advisory-locks.js';
import { listCheckpoints, readActivePositions, type CheckpointView } from '../../../src/projections/runtime/projection-checkpoints.queries.js';
import { ProjectionRuntime, type ProjectionRuntimeOptions } from '../../../src/projections/runtime/projection-runtime.js';
import type { Projection } from '../../../src/projections/runtime/projection.js';
import { hasProcessed } from '../../../src/projections/runtime/wait-for-position.js';
import { createTestDatabase } from '../../support/database.js';
export { eventually } from '../../support/eventually.js';
import { pgVault } from '../../support/personal-data.js';
import type { PersonalDataVault } from '../../../src/application/privacy/personal-data-vault.js';
import { RevealingEventStore } from '../../../src/application/privacy/revealing-event-store.js';

export type Harness = {
  readonly url: string;
  readonly pool: pg.Pool;
  readonly db: Kysely<unknown>;
  /** As stored, personal fields sealed. */
  readonly store: PgEventStore;
  /** What projectors read: personal fields revealed with `vault`. */
  readonly revealed: EventStore;
  readonly vault: PersonalDataVault;
  /** A runtime of `projections` (see `createRuntime`), started, and stopped by `close()`. */
  startRuntime(projections: readonly Projection[], overrides?: Partial<ProjectionRuntimeOptions>): ProjectionRuntime;
  /** Whether projection `name`'s active generation has processed `position`. */
  reached(name: string, position: Position): Promise<boolean>;
  /** Stops the runtimes it started, then drops the database. */
  close(): Promise<void>;
};

/** A fresh database with every migration, and the PostgreSQL event store on it. */
export async function createHarness(): Promise<Harness> {
  const database = await createTestDatabase();
  const pool = createPool(database.url, 20);
  await migrateToLatest(pool);
  const store = new PgEventStore(pool, { pollIntervalMs: 100 });
  const db = createKysely<unknown>(pool);
  const vault = pgVault(pool);
  const revealed = new RevealingEventStore(store, vault);
  const runtimes: ProjectionRuntime[] = [];
  return {
    url: database.url,
    pool,
    db,
    store,
    revealed,
    vault,
    startRuntime(projections, overrides) {
      const runtime = createRuntime({ url: database.url, db, revealed }, projections, overrides);
      runtimes.push(runtime);
      runtime.start();
      return runtime;
    },
    async reached(name, position) {
      return hasProcessed((await readActivePositions(db, [name])).get(name), position);
    },
    async close() {
      await Promise.all(runtimes.map((runtime) => runtime.stop()));
      await store.close();
      await db.destroy();
      await database.drop();
    },
  };
}

/** Fast settings, so that tests wait on the behaviour, not on production intervals. */
export function createRuntime(
  harness: Pick<Harness, 'url' | 'db' | 'revealed'>,
  projections: readonly Projection[],
  overrides: Partial<ProjectionRuntimeOptions> = {},
): ProjectionRuntime {
  return new ProjectionRuntime({
    db: harness.db,
    eventStore: harness.revealed,
    locks: new PgAdvisoryLocks({ connectionString: harness.url, retryMs: 100, heartbeatMs: 200 }),
    projections,
    batchSize: 100,
    batchMaxWaitMs: 20,
    maxAttempts: 3,
    retryDelayMs: 10,
    retryMaxDelayMs: 50,
    controlIntervalMs: 100,
    ...overrides,
  });
}

/**
 * Appends `perStream` events to each of `streams` streams, several per append and interleaved
 * across streams; returns the expected count per stream and the last position.
 */
export async function appendEvents(
  store: EventStore,
  options: { streams: number; perStream: number; type?: string; prefix?: string; data?: (index: number) => JsonObject },
): Promise<{ counts: Map<string, number>; last: Position }> {
  const { streams, perStream, type = 'Counted', prefix = 'counter' } = options;
  const counts = new Map<string, number>();
  let last = START;
  const chunk = 10;
  for (let offset = 0; offset < perStream; offset += chunk) {
    for (let stream = 0; stream < streams; stream += 1) {
      const streamId = `${prefix}-${stream}`;
      const size = Math.min(chunk, perStream - offset);
      const events = Array.from({ length: size }, (_, index) => ({
        id: randomUUID(),
        type,
        data: options.data?.(offset + index) ?? { index: offset + index },
        metadata: {},
      }));
      const result = await store.appendToStream(streamId, events);
      last = maxPosition(last, result.position);
      counts.set(streamId, (counts.get(streamId) ?? 0) + size);
    }
  }
  return { counts, last };
}


export async function activeCheckpoint(db: Kysely<unknown>, name: string): Promise<CheckpointView | undefined> {
  return (await listCheckpoints(db)).find((row) => row.name === name && row.active);
}

export async function checkpointsOf(db: Kysely<unknown>, name: string): Promise<CheckpointView[]> {
  return (await listCheckpoints(db)).filter((row) => row.name === name);
}

/** Events of `types` per stream in the log up to `upTo`: what a count projection must show. */
export async function countsInLog(store: EventStore, types: readonly string[], upTo: Position | undefined): Promise<Map<string, number>> {
  const counts = new Map<string, number>();
  if (!upTo) return counts;
  for await (const event of store.readAll({ filter: { eventTypes: types } })) {
    if (comparePositions(event.position, upTo) > 0) break;
    counts.set(event.streamId, (counts.get(event.streamId) ?? 0) + 1);
  }
  return counts;
}

/** The streams of one test, in a database shared by a file's tests. */
export function onlyPrefix(counts: Map<string, number>, prefix: string): Map<string, number> {
  return new Map([...counts].filter(([streamId]) => streamId.startsWith(`${prefix}-`)));
}

/**
 * A kysely on its own pool whose next statement matching `loseAnswer`'s pattern (a COMMIT, an
 * autocommitted claim) runs on the server and then fails for the caller as a dropped connection
 * would: the outcome a network cut leaves the client unsure of.
 */
export function losingAnswers(url: string): { readonly db: Kysely<unknown>; loseAnswer(to: RegExp): void; lost(): number } {
  const pool = new pg.Pool({ connectionString: url, max: 5 });
  let armed: RegExp | undefined;
  let lost = 0;
  const dialect = new PostgresDialect({
    pool: {
      async connect() {
        const client = await pool.connect();
        const query = async (statement: unknown, parameters?: unknown[]): Promise<unknown> => {
          const result = await client.query(statement as string, parameters);
          if (armed && typeof statement === 'string' && armed.test(statement)) {
            armed = undefined;
            lost += 1;
            throw new Error('Connection terminated unexpectedly');
          }
          return result;
        };
        return new Proxy(client, { get: (target, property) => (property === 'query' ? query : Reflect.get(target, property, target)) });
      },
      end: () => pool.end(),
    },
  });
  return {
    db: new Kysely<unknown>({ dialect }),
    loseAnswer: (to) => (armed = to),
    lost: () => lost,
  };
}
