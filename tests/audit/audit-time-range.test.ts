import { randomUUID } from 'node:crypto';
import { afterAll, beforeAll, describe, expect, it, vi } from 'vitest';
import { createListing } from '../../src/application/listings/listing.use-cases.js';
import type { Actor } from '../../src/application/metadata.js';
import { as, doctor, listingInput } from '../support/command-side.js';
import { registerUser } from '../projections/support/scenarios.js';
import { startQueryApi, type QueryApiFixture } from '../http/support/query-api.fixture.js';
import type { IdentityTables } from '../../src/infrastructure/identity/identity.tables.js';
import { PgSecurityEventLog } from '../../src/infrastructure/identity/pg-security-event-log.js';
import { createKysely } from '../../src/infrastructure/postgres/database.js';

const auditor: Actor = { id: 'auditor-1', roles: ['AUDITOR'] };

type AuditEvent = { streamId: string; revision: number; occurredAt: string; data: Record<string, unknown> };
type Page<Item> = { items: Item[] };

/** `instant` (ISO, whole milliseconds) and a tenth of a millisecond, as a client may write it. */
const justAfter = (instant: string) => `${instant.slice(0, -1)}1Z`;

describe('audit time ranges', () => {
  let q: QueryApiFixture;
  let listingStream: string;
  // The instant of the listing's only event, to the millisecond.
  let createdAt: string;
  const lister: Actor = { id: `owner-${randomUUID()}`, roles: ['OWNER'] };

  beforeAll(async () => {
    q = await startQueryApi();
    await registerUser(q.side, doctor, 'Dr Ada');
    q.clock.advance(60_000);
    createdAt = q.clock.now().toISOString();
    listingStream = `listing-${(await createListing(q.side, listingInput, as(lister))).id}`;
    await q.settle();
  });
  afterAll(() => q.close());

  const get = (url: string) => q.app.inject({ url, headers: { ...q.auth(auditor), ...q.consistency() } });
  const exported = async (query: string) => {
    const response = await get(`/v1/audit/export?${query}`);
    expect(response.statusCode).toBe(200);
    return response.body.split('\n').filter((line) => line.length > 0).map((line) => JSON.parse(line) as AuditEvent);
  };
  const byActor = async (query: string) => {
    const response = await get(`/v1/audit/actors/${lister.id}/events?${query}`);
    expect(response.statusCode).toBe(200);
    return response.json<Page<AuditEvent>>().items;
  };

  it('exports an empty window without revealing an event or looking up a key', async () => {
    const revealed = vi.spyOn(q.harness.vault, 'revealCached');
    const looked = vi.spyOn(q.harness.vault, 'reveal');
    try {
      expect(await exported('from=2031-01-01T00:00:00Z&to=2031-01-02T00:00:00Z')).toEqual([]);
      expect(revealed).not.toHaveBeenCalled();
      expect(looked).not.toHaveBeenCalled();

      // The window that holds the registration reveals it, as ever.
      const all = await exported('from=2000-01-01T00:00:00Z');
      expect(all.some((event) => JSON.stringify(event.data).includes('Dr Ada'))).toBe(true);
      expect(revealed).toHaveBeenCalled();
    } finally {
      revealed.mockRestore();
      looked.mockRestore();
    }
  });

  it('takes an event at 10:00:00.000 in before an exclusive `to` of 10:00:00.0001 (the export and an actor’s events)', async () => {
    const [event] = await exported(`streamPrefix=${listingStream}`);
    expect(event?.occurredAt).toBe(createdAt);

    expect(await exported(`streamPrefix=${listingStream}&to=${justAfter(createdAt)}`)).toHaveLength(1);
    expect(await byActor(`to=${justAfter(createdAt)}`)).toHaveLength(1);
    // At the millisecond itself, `to` leaves it out, as ever.
    expect(await exported(`streamPrefix=${listingStream}&to=${createdAt}`)).toHaveLength(0);
    expect(await byActor(`to=${createdAt}`)).toHaveLength(0);
  });

  it('leaves an event at 10:00:00.000 out of an inclusive `from` of 10:00:00.0001 (the export and an actor’s events)', async () => {
    expect(await exported(`streamPrefix=${listingStream}&from=${justAfter(createdAt)}`)).toHaveLength(0);
    expect(await byActor(`from=${justAfter(createdAt)}`)).toHaveLength(0);
    expect(await exported(`streamPrefix=${listingStream}&from=${createdAt}`)).toHaveLength(1);
    expect(await byActor(`from=${createdAt}`)).toHaveLength(1);
    // Trailing zeros name the millisecond itself.
    expect(await exported(`streamPrefix=${listingStream}&from=${createdAt.slice(0, -1)}000Z`)).toHaveLength(1);
  });

  it('reads the access log by the same bounds', async () => {
    // The clock stands still: every read is recorded at the instant of the listing's event, and
    // each of these reads adds one more.
    await get(`/v1/audit/streams/${listingStream}/events`);
    const idsAtCreation = async (query: string) =>
      (await get(`/v1/audit/access-log?limit=100&actorId=${auditor.id}&${query}`))
        .json<Page<{ id: string; at: string }>>()
        .items.filter((entry) => entry.at === createdAt)
        .map((entry) => entry.id);
    const recorded = await idsAtCreation(`from=${createdAt}`);
    expect(recorded.length).toBeGreaterThan(0);
    expect(await idsAtCreation(`from=${justAfter(createdAt)}`)).toEqual([]);
    expect(await idsAtCreation(`to=${justAfter(createdAt)}`)).toEqual(expect.arrayContaining(recorded));
  });

  it('reads the security events by the same bounds', async () => {
    const userId = randomUUID();
    await new PgSecurityEventLog(createKysely<IdentityTables>(q.harness.pool)).record({ type: 'login_failed', userId, occurredAt: new Date(createdAt), requestId: `req-${userId}` });
    const securityEvents = async (query: string) => (await get(`/v1/audit/security-events?userId=${userId}&${query}`)).json<Page<{ occurredAt: string }>>().items;
    expect(await securityEvents(`to=${justAfter(createdAt)}`)).toHaveLength(1);
    expect(await securityEvents(`to=${createdAt}`)).toHaveLength(0);
    expect(await securityEvents(`from=${justAfter(createdAt)}`)).toHaveLength(0);
    expect(await securityEvents(`from=${createdAt}`)).toHaveLength(1);
  });

  it('answers a range whose `from` is after its `to` with 400 naming `to`, on every route that takes one; an empty range [t, t) is no mistake', async () => {
    const inverted = 'from=2030-01-02T00:00:00Z&to=2030-01-01T00:00:00Z';
    for (const route of ['/v1/audit/export', `/v1/audit/actors/${lister.id}/events`, '/v1/audit/access-log', '/v1/audit/security-events']) {
      const response = await get(`${route}?${inverted}`);
      expect(response.statusCode, route).toBe(400);
      expect(response.headers['content-type'], route).toContain('application/problem+json');
      expect(response.json<{ errors: { path: string }[] }>().errors.map((error) => error.path), route).toEqual(['querystring.to']);
      expect((await get(`${route}?from=${createdAt}&to=${createdAt}`)).statusCode, route).toBe(200);
    }
  });

  it('keeps the state at an inclusive `at` of 10:00:00.0001 as of the event at 10:00:00.000', async () => {
    const response = await get(`/v1/audit/streams/${listingStream}/state?at=${justAfter(createdAt)}`);
    expect(response.json()).toMatchObject({ version: 0 });
  });
});
