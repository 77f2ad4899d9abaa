import { randomBytes } from 'node:crypto';
import type pg from 'pg';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { PgSubjectKeyStore } from '../../src/infrastructure/privacy/pg-subject-key-store.js';
import { createPool, migrateToLatest } from '../../src/infrastructure/postgres/database.js';
import { createTestDatabase, type TestDatabase } from '../support/database.js';
import { testMasterKey } from '../support/personal-data.js';

describe('PgSubjectKeyStore', () => {
  let database: TestDatabase;
  let pool: pg.Pool;
  let keys: PgSubjectKeyStore;

  beforeAll(async () => {
    database = await createTestDatabase();
    pool = createPool(database.url, 20);
    await migrateToLatest(pool);
    keys = new PgSubjectKeyStore(pool, testMasterKey);
  });
  afterAll(async () => {
    await pool.end();
    await database.drop();
  });

  it('agrees on one key when 20 first uses race', async () => {
    const obtained = await Promise.all(Array.from({ length: 20 }, () => keys.obtain('racing-subject')));
    const distinct = new Set(obtained.map((key) => (key === 'erased' ? key : key.toString('hex'))));
    expect(distinct.size).toBe(1);
    expect((await keys.find(['racing-subject'])).get('racing-subject')).toEqual(obtained[0]);
  });

  it('keeps keys wrapped at rest: the raw key is nowhere in the table', async () => {
    const key = await keys.obtain('wrapped-subject');
    if (key === 'erased') throw new Error('a fresh subject has a key');
    const { rows } = await pool.query<{ wrapped_key: Buffer }>('SELECT wrapped_key FROM subject_keys WHERE subject_id = $1', ['wrapped-subject']);
    expect(rows[0]?.wrapped_key.includes(key)).toBe(false);
  });

  it('destroys a key for good, idempotently, even one never created', async () => {
    await keys.obtain('leaving-subject');
    await keys.destroy('leaving-subject', new Date());
    await keys.destroy('leaving-subject', new Date());
    await keys.destroy('never-seen', new Date());
    expect(await keys.obtain('leaving-subject')).toBe('erased');
    expect(await keys.obtain('never-seen')).toBe('erased');
    const found = await keys.find(['leaving-subject', 'never-seen', 'unknown']);
    expect([...found.entries()].sort()).toEqual([['leaving-subject', 'erased'], ['never-seen', 'erased']]);
    const { rows } = await pool.query('SELECT wrapped_key FROM subject_keys WHERE subject_id = $1', ['leaving-subject']);
    expect(rows).toEqual([{ wrapped_key: null }]);
  });

  it('hands out keys that own their memory, so a cached key pins no shared buffer slab', async () => {
    const obtained = await keys.obtain('cached-subject');
    const found = (await keys.find(['cached-subject'])).get('cached-subject');
    for (const key of [obtained, found]) {
      if (key === undefined || key === 'erased') throw new Error('a fresh subject has a key');
      expect(key.buffer.byteLength).toBe(32);
    }
  });

  it('names a wrong MASTER_KEY instead of failing obscurely', async () => {
    await keys.obtain('named-subject');
    const wrong = new PgSubjectKeyStore(pool, randomBytes(32));
    await expect(wrong.find(['named-subject'])).rejects.toThrow(/wrapped by master key \w+, but MASTER_KEY is \w+/);
  });

  it('tells whether a key is destroyed without unwrapping it, under any master key', async () => {
    await keys.obtain('unwrappable-subject');
    const wrong = new PgSubjectKeyStore(pool, randomBytes(32));
    expect(await wrong.isErased('unwrappable-subject')).toBe(false);
    expect(await wrong.isErased('unknown-subject')).toBe(false);

    await wrong.destroy('unwrappable-subject', new Date());

    expect(await wrong.isErased('unwrappable-subject')).toBe(true);
    expect(await keys.isErased('unwrappable-subject')).toBe(true);
  });
});
