import { afterAll, afterEach, beforeAll, beforeEach, describe, expect, it } from 'vitest';
import type pg from 'pg';
import { migrations } from '../../src/infrastructure/postgres/migrations.js';
import { createPool, migrateToLatest, pendingMigrations } from '../../src/infrastructure/postgres/database.js';
import { createTestDatabase, type TestDatabase } from '../support/database.js';

let database: TestDatabase;
let pool: pg.Pool;
beforeAll(async () => {
  database = await createTestDatabase();
});
afterAll(() => database.drop());
beforeEach(() => {
  pool = createPool(database.url, 2);
});
afterEach(() => pool.end());

const ours = Object.keys(migrations).sort();
const last = ours.at(-1) ?? '';

/** What a newer release leaves behind: a migration this code has never heard of. */
async function applyNewerRelease(): Promise<void> {
  await pool.query(`INSERT INTO kysely_migration (name, timestamp) VALUES ('9999_next_release', now()::text)`);
}

describe('migrateToLatest beside other releases (README "Upgrading")', () => {
  it('a fresh database: applies every migration; run again: applies nothing', async () => {
    const first = await migrateToLatest(pool);
    expect(first.results.map((result) => result.migrationName)).toEqual(ours);
    expect(await migrateToLatest(pool)).toEqual({ results: [], newer: [] });
  });

  it('a schema a newer release migrated: this older code starts, applying nothing and naming what it does not know', async () => {
    await applyNewerRelease();
    expect(await migrateToLatest(pool)).toEqual({ results: [], newer: ['9999_next_release'] });
    expect(await pendingMigrations(pool)).toEqual([]);
  });

  it('a schema a newer release migrated that lacks one of ours: fails naming both, applying nothing', async () => {
    await pool.query(`DELETE FROM kysely_migration WHERE name = $1`, [last]);
    await expect(migrateToLatest(pool)).rejects.toThrow(
      `Cannot apply ${last}: the database has migrations this code does not know (9999_next_release)`,
    );
    expect(await pendingMigrations(pool)).toEqual([last]);
  });
});

describe('a database whose tables a release before the search_path pin made outside public (README "Audit")', () => {
  let elsewhere: TestDatabase;
  let elsewherePool: pg.Pool;
  beforeAll(async () => {
    elsewhere = await createTestDatabase();
  });
  afterAll(() => elsewhere.drop());
  beforeEach(() => {
    elsewherePool = createPool(elsewhere.url, 2);
  });
  afterEach(() => elsewherePool.end());

  it('is refused, naming the schema and how to move it, before anything is made in public', async () => {
    // Given the tables in the owner's own schema, as PostgreSQL's default path put them
    await elsewherePool.query('CREATE SCHEMA bookable_owner');
    await elsewherePool.query('CREATE TABLE bookable_owner.kysely_migration (name varchar(255) PRIMARY KEY, timestamp varchar(255) NOT NULL)');
    await elsewherePool.query('CREATE TABLE bookable_owner.events (global_position bigint)');
    await elsewherePool.query(`CREATE FUNCTION bookable_owner.refuse() RETURNS trigger LANGUAGE plpgsql AS $$ BEGIN RAISE EXCEPTION 'no'; END $$`);
    await elsewherePool.query('CREATE TRIGGER events_immutable BEFORE UPDATE ON bookable_owner.events FOR EACH ROW EXECUTE FUNCTION bookable_owner.refuse()');

    // When this release migrates it, then it refuses, saying where they are and what to do
    await expect(migrateToLatest(elsewherePool)).rejects.toThrow(/tables are in schema "bookable_owner", not in "public".*ALTER SCHEMA "bookable_owner" RENAME TO "public"/);
    const { rows } = await elsewherePool.query(`SELECT to_regclass('public.kysely_migration') AS made`);
    expect(rows).toEqual([{ made: null }]);
  });

  it("another application's Kysely migrations in a schema of their own (a shared database) are not taken for ours: a fresh install migrates", async () => {
    // Given another service's tables in schema billing, and nothing of ours
    const shared = await createTestDatabase();
    const sharedPool = createPool(shared.url, 2);
    try {
      await sharedPool.query('CREATE SCHEMA billing');
      await sharedPool.query('CREATE TABLE billing.kysely_migration (name varchar(255) PRIMARY KEY, timestamp varchar(255) NOT NULL)');

      // When this service migrates it, then it makes its tables in public
      await migrateToLatest(sharedPool);
      const { rows } = await sharedPool.query(`SELECT to_regclass('public.events') IS NOT NULL AS made`);
      expect(rows).toEqual([{ made: true }]);
    } finally {
      await sharedPool.end();
      await shared.drop();
    }
  });
});
