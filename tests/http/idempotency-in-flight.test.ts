import { randomUUID } from 'node:crypto';
import pg from 'pg';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import type { Actor } from '../../src/domain/shared/actor.js';
import { listingInput } from '../support/command-side.js';
import { eventually } from '../support/eventually.js';
import { sleep } from '../../src/application/sleep.js';
import { postJson, startApi, startBackend, type TestApi, type TestBackend } from './support/command-api.fixture.js';

const owner: Actor = { id: randomUUID(), roles: ['OWNER'] };

/**
 * API.md, "Idempotency", on a real command route. The first request is held in flight, not by
 * luck of timing, but by a lock on the event log that its append must wait for: every duplicate
 * sent meanwhile meets a claim that is certainly still open.
 */
describe('Idempotency-Key while the first request is in flight', () => {
  let backend: TestBackend;
  let api: TestApi;
  let locker: pg.Client;

  const bearer = () => ({ authorization: `Bearer ${api.app.issueAccessToken(owner).accessToken}` });
  const createListing = (headers: Record<string, string>) => postJson(`${api.url}/v1/listings`, listingInput, { ...bearer(), ...headers });
  async function eventCount(): Promise<number> {
    const { rows } = await backend.pool.query<{ count: string }>('SELECT count(*) FROM events');
    return Number(rows[0]?.count);
  }
  async function claimOf(key: string): Promise<string | undefined> {
    const { rows } = await backend.pool.query<{ status: string }>('SELECT status FROM idempotency_keys WHERE key = $1', [key]);
    return rows[0]?.status;
  }

  beforeAll(async () => {
    backend = await startBackend();
    api = await startApi(backend);
    locker = new pg.Client(backend.database.url);
    await locker.connect();
  });
  afterAll(async () => {
    await locker.end();
    await api.close();
    await backend.close();
  });

  it('answers 409 to every duplicate, appends once, and replays the first response afterwards', async () => {
    const key = randomUUID();
    const before = await eventCount();

    // Reads of the log go on; appends wait until the lock is let go.
    await locker.query('BEGIN');
    await locker.query('LOCK TABLE events IN EXCLUSIVE MODE');
    const first = createListing({ 'idempotency-key': key });
    try {
      expect(await eventually(async () => (await claimOf(key)) === 'in_flight', 10_000, 'the first request to claim its key')).toBe(true);

      const duplicates = await Promise.all(Array.from({ length: 5 }, () => createListing({ 'idempotency-key': key })));
      for (const duplicate of duplicates) {
        expect(duplicate.status).toBe(409);
        expect(duplicate.headers.get('content-type')).toContain('application/problem+json');
        expect(duplicate.body).toMatchObject({ status: 409, type: 'https://bookable.example/problems/idempotency-key-in-flight' });
        expect(duplicate.headers.get('retry-after')).toBe('1');
        expect(duplicate.headers.get('idempotent-replayed')).toBeNull();
      }
      expect(await claimOf(key)).toBe('in_flight');
      expect(await eventCount()).toBe(before);
    } finally {
      await locker.query('COMMIT');
    }

    const original = await first;
    expect(original.status).toBe(201);
    expect(original.headers.get('idempotent-replayed')).toBeNull();
    expect(original.body).toMatchObject({ streamId: `listing-${String(original.body.id)}`, version: 0 });
    expect(await eventCount()).toBe(before + 1);
    expect(await claimOf(key)).toBe('completed');

    const retry = await createListing({ 'idempotency-key': key });
    expect(retry.status).toBe(201);
    expect(retry.headers.get('idempotent-replayed')).toBe('true');
    expect(retry.text).toBe(original.text);
    expect(await eventCount()).toBe(before + 1);
  });

  it('keeps a request that outlives its lease in flight: it renews the lease, so no retry takes its key over', async () => {
    const short = await startApi(backend, { idempotencyLeaseMs: 300 });
    const create = (key: string) => postJson(`${short.url}/v1/listings`, listingInput, { ...bearer(), 'idempotency-key': key });
    const key = randomUUID();
    await locker.query('BEGIN');
    await locker.query('LOCK TABLE events IN EXCLUSIVE MODE');
    const first = create(key);
    let duplicate: Awaited<ReturnType<typeof create>> | undefined;
    try {
      expect(await eventually(async () => (await claimOf(key)) === 'in_flight', 10_000, 'the first request to claim its key')).toBe(true);
      // Past the lease on the database's clock, which leases run on; the renewals, every 100 ms, keep it.
      await sleep(400);
      duplicate = await create(key);
    } finally {
      await locker.query('COMMIT');
    }
    try {
      expect(duplicate.status).toBe(409);
      expect((await first).status).toBe(201);
      expect(await claimOf(key)).toBe('completed');
    } finally {
      await short.close();
    }
  });

  it('refuses an empty Idempotency-Key with 400 naming the header, and appends nothing', async () => {
    const before = await eventCount();
    const response = await createListing({ 'idempotency-key': '' });
    expect(response.status).toBe(400);
    expect(response.headers.get('content-type')).toContain('application/problem+json');
    expect(response.body.errors).toEqual([expect.objectContaining({ path: 'headers.idempotency-key' })]);
    expect(await eventCount()).toBe(before);
  });
});
