import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { createListing } from '../../src/application/listings/listing.use-cases.js';
import type { Actor } from '../../src/application/metadata.js';
import { sleep } from '../../src/application/sleep.js';
import { as, listingInput, owner } from '../support/command-side.js';
import { startQueryApi, type QueryApiFixture } from '../http/support/query-api.fixture.js';

// PostgreSQL's global order shows an event only once every older transaction has ended, so an
// export read while one is open stopped short of events already committed, and said nothing.

const auditor: Actor = { id: 'auditor-1', roles: ['AUDITOR'] };
const waitMs = 1500;

describe('the audit export and a transaction still open', () => {
  let q: QueryApiFixture;

  beforeAll(async () => {
    q = await startQueryApi({ consistencyTimeoutMs: waitMs });
  });
  afterAll(() => q.close());

  /** A transaction holding an id, left open: what commits after it waits behind it in the global order. */
  async function openTransaction() {
    const client = await q.harness.pool.connect();
    await client.query('BEGIN');
    await client.query('SELECT pg_current_xact_id()');
    return {
      async commit() {
        await client.query('COMMIT');
        client.release();
      },
    };
  }

  const exportOf = (streamId: string) => q.app.inject({ url: `/v1/audit/export?streamPrefix=${streamId}`, headers: q.auth(auditor) });
  const streamsIn = (body: string) =>
    body
      .split('\n')
      .filter((line) => line.length > 0)
      .map((line) => (JSON.parse(line) as { streamId: string }).streamId);

  it('given a listing created behind an open transaction, when exported, then the export waits for it to end and includes the listing', async () => {
    const held = await openTransaction();
    const stream = `listing-${(await createListing(q.side, listingInput, as(owner))).id}`;
    const exporting = exportOf(stream);
    await sleep(300);
    await held.commit();
    const response = await exporting;
    expect(response.statusCode).toBe(200);
    expect(streamsIn(response.body)).toEqual([stream]);
  });

  it('given the transaction stays open past the wait, when exported, then 503 not-caught-up with Retry-After, and the export after it ends includes the listing', async () => {
    const held = await openTransaction();
    let stream = '';
    try {
      stream = `listing-${(await createListing(q.side, listingInput, as(owner))).id}`;
      const response = await exportOf(stream);
      expect(response.statusCode).toBe(503);
      expect(response.headers['retry-after']).toBe('1');
      expect(response.json<{ type: string }>().type).toMatch(/\/not-caught-up$/);
    } finally {
      await held.commit();
    }
    const after = await exportOf(stream);
    expect(after.statusCode).toBe(200);
    expect(streamsIn(after.body)).toEqual([stream]);
  });
});
