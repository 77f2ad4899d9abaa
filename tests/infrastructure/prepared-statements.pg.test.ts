import { sql } from 'kysely';
import type pg from 'pg';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { createKysely, createPool } from '../../src/infrastructure/postgres/database.js';
import { createTestDatabase, type TestDatabase } from '../support/database.js';

type Tables = { notes: { id: number; body: string } };

describe('kysely over our pools', () => {
  let database: TestDatabase;
  let pool: pg.Pool;
  beforeAll(async () => {
    database = await createTestDatabase();
    // One connection: every statement below runs on the same server session.
    pool = createPool(database.url, 1);
    await pool.query('CREATE TABLE notes (id int PRIMARY KEY, body text NOT NULL)');
  });
  afterAll(async () => {
    await pool.end();
    await database.drop();
  });

  const prepared = async () => (await pool.query<{ statement: string }>('SELECT statement FROM pg_prepared_statements')).rows.map((row) => row.statement);

  it('prepares each statement once per connection, whichever kysely instance runs it, and binds it after', async () => {
    const [first, second] = [createKysely<Tables>(pool), createKysely<Tables>(pool)];
    await first.insertInto('notes').values({ id: 1, body: 'a' }).execute();
    const byFirst = await first.selectFrom('notes').select('body').where('id', '=', 1).execute();
    const bySecond = await second.selectFrom('notes').select('body').where('id', '=', 1).execute();
    expect([byFirst, bySecond]).toEqual([[{ body: 'a' }], [{ body: 'a' }]]);
    const statements = await prepared();
    expect(statements.filter((text) => text.startsWith('select "body" from "notes"'))).toHaveLength(1);
    expect(statements.filter((text) => text.startsWith('insert into "notes"'))).toHaveLength(1);
  });

  it('runs a statement whose result type a schema change altered unnamed, instead of failing', async () => {
    const db = createKysely<Tables>(pool);
    const all = () => db.selectFrom('notes').selectAll().where('id', '=', 1).execute();
    expect(await all()).toEqual([{ id: 1, body: 'a' }]);
    await pool.query('ALTER TABLE notes ADD COLUMN added int NOT NULL DEFAULT 7');
    expect(await all()).toEqual([{ id: 1, body: 'a', added: 7 }]);
    expect(await all()).toEqual([{ id: 1, body: 'a', added: 7 }]);
  });

  it('builds rows with every column, nulls and repeated names as pg does, and answers a script of several statements', async () => {
    const db = createKysely<Tables>(pool);
    const row = await sql<{ a: number; b: null; c: string }>`select 1::int as a, null as b, 'x' as c, 'y' as c`.execute(db);
    expect(row.rows).toEqual([{ a: 1, b: null, c: 'y' }]);
    const script = await sql<{ two: number }>`create temporary table scratch (n int); select 2::int as two`.execute(db);
    expect(script.rows).toEqual([{ two: 2 }]);
  });

  it('leaves transaction control unprepared, and transactions work as before', async () => {
    const db = createKysely<Tables>(pool);
    await db.transaction().execute(async (trx) => {
      await trx.insertInto('notes').values({ id: 2, body: 'b' }).execute();
    });
    await expect(
      db.transaction().execute(async (trx) => {
        await trx.insertInto('notes').values({ id: 3, body: 'c' }).execute();
        throw new Error('roll back');
      }),
    ).rejects.toThrow('roll back');
    expect((await sql<{ count: string }>`select count(*) from notes`.execute(db)).rows[0]?.count).toBe('2');
    expect((await prepared()).some((text) => /^(begin|commit|rollback)/i.test(text))).toBe(false);
  });

  it("names its connections in pg_stat_activity after the process's role", async () => {
    const named = createPool(database.url, 1, 'bookable query');
    try {
      const { rows } = await named.query<{ name: string }>("SELECT current_setting('application_name') AS name");
      expect(rows).toEqual([{ name: 'bookable query' }]);
    } finally {
      await named.end();
    }
  });
});
