import { execFile } from 'node:child_process';
import { createHash, randomBytes, randomUUID } from 'node:crypto';
import { access, mkdtemp, readFile, rm } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import path from 'node:path';
import { promisify } from 'node:util';
import type pg from 'pg';
import { afterAll, afterEach, beforeAll, beforeEach, describe, expect, it } from 'vitest';
import { openAuditCliStorage } from '../../src/infrastructure/audit/audit-cli-storage.js';
import { ConfigError, loadConfig } from '../../src/infrastructure/config/config.js';
import { createLogger } from '../../src/infrastructure/logging/logger.js';
import { createPool, migrateToLatest } from '../../src/infrastructure/postgres/database.js';
import { PgSubjectKeyStore } from '../../src/infrastructure/privacy/pg-subject-key-store.js';
import { openStorage } from '../../src/infrastructure/storage.js';
import { childEnv } from '../support/child-env.js';
import { createTestDatabase, type TestDatabase } from '../support/database.js';

/**
 * Every process opens storage, and with it the master key, before it writes anything: a key that
 * is not the one that wrapped the data keys already stored (a mistyped `MASTER_KEY`, another
 * `DATA_DIR`) is refused there, since every data key it wrapped would sit beside the others and
 * every reader would fail on them for good (the event log cannot be rewritten).
 */
const logger = createLogger({ level: 'silent' });
const run = promisify(execFile);

const keyA = randomBytes(32);
const keyB = randomBytes(32);
/** How `subject_keys.wrapped_with` names the master key that wrapped a row. */
const fingerprintOf = (key: Buffer) => createHash('sha256').update(key).digest('hex').slice(0, 16);

let scratch: string;
let database: TestDatabase;
let pool: pg.Pool;
beforeAll(async () => {
  scratch = await mkdtemp(path.join(tmpdir(), 'master-key-at-start-'));
});
afterAll(() => rm(scratch, { recursive: true, force: true }));
beforeEach(async () => {
  database = await createTestDatabase();
  pool = createPool(database.url, 4);
  await migrateToLatest(pool);
});
afterEach(async () => {
  await pool.end();
  await database.drop();
});

/** A `DATA_DIR` that does not exist yet. */
const newDataDir = () => path.join(scratch, randomUUID());

function settings(dataDir: string, masterKey?: Buffer) {
  return loadConfig({ NODE_ENV: 'test', DATABASE_URL: database.url, DATA_DIR: dataDir, ...(masterKey ? { MASTER_KEY: masterKey.toString('base64') } : {}) });
}

async function storeKeyUnder(masterKey: Buffer, subjectId: string): Promise<void> {
  await new PgSubjectKeyStore(pool, masterKey).obtain(subjectId);
}

async function keyRows(): Promise<number> {
  const { rows } = await pool.query<{ n: number }>('SELECT count(*)::int AS n FROM subject_keys');
  return rows[0]?.n ?? 0;
}

async function exists(file: string): Promise<boolean> {
  return access(file).then(
    () => true,
    () => false,
  );
}

async function refusal(opening: Promise<unknown>): Promise<ConfigError> {
  const error = await opening.then(
    () => undefined,
    (reason: unknown) => reason,
  );
  if (!(error instanceof ConfigError)) throw new Error(`expected a ConfigError, got ${String(error)}`);
  return error;
}

describe('the master key checked against the data keys already stored, when storage opens (README "Personal data and erasure")', () => {
  it('keys wrapped by key A, storage opened with MASTER_KEY B: refused in one line naming both fingerprints and what to do, and nothing is written', async () => {
    // given a database whose data keys key A wrapped
    await storeKeyUnder(keyA, 'ada');

    // when a process that would claim the event log opens storage with key B
    const dataDir = newDataDir();
    const error = await refusal(openStorage(settings(dataDir, keyB), logger, undefined, { claimEventLog: 'claim' }));

    // then it is refused, naming both keys by fingerprint only, and how to fix it
    expect(error.message).not.toContain('\n');
    expect(error.message).toContain(fingerprintOf(keyA));
    expect(error.message).toContain(fingerprintOf(keyB));
    expect(error.message).toMatch(/set MASTER_KEY/);
    expect(error.message).toMatch(/DATA_DIR/);
    expect(error.message).not.toContain(keyA.toString('base64'));
    expect(error.message).not.toContain(keyB.toString('base64'));
    // and nothing was written: no key row, no record of the log, no file
    expect(await keyRows()).toBe(1);
    expect((await pool.query('SELECT 1 FROM event_log_identity')).rowCount).toBe(0);
    expect(await exists(dataDir)).toBe(false);
  });

  it('keys wrapped by the master-key file of one DATA_DIR, storage opened from another without MASTER_KEY: refused, and no master-key file is made', async () => {
    // given a database whose data keys the key generated into one DATA_DIR wrapped
    const first = newDataDir();
    const storage = await openStorage(settings(first), logger);
    await storage.vault.seal('ada', { name: 'Ada' }, [['name']]);
    await storage.stop();
    const generated = Buffer.from((await readFile(path.join(first, 'master-key'), 'utf8')).trim(), 'base64');

    // when storage opens from another DATA_DIR, which holds no master-key file
    const other = newDataDir();
    const error = await refusal(openStorage(settings(other), logger));

    // then it is refused, naming the stored key's fingerprint and the missing file, and no key is generated
    expect(error.message).not.toContain('\n');
    expect(error.message).toContain(fingerprintOf(generated));
    expect(error.message).toContain(path.join(other, 'master-key'));
    expect(await exists(other)).toBe(false);
    expect(await keyRows()).toBe(1);
  });

  it('a fresh database: a master key is generated into DATA_DIR, and storage opens again with it', async () => {
    // given a database with no data keys
    // when storage opens without MASTER_KEY, and seals for a person
    const dataDir = newDataDir();
    const storage = await openStorage(settings(dataDir), logger);
    await storage.vault.seal('ada', { name: 'Ada' }, [['name']]);
    await storage.stop();

    // then the key is kept in DATA_DIR, and storage opens again from it
    expect(await exists(path.join(dataDir, 'master-key'))).toBe(true);
    await (await openStorage(settings(dataDir), logger)).stop();
  });

  it('erased keys (tombstones) carry no master key: a database holding only those counts as fresh', async () => {
    // given a database whose only data key, wrapped by key A, was erased
    await storeKeyUnder(keyA, 'ada');
    await new PgSubjectKeyStore(pool, keyA).destroy('ada', new Date());

    // when storage opens with key B, and without any key
    await (await openStorage(settings(newDataDir(), keyB), logger)).stop();
    const dataDir = newDataDir();
    await (await openStorage(settings(dataDir), logger)).stop();

    // then both open, the second with a key generated for it
    expect(await exists(path.join(dataDir, 'master-key'))).toBe(true);
  });

  it('a database already holding keys of two master keys is refused with either, naming the other', async () => {
    // given data keys wrapped by key A and by key B
    await storeKeyUnder(keyA, 'ada');
    await storeKeyUnder(keyB, 'bob');

    // when storage opens with either
    // then each is refused, naming the key it is not
    expect((await refusal(openStorage(settings(newDataDir(), keyA), logger))).message).toContain(fingerprintOf(keyB));
    expect((await refusal(openStorage(settings(newDataDir(), keyB), logger))).message).toContain(fingerprintOf(keyA));
  });

  describe('the audit tools, which only read (npm run audit:verify, npm run replay)', () => {
    it('keys stored and no master key: refused, and no master-key file is written', async () => {
      // given a database with a data key
      await storeKeyUnder(keyA, 'ada');

      // when an audit tool opens storage with neither MASTER_KEY nor a master-key file
      const dataDir = newDataDir();
      const error = await refusal(openAuditCliStorage(settings(dataDir)));

      // then it is refused as any process is, and writes no key
      expect(error.message).toContain(fingerprintOf(keyA));
      expect(await exists(dataDir)).toBe(false);
    });

    it('no live keys stored and no master key: it runs, an erased person reads [erased], and no master-key file is written', async () => {
      // given a database whose only person, sealed for under key A, was erased
      const storage = await openStorage(settings(newDataDir(), keyA), logger);
      const { data, personalData } = await storage.vault.seal('ada', { name: 'Ada' }, [['name']]);
      await storage.eventStore.appendToStream('note-ada', [{ id: randomUUID(), type: 'Noted', data, metadata: { personalData: personalData ?? null } }]);
      await storage.stop();
      await new PgSubjectKeyStore(pool, keyA).destroy('ada', new Date());

      // when an audit tool opens storage with neither MASTER_KEY nor a master-key file, and reads her event
      const dataDir = newDataDir();
      const tool = await openAuditCliStorage(settings(dataDir));
      const read = await tool.events.readStream('note-ada');
      const names: unknown[] = [];
      if (read.status === 'found') for await (const event of read.events) names.push(event.data.name);
      await tool.close();

      // then it reads it erased, and nothing was written to DATA_DIR
      expect(names).toEqual(['[erased]']);
      expect(await exists(dataDir)).toBe(false);
    });

    it('keys stored and the matching MASTER_KEY: it runs', async () => {
      await storeKeyUnder(keyA, 'ada');
      await (await openAuditCliStorage(settings(newDataDir(), keyA))).close();
    });
  });

  it('npm run seed from another DATA_DIR against the same DATABASE_URL: exits 1 with the refusal, appending nothing and writing no key', async () => {
    // given a database seeded from one DATA_DIR
    const env = (dataDir: string, adminEmail: string) =>
      childEnv({ NODE_ENV: 'development', DATABASE_URL: database.url, DATA_DIR: dataDir, ADMIN_EMAIL: adminEmail, LOG_LEVEL: 'silent' }, ['JWT_SECRET', 'MASTER_KEY']);
    const seed = (dataDir: string, adminEmail: string) =>
      run(process.execPath, ['--import', 'tsx', 'src/infrastructure/main.ts', 'seed', '--no-demo'], { timeout: 30_000, env: env(dataDir, adminEmail) });
    await seed(newDataDir(), 'admin@example.com');
    const events = async () => (await pool.query<{ n: number }>('SELECT count(*)::int AS n FROM events')).rows[0]?.n;
    const before = { events: await events(), keys: await keyRows() };

    // when it is seeded again from another DATA_DIR
    const other = newDataDir();
    const outcome = await seed(other, 'admin2@example.com').then(
      () => ({ code: 0, stderr: '' }),
      (error: { code: number; stderr: string }) => ({ code: error.code, stderr: error.stderr }),
    );

    // then it stops before anything is appended or any key generated
    expect(outcome.code).toBe(1);
    expect(outcome.stderr).toMatch(/wrapped by master key [0-9a-f]{16}/);
    expect({ events: await events(), keys: await keyRows() }).toEqual(before);
    expect(await exists(other)).toBe(false);
  });
});
