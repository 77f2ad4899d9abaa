import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { submitReview } from '../../src/application/reviews/review.use-cases.js';
import { completeBooking, requestBooking } from '../../src/application/bookings/booking.use-cases.js';
import { createListing } from '../../src/application/listings/listing.use-cases.js';
import { setSchedule } from '../../src/application/schedules/schedule.use-cases.js';
import { problemContentType, problemTypeBase } from '../../src/infrastructure/http/problem.js';
import { as, consumer, doctor, everyMorning, listingInput, owner } from '../support/command-side.js';
import { payBooking, registerUser } from '../projections/support/scenarios.js';
import { startQueryApi, type QueryApiFixture } from './support/query-api.fixture.js';

/**
 * API.md: "Missing/invalid token: 401". The public reads need no token, but one that is sent
 * must be valid, as on the command API's signup.
 */
describe('query API: public reads with a token that is not valid', () => {
  let q: QueryApiFixture;
  let publicRoutes: string[];
  let invalid: Record<string, string>;

  beforeAll(async () => {
    q = await startQueryApi();
    await registerUser(q.side, doctor, 'Dr Ada');
    await setSchedule(q.side, doctor.id, everyMorning, as(doctor));
    const listingId = (await createListing(q.side, listingInput, as(owner))).id;
    const bookingId = (await requestBooking(q.side, { listingId, startDate: '2030-01-12', endDate: '2030-01-13' }, as(consumer))).id;
    await payBooking(q.side, bookingId);
    q.clock.advance(5 * 86_400_000);
    await completeBooking(q.side, bookingId, as(owner));
    await submitReview(q.side, listingId, { bookingId, rating: 5, comment: 'Lovely' }, as(consumer));
    await q.settle();
    publicRoutes = [
      '/v1/listings',
      '/v1/listings?from=2030-03-01&to=2030-03-02',
      `/v1/listings/${listingId}`,
      `/v1/listings/${listingId}/availability?from=2030-03-01&to=2030-03-05`,
      `/v1/listings/${listingId}/reviews`,
      '/v1/doctors',
      `/v1/doctors/${doctor.id}/slots?from=2030-03-04T00:00:00Z&to=2030-03-05T00:00:00Z`,
    ];
    const valid = q.auth(consumer).authorization;
    invalid = {
      'not a JWT': 'Bearer not-a-jwt',
      'a JWT with a forged signature': `${valid.slice(0, -4)}${valid.endsWith('AAAA') ? 'BBBB' : 'AAAA'}`,
      'another scheme': 'Basic Y29uc3VtZXI6c2VjcmV0',
    };
  });
  afterAll(() => q.close());

  it('answer 401 problem+json with WWW-Authenticate, even where an anonymous answer was just kept in the query cache', async () => {
    for (const url of publicRoutes) {
      // Twice without a token: the second one may come from the query cache.
      for (let i = 0; i < 2; i += 1) expect((await q.app.inject({ url })).statusCode, url).toBe(200);
      for (const [what, authorization] of Object.entries(invalid)) {
        const response = await q.app.inject({ url, headers: { authorization } });
        expect(response.statusCode, `${url} with ${what}`).toBe(401);
        expect(response.headers['content-type'], url).toContain(problemContentType);
        expect(response.headers['www-authenticate'], url).toMatch(/^Bearer /);
        expect(response.json(), url).toMatchObject({ type: `${problemTypeBase}unauthorized`, status: 401 });
      }
    }
  });

  it('answer 200 without a token and with a valid one, alike', async () => {
    for (const url of publicRoutes) {
      const anonymous = await q.app.inject({ url });
      const signedIn = await q.app.inject({ url, headers: q.auth(consumer) });
      expect(anonymous.statusCode, url).toBe(200);
      expect(signedIn.statusCode, url).toBe(200);
      expect(signedIn.json(), url).toEqual(anonymous.json());
    }
  });

  it('health, docs and metrics stay open, whatever token comes with them', async () => {
    for (const url of ['/health/live', '/health/ready', '/docs/json', '/metrics']) {
      expect((await q.app.inject({ url, headers: { authorization: 'Bearer not-a-jwt' } })).statusCode, url).toBe(200);
    }
  });
});
