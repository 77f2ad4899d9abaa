import { randomUUID } from 'node:crypto';
import { pino } from 'pino';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { accessTokenTtlSeconds } from '../../src/infrastructure/http/command-api.js';
import { ErasedSubjects } from '../../src/infrastructure/privacy/erased-subjects.js';
import { PgSubjectKeyStore } from '../../src/infrastructure/privacy/pg-subject-key-store.js';
import { createPool } from '../../src/infrastructure/postgres/database.js';
import { postJson, startApi, startBackend, type TestApi, type TestBackend } from '../http/support/command-api.fixture.js';
import { startReadSide, type ReadSide } from '../http/support/read-side.fixture.js';
import { listingInput } from '../support/command-side.js';
import { eventually } from '../support/eventually.js';
import { testMasterKey } from '../support/personal-data.js';

const day = 86_400_000;
const password = 'correct horse battery staple';
const tokenLifetimeMs = accessTokenTtlSeconds * 1000;
const bearer = (token: string) => ({ authorization: `Bearer ${token}` });

/** One process of the service: a command API and a query API sharing its watcher of erasures. */
type Process = { readonly erased: ErasedSubjects; readonly command: TestApi; readonly read: ReadSide };

describe('an access token whose person was erased', () => {
  let backend: TestBackend;
  let here: Process;
  let elsewhere: Process;

  async function startProcess(projectors: boolean): Promise<Process> {
    const erased = await ErasedSubjects.start({ pool: backend.pool, tokenLifetimeMs });
    const command = await startApi(backend, { erasedSubjects: erased });
    const read = await startReadSide(backend, command, pino({ level: 'silent' }), { isErased: erased.has, projectors });
    return { erased, command, read };
  }

  beforeAll(async () => {
    backend = await startBackend();
    here = await startProcess(true);
    // Another process on the same database: it hears of the erasure only from the database.
    elsewhere = await startProcess(false);
  }, 60_000);

  afterAll(async () => {
    for (const { erased, command, read } of [here, elsewhere]) {
      await read.close();
      await command.close();
      await erased.close();
    }
    await backend.close();
  });

  /** A real account with `roles`, made by the system, logged in: its id and access token. */
  async function account(roles: string[]): Promise<{ id: string; token: string }> {
    const email = `${roles.join('-').toLowerCase()}-${randomUUID().slice(0, 8)}@example.com`;
    const system = here.command.app.issueAccessToken({ id: 'system:seed', roles: ['ADMIN', 'AUDITOR'] }).accessToken;
    const signed = await postJson(`${here.command.url}/v1/auth/signup`, { email, password, name: 'Grace Hopper', roles }, bearer(system));
    expect(signed.status).toBe(201);
    const login = await postJson(`${here.command.url}/v1/auth/login`, { email, password });
    expect(login.status).toBe(200);
    return { id: String(signed.body.id), token: String(login.body.accessToken) };
  }

  let nights = 0;
  /** A one-night stay no other request asked for. */
  function stay(listingId: string) {
    const start = here.command.clock.now().getTime() + (2 + nights++) * day;
    return { listingId, startDate: new Date(start).toISOString().slice(0, 10), endDate: new Date(start + day).toISOString().slice(0, 10) };
  }
  const book = (process: Process, token: string, listingId: string) => postJson(`${process.command.url}/v1/bookings`, stay(listingId), bearer(token));
  const myBookings = (process: Process, token: string) => process.read.queryApi.inject({ method: 'GET', url: '/v1/bookings/me', headers: bearer(token) });

  it('is refused (401) by every API of every process within moments; another person’s token still works', async () => {
    const [erased, other, owner, admin] = [await account(['CONSUMER']), await account(['CONSUMER']), await account(['OWNER']), await account(['ADMIN'])];
    const listing = await postJson(`${here.command.url}/v1/listings`, listingInput, bearer(owner.token));
    expect(listing.status).toBe(201);
    const listingId = String(listing.body.id);
    for (const process of [here, elsewhere]) {
      expect((await book(process, erased.token, listingId)).status).toBe(201);
      expect((await myBookings(process, erased.token)).statusCode).toBe(200);
    }

    expect((await postJson(`${here.command.url}/v1/admin/subjects/${erased.id}/erase`, {}, bearer(admin.token))).status).toBe(200);

    // The erasing process knows at once.
    const refused = await book(here, erased.token, listingId);
    expect(refused.status).toBe(401);
    expect(refused.body.detail).toBe('The account of this access token was erased');
    expect(refused.headers.get('www-authenticate')).toContain('error="invalid_token"');
    expect((await myBookings(here, erased.token)).statusCode).toBe(401);
    // Another process by its next look at the tombstones, a second later.
    await eventually(async () => (await book(elsewhere, erased.token, listingId)).status === 401, 2_500, 'the other command API to refuse the token');
    await eventually(async () => (await myBookings(elsewhere, erased.token)).statusCode === 401, 2_500, 'the other query API to refuse the token');

    for (const process of [here, elsewhere]) {
      expect((await book(process, other.token, listingId)).status).toBe(201);
      expect((await myBookings(process, other.token)).statusCode).toBe(200);
    }
  });
});

describe('ErasedSubjects', () => {
  let backend: TestBackend;
  beforeAll(async () => {
    backend = await startBackend();
  });
  afterAll(async () => {
    await backend.close();
  });

  const tombstone = (subjectId: string, erasedAgo: string) =>
    backend.pool.query(
      `INSERT INTO subject_keys (subject_id, created_at, erased_at) VALUES ($1, now() - $2::interval, now() - $2::interval)`,
      [subjectId, erasedAgo],
    );

  it('knows on start who was erased within a token lifetime, hears of a new tombstone at its next poll, and stops when the pool ends', async () => {
    await tombstone('erased-lately', '10 minutes');
    await tombstone('erased-long-ago', '20 minutes');
    await backend.pool.query(`INSERT INTO subject_keys (subject_id, wrapped_key, wrapped_with, created_at) VALUES ('alive', '\\x00', 'fingerprint', now())`);
    const pool = createPool(backend.database.url, 1);
    const errors: unknown[] = [];
    const erased = await ErasedSubjects.start({ pool, tokenLifetimeMs, pollIntervalMs: 50, onError: (error) => errors.push(error) });
    try {
      expect([erased.has('erased-lately'), erased.has('erased-long-ago'), erased.has('alive')]).toEqual([true, false, false]);

      await tombstone('erased-now', '0 seconds');
      await eventually(async () => erased.has('erased-now'), 2_000, 'the new tombstone to be read');
      erased.add('erased-here');
      expect(erased.has('erased-here')).toBe(true);

      await pool.end();
      await new Promise((resolve) => setTimeout(resolve, 200));
      expect(errors).toEqual([]);
    } finally {
      await erased.close();
    }
  });

  it('hears of an erasure retried long after a first attempt that destroyed the key and died: the retry stamps the tombstone anew', async () => {
    // The first attempt's tombstone, older than a token lifetime: on its own, no process would look at it.
    await tombstone('erased-again', '30 minutes');
    const watching = await ErasedSubjects.start({ pool: backend.pool, tokenLifetimeMs, pollIntervalMs: 50 });
    try {
      expect(watching.has('erased-again')).toBe(false);

      await new PgSubjectKeyStore(backend.pool, testMasterKey).destroy('erased-again', new Date());

      await eventually(async () => watching.has('erased-again'), 2_000, 'a polling process to hear of the retried erasure');
      const starting = await ErasedSubjects.start({ pool: backend.pool, tokenLifetimeMs });
      expect(starting.has('erased-again')).toBe(true);
      await starting.close();
    } finally {
      await watching.close();
    }
  });
});
