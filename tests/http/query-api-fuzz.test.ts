import fc from 'fast-check';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { requestBooking } from '../../src/application/bookings/booking.use-cases.js';
import { createListing } from '../../src/application/listings/listing.use-cases.js';
import { parsePosition } from '../../src/application/ports/position.js';
import { as, consumer, listingInput, otherConsumer, owner, patient } from '../support/command-side.js';
import { startQueryApi, type QueryApiFixture } from './support/query-api.fixture.js';

const keys = ['limit', 'cursor', 'category', 'location', 'minPrice', 'maxPrice', 'currency', 'from', 'to', 'q', 'status'];

/** Values people and scanners send: numbers, dates, instants, control characters, lone surrogates, junk. */
const value = fc.oneof(
  fc.string({ unit: 'binary', maxLength: 30 }),
  fc.integer({ min: -1_000, max: 1_000 }).map(String),
  fc.constantFrom('', '0', '100', '101', '1e3', 'NaN', '9007199254740993', '2030-02-30', '2030-02-01', '2030-02-04', '2030-01-14T00:00:00Z', '2030-02-14T00:00:00Z', 'EUR', 'cancelled', '\u0000', 'a\u0000b', '%', "' or 1=1 --", '!&|:*()'),
);
const query = fc.array(fc.tuple(fc.oneof(fc.constantFrom(...keys), fc.string({ maxLength: 8 })), value), { maxLength: 6 });

const paths = (ids: { listing: string; booking: string }) => [
  '/v1/listings',
  `/v1/listings/${ids.listing}`,
  `/v1/listings/${ids.listing}/availability`,
  `/v1/listings/${ids.listing}/reviews`,
  '/v1/bookings/me',
  '/v1/bookings/owner',
  `/v1/bookings/${ids.booking}`,
  '/v1/doctors',
  '/v1/doctors/doctor-1/slots',
  '/v1/appointments/me',
  '/v1/users/me',
];

describe('query API fuzz', () => {
  let q: QueryApiFixture;
  let ids: { listing: string; booking: string };
  const headers = () => fc.constantFrom({}, q.auth(consumer), q.auth(owner), q.auth(patient));

  beforeAll(async () => {
    q = await startQueryApi({ consistencyTimeoutMs: 50 });
    const listing = (await createListing(q.side, listingInput, as(owner))).id;
    const booking = (await requestBooking(q.side, { listingId: listing, startDate: '2030-02-01', endDate: '2030-02-03' }, as(consumer))).id;
    await requestBooking(q.side, { listingId: listing, startDate: '2030-03-01', endDate: '2030-03-03' }, as(consumer));
    await q.settle();
    ids = { listing, booking };
  });
  afterAll(() => q.close());

  it('arbitrary query strings and path ids answer 2xx or 4xx, never 5xx', async () => {
    await fc.assert(
      fc.asyncProperty(fc.constantFrom(...paths(ids)), query, headers(), fc.string({ unit: 'binary', maxLength: 12 }), async (path, pairs, auth, suffix) => {
        const search = new URLSearchParams(pairs).toString();
        for (const url of [`${path}?${search}`, `${path}${encodeURIComponent(suffix)}?${search}`]) {
          const response = await q.app.inject({ url, headers: auth });
          expect(response.statusCode, `${url} → ${response.body}`).toBeLessThan(500);
          if (response.statusCode >= 400) expect(response.headers['content-type']).toContain('application/problem+json');
        }
      }),
      { numRuns: 300 },
    );
  });

  it('arbitrary Consistency-Position headers answer 400 unless they are positions', async () => {
    await fc.assert(
      fc.asyncProperty(fc.oneof(fc.string({ maxLength: 30 }), fc.tuple(fc.nat(), fc.nat()).map(([a, b]) => `${a}.${b}`)), async (header) => {
        const response = await q.app.inject({ url: '/v1/listings', headers: { 'consistency-position': header } });
        if (parsePosition(header.trim()) === undefined) expect(response.statusCode, header).toBe(400);
        else expect([200, 503], header).toContain(response.statusCode);
      }),
      { numRuns: 100 },
    );
  });

  it('no cursor, forged or garbled, shows one consumer another\'s bookings', async () => {
    const page = await q.app.inject({ url: '/v1/bookings/me?limit=1', headers: q.auth(consumer) });
    const real = page.json<{ nextCursor: string }>().nextCursor;
    const [, mac = ''] = real.split('.');
    const forged = fc.oneof(
      fc.string({ maxLength: 80 }),
      fc.record({ requestedAt: fc.date({ noInvalidDate: true }).map((d) => d.toISOString()), bookingId: fc.string() }).map((key) => `${Buffer.from(JSON.stringify(key)).toString('base64url')}.${mac}`),
      fc.constant(real),
    );
    await fc.assert(
      fc.asyncProperty(forged, async (cursor) => {
        const response = await q.app.inject({ url: `/v1/bookings/me?cursor=${encodeURIComponent(cursor)}`, headers: q.auth(otherConsumer) });
        expect(response.statusCode === 400 || response.statusCode === 200, response.body).toBe(true);
        if (response.statusCode === 200) expect(response.json()).toEqual({ items: [], nextCursor: null });
      }),
      { numRuns: 150 },
    );
  });
});
