import { randomBytes, randomUUID } from 'node:crypto';
import type pg from 'pg';
import { afterEach, beforeEach, describe, expect, it } from 'vitest';
import { loadConfig } from '../../src/infrastructure/config/config.js';
import { claimEventLog } from '../../src/infrastructure/event-log-identity/event-log-identity.js';
import { createLogger } from '../../src/infrastructure/logging/logger.js';
import { createPool, migrateToLatest } from '../../src/infrastructure/postgres/database.js';
import { openStorage } from '../../src/infrastructure/storage.js';
import { createTestDatabase, type TestDatabase } from '../support/database.js';

const logger = createLogger({ level: 'silent' });
const masterKey = randomBytes(32).toString('base64');

let database: TestDatabase;
let pool: pg.Pool;
beforeEach(async () => {
  database = await createTestDatabase();
  pool = createPool(database.url, 8);
});
afterEach(async () => {
  await pool.end();
  await database.drop();
});

/** The settings of a process on this database: the PostgreSQL event store, or EventStoreDB. */
function settings(eventStoreUrl?: string) {
  return loadConfig({ NODE_ENV: 'test', DATABASE_URL: database.url, MASTER_KEY: masterKey, ...(eventStoreUrl ? { EVENTSTORE_URL: eventStoreUrl } : {}) });
}

async function recorded(): Promise<{ kind: string }[]> {
  const { rows } = await pool.query<{ kind: string }>('SELECT kind FROM event_log_identity');
  return rows;
}

describe('the event log a database took its checkpoints from (README "Switching event stores")', () => {
  it('a fresh database: storage records the PostgreSQL event store, and opens again on it', async () => {
    // given a fresh database
    // when storage opens on it with the PostgreSQL event store, twice, for a process that resumes checkpoints
    await (await openStorage(settings(), logger, undefined, { claimEventLog: 'claim' })).stop();
    await (await openStorage(settings(), logger, undefined, { claimEventLog: 'claim' })).stop();

    // then the database names that log, once
    expect(await recorded()).toEqual([{ kind: 'postgres' }]);
  });

  it('a database whose checkpoints come from the PostgreSQL log: storage on EventStoreDB refuses, naming both and what to do', async () => {
    // given a database used with the PostgreSQL event store
    await (await openStorage(settings(), logger, undefined, { claimEventLog: 'claim' })).stop();

    // when storage opens on it with EventStoreDB (refused before any connection to it)
    const opening = openStorage(settings('esdb://localhost:2113?tls=false'), logger);

    // then it refuses, and the record is unchanged
    await expect(opening).rejects.toThrow(/taken from the postgres log .* this process's event store is eventstoredb/);
    await expect(opening).rejects.toThrow('DELETE FROM projection_checkpoints; DELETE FROM process_checkpoints; DELETE FROM event_log_identity;');
    expect(await recorded()).toEqual([{ kind: 'postgres' }]);
  });

  it('roles starting at once on a fresh database: every claim succeeds, one row is recorded', async () => {
    await migrateToLatest(pool);
    for (let round = 0; round < 20; round += 1) {
      // given no record
      await pool.query('DELETE FROM event_log_identity');

      // when four processes claim the log at the same moment
      const claims = Array.from({ length: 4 }, () => claimEventLog(pool, 'postgres', 'claim'));

      // then none is refused, and one row names the log
      await expect(Promise.all(claims)).resolves.toBeDefined();
      expect(await recorded()).toEqual([{ kind: 'postgres' }]);
    }
  });

  it('a schema without the record (RUN_MIGRATIONS=false before the migration ran): not checked, and the process starts as on any schema behind its release', async () => {
    // given a schema that lacks the table
    await migrateToLatest(pool);
    await pool.query('DROP TABLE event_log_identity');

    // when the log is claimed
    // then nothing could be checked, and the caller is told so
    await expect(claimEventLog(pool, 'postgres', 'claim')).resolves.toBe('schema-behind');
  });

  it('a process that resumes no checkpoint (an API, a command-line tool) records nothing: a tool run without EVENTSTORE_URL must not name a deployment\'s log', async () => {
    // given a migrated database with no record
    await migrateToLatest(pool);

    // when storage opens on it only to check (as the audit tool does), on the PostgreSQL store
    await (await openStorage(settings(), logger)).stop();

    // then nothing is recorded, and a projector on EventStoreDB may still claim the database
    expect(await recorded()).toEqual([]);
    await expect(claimEventLog(pool, 'eventstoredb', 'claim')).resolves.toBe('same-log');
  });

  describe('a database with checkpoints from before the record was kept', () => {
    /** A payment-process checkpoint at `position`, as a release before the record left it. */
    async function checkpointAt(position: { commit: bigint; prepare: bigint }): Promise<void> {
      await migrateToLatest(pool);
      await pool.query('INSERT INTO process_checkpoints (process_name, position_commit, position_prepare) VALUES ($1, $2, $3)', [
        'payment-process',
        position.commit.toString(),
        position.prepare.toString(),
      ]);
    }

    it('taken from the PostgreSQL log: the first claim records postgres, and a claim on EventStoreDB is refused', async () => {
      // given a checkpoint at an event of the events table
      const storage = await openStorage(settings(), logger);
      const { position } = await storage.eventStore.appendToStream('booking-1', [{ id: randomUUID(), type: 'BookingRequested', data: {}, metadata: {} }]);
      await storage.stop();
      await checkpointAt(position);

      // when a projector on EventStoreDB claims the database first
      // then it is refused: those checkpoints are the PostgreSQL log's
      await expect(claimEventLog(pool, 'eventstoredb', 'claim')).rejects.toThrow(/taken from the postgres log/);
      expect(await recorded()).toEqual([{ kind: 'postgres' }]);
      await expect(claimEventLog(pool, 'postgres', 'claim')).resolves.toBe('same-log');
    });

    it('taken from EventStoreDB, no record yet: a process that only checks (an API) on the PostgreSQL store is refused too, and records nothing', async () => {
      // given a checkpoint at an EventStoreDB log position, and no record
      await checkpointAt({ commit: 48_213_977n, prepare: 48_213_977n });

      // when a command API without EVENTSTORE_URL starts before any projector claimed the database
      // then it is refused, and nothing is recorded
      await expect(claimEventLog(pool, 'postgres', 'check')).rejects.toThrow(/taken from the eventstoredb log/);
      expect(await recorded()).toEqual([]);
      await expect(claimEventLog(pool, 'eventstoredb', 'check')).resolves.toBe('same-log');
    });

    it('taken from EventStoreDB (positions of no event of the events table): a claim on the PostgreSQL store is refused', async () => {
      // given a checkpoint at an EventStoreDB log position
      await checkpointAt({ commit: 48_213_977n, prepare: 48_213_977n });

      // when a projector on the PostgreSQL store claims the database first
      // then it is refused, and the record names EventStoreDB
      await expect(claimEventLog(pool, 'postgres', 'claim')).rejects.toThrow(/taken from the eventstoredb log/);
      expect(await recorded()).toEqual([{ kind: 'eventstoredb' }]);
    });
  });
});
