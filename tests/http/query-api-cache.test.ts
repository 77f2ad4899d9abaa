import { Registry } from 'prom-client';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { requestBooking } from '../../src/application/bookings/booking.use-cases.js';
import { createListing, updateListing } from '../../src/application/listings/listing.use-cases.js';
import { formatPosition } from '../../src/application/ports/position.js';
import { as, consumer, listingInput, otherConsumer, owner } from '../support/command-side.js';
import { eventually } from '../projections/support/runtime-harness.js';
import { startQueryApi, type QueryApiFixture } from './support/query-api.fixture.js';
import { sleep } from '../../src/application/sleep.js';

// Kept answers live ten minutes here: only a read model's commit can end them sooner.
const queryCache = { maxBytes: 1024 * 1024, maxAgeMs: 600_000 };

describe('query API cache', () => {
  let q: QueryApiFixture;
  const registry = new Registry();

  beforeAll(async () => {
    q = await startQueryApi({ queryCache, metricsRegistry: registry });
  });
  afterAll(() => q.close());

  async function hits(): Promise<number> {
    const metric = await registry.getSingleMetric('query_cache_lookups_total')?.get();
    return metric?.values.find((value) => value.labels.outcome === 'hit')?.value ?? 0;
  }

  const title = async (listingId: string, headers: Record<string, string> = {}) => {
    const response = await q.app.inject({ url: `/v1/listings/${listingId}`, headers });
    expect(response.statusCode).toBe(200);
    return response.json<{ title: string }>().title;
  };

  it('answers a repeated read from memory, and reads again once its read model has committed', async () => {
    const { id } = await createListing(q.side, listingInput, as(owner));
    await q.settle();
    const first = await q.app.inject({ url: `/v1/listings/${id}` });
    const before = await hits();
    const second = await q.app.inject({ url: `/v1/listings/${id}` });
    expect(await hits()).toBe(before + 1);
    expect(second.body).toBe(first.body);
    expect(second.headers['content-type']).toBe(first.headers['content-type']);

    await updateListing(q.side, id, { title: 'Loft, renovated' }, as(owner));
    await q.settle();
    expect(await eventually(async () => (await title(id)) === 'Loft, renovated' || undefined, 5000, 'the new title')).toBe(true);
  });

  it('never answers a read with Consistency-Position from memory, and what it read replaces what was kept', async () => {
    const { id } = await createListing(q.side, listingInput, as(owner));
    await q.settle();
    expect(await title(id)).toBe(listingInput.title);
    const { position } = await updateListing(q.side, id, { title: 'Barn' }, as(owner));
    expect(await title(id, { 'consistency-position': formatPosition(position) })).toBe('Barn');
    expect(await title(id)).toBe('Barn');
  });

  it("keeps each caller's answers apart", async () => {
    const { id: listingId } = await createListing(q.side, listingInput, as(owner));
    const mine = await requestBooking(q.side, { listingId, startDate: '2030-03-01', endDate: '2030-03-02' }, as(consumer));
    const theirs = await requestBooking(q.side, { listingId, startDate: '2030-03-02', endDate: '2030-03-03' }, as(otherConsumer));
    await q.settle();
    const ids = async (actor: typeof consumer) =>
      (await q.app.inject({ url: '/v1/bookings/me', headers: q.auth(actor) })).json<{ items: { id: string }[] }>().items.map((b) => b.id);
    expect(await ids(consumer)).toContain(mine.id);
    expect(await ids(consumer)).toContain(mine.id);
    expect(await ids(otherConsumer)).toEqual([theirs.id]);
    expect((await q.app.inject({ url: '/v1/bookings/me' })).statusCode).toBe(401);
  });

  it('keeps one answer of a public route for everyone, signed in or not', async () => {
    const { id } = await createListing(q.side, listingInput, as(owner));
    await q.settle();
    const anonymous = await q.app.inject({ url: `/v1/listings/${id}` });
    const before = await hits();
    const signedIn = await q.app.inject({ url: `/v1/listings/${id}`, headers: q.auth(consumer) });
    const another = await q.app.inject({ url: `/v1/listings/${id}`, headers: q.auth(otherConsumer) });
    expect(await hits()).toBe(before + 2);
    expect([signedIn.body, another.body]).toEqual([anonymous.body, anonymous.body]);
  });

  it('keeps no failure', async () => {
    const unknown = await q.app.inject({ url: '/v1/listings/unknown' });
    expect(unknown.statusCode).toBe(404);
    const before = await hits();
    expect((await q.app.inject({ url: '/v1/listings/unknown' })).statusCode).toBe(404);
    expect(await hits()).toBe(before);
  });

  it('under updates raced by readers: every read-your-writes read sees its write, the rest see written states, and all end on the last', async () => {
    const { id } = await createListing(q.side, listingInput, as(owner));
    await q.settle();
    const updates = 20;
    const written = new Set([listingInput.title, ...Array.from({ length: updates }, (_, i) => `Loft v${i}`)]);
    let writing = true;
    const plainReaders = Array.from({ length: 4 }, async () => {
      const seen: string[] = [];
      while (writing) {
        seen.push(await title(id));
        // Paced, or their cache hits would starve the projector sharing this process.
        await sleep(2);
      }
      return seen;
    });
    const consistentReads: Promise<string>[] = [];
    try {
      for (let i = 0; i < updates; i++) {
        const { position } = await updateListing(q.side, id, { title: `Loft v${i}` }, as(owner));
        consistentReads.push(title(id, { 'consistency-position': formatPosition(position) }));
      }
      const seenAfter = await Promise.all(consistentReads);
      for (const [i, seen] of seenAfter.entries()) expect(Number(seen.replace('Loft v', '')), seen).toBeGreaterThanOrEqual(i);
    } finally {
      writing = false;
    }
    for (const seen of await Promise.all(plainReaders)) for (const t of seen) expect(written).toContain(t);
    const last = `Loft v${updates - 1}`;
    expect(await eventually(async () => (await title(id)) === last || undefined, 5000, 'the last title')).toBe(true);
  });

  describe('with the announcements lost on a connection that stays up', () => {
    let deaf: QueryApiFixture;
    beforeAll(async () => {
      deaf = await startQueryApi({ queryCache, notifications: (heard) => ({ subscribe: () => () => undefined, get epoch() { return heard.epoch; } }) });
    });
    afterAll(() => deaf.close());

    it('still answers a read with Consistency-Position from the read models (its wait polls the checkpoints)', async () => {
      const { id } = await createListing(deaf.side, listingInput, as(owner));
      await deaf.settle();
      const read = (headers: Record<string, string> = {}) => deaf.app.inject({ url: `/v1/listings/${id}`, headers }).then((r) => r.json<{ title: string }>().title);
      expect(await read()).toBe(listingInput.title);
      const { position } = await updateListing(deaf.side, id, { title: 'Barn' }, as(owner));
      expect(await read({ 'consistency-position': formatPosition(position) })).toBe('Barn');
    });
  });
});
