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
import { PersonalDataVault } from '../../src/application/privacy/personal-data-vault.js';
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

function settings(dataDir: string, masterKey?: Buffer, previous: readonly Buffer[] = []) {
  return loadConfig({
    NODE_ENV: 'test',
    DATABASE_URL: database.url,
    DATA_DIR: dataDir,
    ...(masterKey ? { MASTER_KEY: masterKey.toString('base64') } : {}),
    ...(previous.length > 0 ? { MASTER_KEY_PREVIOUS: previous.map((key) => key.toString('base64')).join(',') } : {}),
  });
}

/** The fingerprint `master_key_claim` names, if any. */
async function claimed(): Promise<string | undefined> {
  const { rows } = await pool.query<{ fingerprint: string }>('SELECT fingerprint FROM master_key_claim');
  return rows[0]?.fingerprint;
}

/** Every fingerprint a stored (live) data key names. */
async function storedFingerprints(): Promise<string[]> {
  const { rows } = await pool.query<{ wrapped_with: string }>('SELECT DISTINCT wrapped_with FROM subject_keys WHERE wrapped_with IS NOT NULL ORDER BY 1');
  return rows.map((row) => row.wrapped_with);
}

async function keyIn(dataDir: string): Promise<Buffer> {
  return Buffer.from((await readFile(path.join(dataDir, 'master-key'), 'utf8')).trim(), 'base64');
}

/** The starts that opened, and the refusals of the others; a failure of another kind fails the test. */
function settled<T>(outcomes: readonly PromiseSettledResult<T>[]): { opened: T[]; refused: ConfigError[] } {
  const opened = outcomes.flatMap((outcome) => (outcome.status === 'fulfilled' ? [outcome.value] : []));
  const refused = outcomes.flatMap((outcome) => {
    if (outcome.status === 'fulfilled') return [];
    if (!(outcome.reason instanceof ConfigError)) throw new Error(`expected a ConfigError, got ${String(outcome.reason)}`);
    return [outcome.reason];
  });
  return { opened, refused };
}

/** An event of `subjectId` whose name is sealed by `vault`, as the command loop stores it. */
async function sealedName(vault: PersonalDataVault, subjectId: string, name: string) {
  const { data, personalData } = await vault.seal(subjectId, { name }, [['name']]);
  return { data, metadata: { personalData: personalData ?? null } };
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

  it('erased keys (tombstones) carry no master key: a database holding only those, and no claim, counts as fresh, and the first start claims its key', async () => {
    // given a database whose only data key, wrapped by key A, was erased, and which claims no key
    await storeKeyUnder(keyA, 'ada');
    await new PgSubjectKeyStore(pool, keyA).destroy('ada', new Date());

    // when storage opens with key B
    await (await openStorage(settings(newDataDir(), keyB), logger)).stop();

    // then it opens, and B is the key that wraps new data keys from now on
    expect(await claimed()).toBe(fingerprintOf(keyB));
  });

  describe('the claim: master_key_claim names the one master key that wraps new data keys', () => {
    it('two first starts at once on a fresh database, from two DATA_DIRs without MASTER_KEY: one claims the key it generated, the other is refused and leaves no key file behind', async () => {
      // given a fresh database, and two DATA_DIRs that hold no master key
      const dataDirs = [newDataDir(), newDataDir()];

      // when storage opens from both at once
      const outcomes = await Promise.allSettled(dataDirs.map((dataDir) => openStorage(settings(dataDir), logger)));

      // then exactly one opens, and the database claims the key it generated
      const { opened, refused } = settled(outcomes);
      expect(opened).toHaveLength(1);
      expect(refused).toHaveLength(1);
      const winner = outcomes.findIndex((outcome) => outcome.status === 'fulfilled');
      const [storage] = opened;
      const [error] = refused;
      const winnerDir = dataDirs[winner];
      const loserDir = dataDirs[1 - winner];
      if (storage === undefined || error === undefined || winnerDir === undefined || loserDir === undefined) throw new Error('unreachable: one opened, one refused');
      const claimedKey = await keyIn(winnerDir);
      expect(await claimed()).toBe(fingerprintOf(claimedKey));
      // and the other is refused, naming the claimed key, without a key file of its own left behind
      expect(error.message).toContain(fingerprintOf(claimedKey));
      expect(await exists(path.join(loserDir, 'master-key'))).toBe(false);

      // and when the winner seals for a person and the other starts again, it is still refused: one key is ever stored
      await storage.vault.seal('ada', { name: 'Ada' }, [['name']]);
      await storage.stop();
      await refusal(openStorage(settings(loserDir), logger));
      expect(await storedFingerprints()).toEqual([fingerprintOf(claimedKey)]);
    });

    it('two first starts at once with MASTER_KEY A and MASTER_KEY B: exactly one opens, and only its key ever wraps a data key', async () => {
      for (let round = 0; round < 5; round += 1) {
        // given a fresh database (no key stored, none claimed)
        await pool.query('TRUNCATE subject_keys, master_key_claim');

        // when storage opens with key A and with key B at once, and each that opens seals for a person
        const outcomes = await Promise.allSettled(
          [keyA, keyB].map(async (key, index) => {
            const storage = await openStorage(settings(newDataDir(), key), logger);
            try {
              await storage.vault.seal(`person-${index}`, { name: 'Ada' }, [['name']]);
            } finally {
              await storage.stop();
            }
            return key;
          }),
        );

        // then one opened, the other was refused, and one fingerprint is claimed and stored
        const { opened, refused } = settled(outcomes);
        expect(opened).toHaveLength(1);
        expect(refused).toHaveLength(1);
        const [key] = opened;
        if (key === undefined) throw new Error('no start opened');
        expect(await claimed()).toBe(fingerprintOf(key));
        expect(await storedFingerprints()).toEqual([fingerprintOf(key)]);
      }
    });

    it('first starts at once from one DATA_DIR without MASTER_KEY (compose starts several roles together): all open, with the one key it keeps', async () => {
      // given a fresh database and one DATA_DIR that holds no master key yet
      const dataDir = newDataDir();

      // when three processes open storage from it at once
      const opened = await Promise.all([1, 2, 3].map(() => openStorage(settings(dataDir), logger)));
      await Promise.all(opened.map((storage) => storage.stop()));

      // then all open, and the claimed key is the one in its file
      expect(await claimed()).toBe(fingerprintOf(await keyIn(dataDir)));
    });

    it('a claim and no data key yet: storage opened from another DATA_DIR without MASTER_KEY is refused and generates no key', async () => {
      // given a database whose first start claimed the key generated into its DATA_DIR, and which stores no data key yet
      const first = newDataDir();
      await (await openStorage(settings(first), logger)).stop();

      // when storage opens from another DATA_DIR, which holds no master-key file
      const other = newDataDir();
      const error = await refusal(openStorage(settings(other), logger));

      // then it is refused, naming the claimed key and the missing file, and no key is generated
      expect(error.message).not.toContain('\n');
      expect(error.message).toContain(fingerprintOf(await keyIn(first)));
      expect(error.message).toContain(path.join(other, 'master-key'));
      expect(await exists(path.join(other, 'master-key'))).toBe(false);
    });

    it('an upgraded database (data keys of one master key, no claim): the first start claims the stored keys\' fingerprint', async () => {
      // given data keys wrapped by key A, stored before the claim was kept
      await storeKeyUnder(keyA, 'ada');
      expect(await claimed()).toBeUndefined();

      // when storage opens with key A
      await (await openStorage(settings(newDataDir(), keyA), logger)).stop();

      // then A is claimed
      expect(await claimed()).toBe(fingerprintOf(keyA));
    });

    it('a claim decides which key wraps new data keys: MASTER_KEY B with the claimed key A in MASTER_KEY_PREVIOUS is refused, naming both, and nothing is written', async () => {
      // given a database claimed by key A, with a data key of A
      await (await openStorage(settings(newDataDir(), keyA), logger)).stop();
      await storeKeyUnder(keyA, 'ada');

      // when storage opens with MASTER_KEY B and A as a previous key
      const error = await refusal(openStorage(settings(newDataDir(), keyB, [keyA]), logger));

      // then it is refused, naming both keys and how the claim is moved on purpose
      expect(error.message).not.toContain('\n');
      expect(error.message).toContain(fingerprintOf(keyA));
      expect(error.message).toContain(fingerprintOf(keyB));
      expect(error.message).toContain('UPDATE master_key_claim');
      expect(await claimed()).toBe(fingerprintOf(keyA));
      expect(await storedFingerprints()).toEqual([fingerprintOf(keyA)]);
    });
  });

  describe('a database already holding data keys of two master keys (a seed run from another DATA_DIR, before the claim)', () => {
    it('is refused with either key alone, naming each stored key not covered and MASTER_KEY_PREVIOUS', async () => {
      // given data keys wrapped by key A and by key B
      await storeKeyUnder(keyA, 'ada');
      await storeKeyUnder(keyB, 'bob');

      // when storage opens with either
      const withA = await refusal(openStorage(settings(newDataDir(), keyA), logger));
      const withB = await refusal(openStorage(settings(newDataDir(), keyB), logger));

      // then each is refused in one line, naming the key it is not and the setting that would take it
      expect(withA.message).not.toContain('\n');
      expect(withA.message).toContain(fingerprintOf(keyB));
      expect(withA.message).toContain('MASTER_KEY_PREVIOUS');
      expect(withB.message).toContain(fingerprintOf(keyA));
      expect(withB.message).toContain('MASTER_KEY_PREVIOUS');
      expect(withA.message).not.toContain(keyB.toString('base64'));
      // and nothing is claimed
      expect(await claimed()).toBeUndefined();
    });

    it('names every stored key that neither MASTER_KEY nor MASTER_KEY_PREVIOUS covers, and only those', async () => {
      // given data keys wrapped by keys A, B and C
      const keyC = randomBytes(32);
      await storeKeyUnder(keyA, 'ada');
      await storeKeyUnder(keyB, 'bob');
      await storeKeyUnder(keyC, 'cyd');

      // when storage opens with MASTER_KEY A and nothing else, then with B as a previous key
      const alone = await refusal(openStorage(settings(newDataDir(), keyA), logger));
      const withB = await refusal(openStorage(settings(newDataDir(), keyA, [keyB]), logger));

      // then each names, as the keys that wrapped data keys it cannot unwrap, those it lacks
      const lacking = (error: ConfigError) => error.message.slice(0, error.message.indexOf(', but '));
      expect(lacking(alone)).toContain(fingerprintOf(keyB));
      expect(lacking(alone)).toContain(fingerprintOf(keyC));
      expect(lacking(withB)).toContain(fingerprintOf(keyC));
      expect(lacking(withB)).not.toContain(fingerprintOf(keyB));
      expect(lacking(withB)).not.toContain(fingerprintOf(keyA));
    });

    it('opens with MASTER_KEY A and MASTER_KEY_PREVIOUS B: people of both read, and new data keys are wrapped by A, which is claimed', async () => {
      // given a person sealed under key A and one under key B
      const ada = await sealedName(new PersonalDataVault(new PgSubjectKeyStore(pool, keyA)), 'ada', 'Ada');
      const bob = await sealedName(new PersonalDataVault(new PgSubjectKeyStore(pool, keyB)), 'bob', 'Bob');

      // when storage opens with MASTER_KEY A and B as a previous key, reads both and seals for a new person
      const storage = await openStorage(settings(newDataDir(), keyA, [keyB]), logger);
      const revealed = await storage.vault.reveal([ada, bob]);
      await storage.vault.seal('cyd', { name: 'Cyd' }, [['name']]);
      await storage.stop();

      // then both read, the new key is wrapped by A, and A is claimed
      expect(revealed.map((event) => event.data.name)).toEqual(['Ada', 'Bob']);
      const { rows } = await pool.query<{ wrapped_with: string }>("SELECT wrapped_with FROM subject_keys WHERE subject_id = 'cyd'");
      expect(rows).toEqual([{ wrapped_with: fingerprintOf(keyA) }]);
      expect(await claimed()).toBe(fingerprintOf(keyA));
      // and it opens so again
      await (await openStorage(settings(newDataDir(), keyA, [keyB]), logger)).stop();
    });
  });

  it('a schema without master_key_claim (RUN_MIGRATIONS=false before migration 0740 ran): the stored keys are still checked, and a covered key opens', async () => {
    // given a schema that lacks the claim, with data keys of key A
    await pool.query('DROP TABLE master_key_claim');
    await storeKeyUnder(keyA, 'ada');
    const behind = (key: Buffer) => ({ ...settings(newDataDir(), key), RUN_MIGRATIONS: false });

    // when storage opens with key B, then with key A
    // then B is refused and A opens
    expect((await refusal(openStorage(behind(keyB), logger))).message).toContain(fingerprintOf(keyA));
    await (await openStorage(behind(keyA), logger)).stop();
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
