import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { requestBooking } from '../../src/application/bookings/booking.use-cases.js';
import { createListing, setListingActive, updateListing } from '../../src/application/listings/listing.use-cases.js';
import type { Actor } from '../../src/application/metadata.js';
import { formatPosition } from '../../src/application/ports/position.js';
import { setSchedule } from '../../src/application/schedules/schedule.use-cases.js';
import { admin, as, consumer, doctor, everyMorning, listingInput, otherConsumer, owner, patient } from '../support/command-side.js';
import { payBooking, registerUser } from '../projections/support/scenarios.js';
import { startQueryApi, type QueryApiFixture } from './support/query-api.fixture.js';

const otherOwner = { id: 'owner-2', roles: ['OWNER' as const] };
/** Books in tests whose bookings the authorisation tests do not count. */
const guest = { id: 'consumer-3', roles: ['CONSUMER' as const] };

describe('query API', () => {
  let q: QueryApiFixture;
  let listingId: string;
  let bookingId: string;

  beforeAll(async () => {
    q = await startQueryApi({ consistencyTimeoutMs: 1500 });
    listingId = (await createListing(q.side, listingInput, as(owner))).id;
    bookingId = (await requestBooking(q.side, { listingId, startDate: '2030-02-01', endDate: '2030-02-04' }, as(consumer))).id;
  });
  afterAll(() => q.close());

  describe('read-your-writes', () => {
    it('answers a command\'s new state on the first try with Consistency-Position', async () => {
      const { position } = await updateListing(q.side, listingId, { title: 'Loft, renovated' }, as(owner));
      const response = await q.app.inject({ url: `/v1/listings/${listingId}`, headers: { 'consistency-position': formatPosition(position) } });
      expect(response.statusCode).toBe(200);
      expect(response.json()).toMatchObject({ id: listingId, title: 'Loft, renovated' });
    });

    it('waits for every read model behind the endpoint (a booking paid, the calendar booked)', async () => {
      await payBooking(q.side, bookingId);
      const booking = await q.app.inject({ url: `/v1/bookings/${bookingId}`, headers: { ...q.auth(consumer), ...q.consistency() } });
      expect(booking.json()).toMatchObject({ status: 'confirmed', paidAmount: 36_000 });
      const days = await q.app.inject({ url: `/v1/listings/${listingId}/availability?from=2030-02-01&to=2030-02-02`, headers: q.consistency() });
      expect(days.json()).toMatchObject({ days: [{ date: '2030-02-01', status: 'booked' }] });
    });

    it('answers 503 with Retry-After when the read models do not get there in time', async () => {
      const response = await q.app.inject({ url: '/v1/listings', headers: { 'consistency-position': '99999999999.99999999999' } });
      expect(response.statusCode).toBe(503);
      expect(response.headers['retry-after']).toBe('1');
      expect(response.headers['content-type']).toContain('application/problem+json');
    });

    it.each(['abc', '1', '1.2.3', '-1.0', '1.99999999999999999999999'])('answers 400 to a malformed Consistency-Position %s', async (value) => {
      const response = await q.app.inject({ url: '/v1/listings', headers: { 'consistency-position': value } });
      expect(response.statusCode).toBe(400);
    });
  });

  describe('listings', () => {
    it("says whether a listing's days can be booked at all: a deactivated listing's cannot, free or not", async () => {
      const { id } = await createListing(q.side, { ...listingInput, title: 'Shed' }, as(owner));
      const url = `/v1/listings/${id}/availability?from=2030-05-01&to=2030-05-02`;
      expect((await q.app.inject({ url, headers: q.consistency() })).json()).toMatchObject({ bookable: true, days: [{ date: '2030-05-01', status: 'free' }] });

      await setListingActive(q.side, id, false, as(owner));

      expect((await q.app.inject({ url, headers: q.consistency() })).json()).toMatchObject({ bookable: false, days: [{ date: '2030-05-01', status: 'free' }] });
    });

    it('lists with filters and pages with an opaque cursor', async () => {
      await createListing(q.side, { ...listingInput, title: 'Barn', category: 'barn', pricePerDay: 5_000 }, as(otherOwner));
      const page = await q.app.inject({ url: '/v1/listings?limit=1', headers: q.consistency() });
      expect(page.statusCode).toBe(200);
      const body = page.json<{ items: { title: string }[]; nextCursor: string | null }>();
      expect(body.items.map((l) => l.title)).toEqual(['Barn']);
      expect(body.nextCursor).toEqual(expect.any(String));
      const next = await q.app.inject({ url: `/v1/listings?limit=1&cursor=${body.nextCursor ?? ''}` });
      expect(next.json()).toMatchObject({ items: [{ id: listingId }], nextCursor: null });
      const cheap = await q.app.inject({ url: '/v1/listings?maxPrice=6000&currency=EUR&q=barn' });
      expect(cheap.json<{ items: unknown[] }>().items).toHaveLength(1);
      const busy = await q.app.inject({ url: '/v1/listings?from=2030-02-02&to=2030-02-03' });
      expect(busy.json<{ items: { id: string }[] }>().items.map((l) => l.id)).not.toContain(listingId);
    });

    it('filters by price in one currency only: minor units of JPY, EUR and KWD are not comparable', async () => {
      const priced = [['Tokyo room', 9_000, 'JPY'], ['Paris room', 12_000, 'EUR'], ['Kuwait room', 9_999, 'KWD'], ['Lisbon room', 9_000, 'EUR']] as const;
      for (const [title, pricePerDay, currency] of priced) await createListing(q.side, { ...listingInput, title, category: 'priced', pricePerDay, currency }, as(owner));
      const titles = async (query: string) => {
        const response = await q.app.inject({ url: `/v1/listings?category=priced&${query}`, headers: q.consistency() });
        expect(response.statusCode, query).toBe(200);
        return response.json<{ items: { title: string }[] }>().items.map((l) => l.title);
      };
      expect(await titles('currency=EUR&maxPrice=10000')).toEqual(['Lisbon room']);
      expect(await titles('currency=EUR&minPrice=10000')).toEqual(['Paris room']);
      expect(await titles('currency=KWD&maxPrice=10000')).toEqual(['Kuwait room']);
      expect(await titles('currency=JPY&minPrice=1000&maxPrice=9000')).toEqual(['Tokyo room']);
    });

    it('refuses a price bound without the currency it is counted in, naming currency; and a currency that is not an ISO 4217 code', async () => {
      for (const query of ['maxPrice=10000', 'minPrice=1', 'minPrice=1&maxPrice=2']) {
        const response = await q.app.inject({ url: `/v1/listings?${query}` });
        expect(response.statusCode, query).toBe(400);
        expect(response.headers['content-type'], query).toContain('application/problem+json');
        expect(response.json(), query).toMatchObject({ errors: [{ path: 'querystring.currency' }] });
      }
      for (const currency of ['eur', 'EURO', 'ZZZ']) {
        const response = await q.app.inject({ url: `/v1/listings?currency=${currency}&maxPrice=1` });
        expect(response.statusCode, currency).toBe(400);
        const paths = response.json<{ errors: { path: string }[] }>().errors.map((e) => e.path);
        // Once, though `eur` is neither of the right shape nor a known code.
        expect(paths, currency).toEqual(['querystring.currency']);
      }
    });

    it('refuses a cursor with another filter, a garbled one and a forged one', async () => {
      const page = await q.app.inject({ url: '/v1/listings?limit=1' });
      const cursor = page.json<{ nextCursor: string }>().nextCursor;
      expect((await q.app.inject({ url: `/v1/listings?limit=1&category=venue&cursor=${cursor}` })).statusCode).toBe(400);
      expect((await q.app.inject({ url: `/v1/listings?cursor=${cursor.slice(0, -2)}` })).statusCode).toBe(400);
      const forged = Buffer.from(JSON.stringify({ createdAt: '2099-01-01T00:00:00.000Z', listingId: 'z' })).toString('base64url');
      const response = await q.app.inject({ url: `/v1/listings?cursor=${forged}.${cursor.split('.')[1] ?? ''}` });
      expect(response.statusCode).toBe(400);
      expect(response.json()).toMatchObject({ type: 'https://bookable.example/problems/invalid-cursor' });
    });

    it('validates the query: limit, price range, date range', async () => {
      for (const query of ['limit=0', 'limit=101', 'limit=x', 'limit=', 'maxPrice=', 'minPrice=', 'minPrice=1e3', 'maxPrice=-0', 'minPrice=5&maxPrice=4&currency=EUR', 'from=2030-01-01', 'from=2030-02-02&to=2030-02-01', 'from=2030-01-01&to=2032-01-01']) {
        expect((await q.app.inject({ url: `/v1/listings?${query}` })).statusCode, query).toBe(400);
      }
    });

    it('names the field a rule between two of them refuses, not the whole query', async () => {
      const cases: Array<[string, string]> = [
        ['/v1/listings?minPrice=5&maxPrice=4&currency=EUR', 'querystring.maxPrice'],
        ['/v1/listings?minPrice=5', 'querystring.currency'],
        ['/v1/listings?maxPrice=5', 'querystring.currency'],
        ['/v1/listings?from=2030-01-01', 'querystring.to'],
        ['/v1/listings?to=2030-01-01', 'querystring.from'],
        ['/v1/listings?from=2030-02-02&to=2030-02-01', 'querystring.to'],
        [`/v1/listings/${listingId}/availability?from=2030-02-02&to=2030-02-01`, 'querystring.to'],
        ['/v1/doctors/doctor-1/slots?from=2030-02-02T00:00:00Z&to=2030-02-01T00:00:00Z', 'querystring.to'],
      ];
      for (const [url, path] of cases) {
        const response = await q.app.inject({ url });
        expect(response.statusCode, url).toBe(400);
        expect(response.json(), url).toMatchObject({ errors: [{ path }] });
      }
    });

    it('answers 404 for an unknown listing, its availability and its reviews', async () => {
      for (const path of ['/v1/listings/nope', '/v1/listings/nope/availability?from=2030-01-01&to=2030-01-02', '/v1/listings/nope/reviews']) {
        expect((await q.app.inject({ url: path })).statusCode, path).toBe(404);
      }
    });

    it('lists a listing\'s reviews (none yet)', async () => {
      const response = await q.app.inject({ url: `/v1/listings/${listingId}/reviews` });
      expect(response.json()).toEqual({ items: [], nextCursor: null });
    });

    describe('the booking horizon: every night of a stay at most 365 days after today in the listing\'s time zone', () => {
      // At 2030-01-10T10:00Z it is already 2030-01-11 in Kiritimati (UTC+14): a stay there may
      // take nights up to 2031-01-11, in UTC only up to 2031-01-10.
      const kiritimati = { ...listingInput, title: 'Lagoon hut', category: 'horizon', timeZone: 'Pacific/Kiritimati' };
      const utc = { ...listingInput, title: 'Harbour flat', category: 'horizon', timeZone: 'UTC' };

      it('reports no day past it available, the horizon counted from the listing\'s own today', async () => {
        const { id } = await createListing(q.side, kiritimati, as(owner));

        const response = await q.app.inject({ url: `/v1/listings/${id}/availability?from=2031-01-09&to=2031-01-14`, headers: q.consistency() });

        expect(response.statusCode).toBe(200);
        expect(response.json()).toMatchObject({ from: '2031-01-09', to: '2031-01-14' });
        expect(response.json<{ days: unknown[] }>().days).toEqual([
          { date: '2031-01-09', status: 'free' },
          { date: '2031-01-10', status: 'free' },
          { date: '2031-01-11', status: 'free' },
        ]);
        // The command side agrees on both sides of the edge, for a stay starting before it too.
        await expect(requestBooking(q.side, { listingId: id, startDate: '2031-01-12', endDate: '2031-01-13' }, as(guest))).rejects.toMatchObject({ code: 'dates-too-far-ahead' });
        await expect(requestBooking(q.side, { listingId: id, startDate: '2031-01-09', endDate: '2031-01-13' }, as(guest))).rejects.toMatchObject({ code: 'dates-too-far-ahead' });
        await expect(requestBooking(q.side, { listingId: id, startDate: '2031-01-11', endDate: '2031-01-12' }, as(guest))).resolves.toMatchObject({ id: expect.any(String) });
      });

      it('reports no day at all when the range starts past it', async () => {
        const { id } = await createListing(q.side, utc, as(owner));

        const response = await q.app.inject({ url: `/v1/listings/${id}/availability?from=2031-01-11&to=2031-02-01`, headers: q.consistency() });

        expect(response.statusCode).toBe(200);
        expect(response.json()).toMatchObject({ listingId: id, bookable: true, from: '2031-01-11', to: '2031-02-01', days: [] });
      });

      it('finds no listing for free dates whose last night is past it, each listing judged by its own today', async () => {
        const hut = (await createListing(q.side, kiritimati, as(owner))).id;
        const flat = (await createListing(q.side, utc, as(owner))).id;
        const found = async (from: string, to: string) => {
          const response = await q.app.inject({ url: `/v1/listings?category=horizon&limit=100&from=${from}&to=${to}`, headers: q.consistency() });
          expect(response.statusCode, from).toBe(200);
          return response.json<{ items: { id: string }[] }>().items.map((l) => l.id);
        };

        expect(await found('2031-01-10', '2031-01-11')).toEqual(expect.arrayContaining([hut, flat]));
        const lastDayInKiritimati = await found('2031-01-11', '2031-01-12');
        expect(lastDayInKiritimati).toContain(hut);
        expect(lastDayInKiritimati).not.toContain(flat);
        expect(await found('2031-01-12', '2031-01-13')).toEqual([]);
        expect(await found('2031-06-01', '2031-06-08')).toEqual([]);
        // A stay starting within it whose last night is past it would be refused as well.
        expect(await found('2031-01-01', '2031-01-11')).toEqual(expect.arrayContaining([hut, flat]));
        const endingOnKiritimatisLastNight = await found('2030-12-20', '2031-01-12');
        expect(endingOnKiritimatisLastNight).toContain(hut);
        expect(endingOnKiritimatisLastNight).not.toContain(flat);
        expect(await found('2031-01-05', '2031-01-13')).toEqual([]);
      });
    });

    describe('the near end: no night before today in the listing\'s time zone', () => {
      // At 2030-01-10T10:00Z it is 2030-01-10 in UTC and already 2030-01-11 in Kiritimati.
      const kiritimati = { ...listingInput, title: 'Reef hut', category: 'near-end', timeZone: 'Pacific/Kiritimati' };
      const utc = { ...listingInput, title: 'Quay flat', category: 'near-end', timeZone: 'UTC' };

      it('starts the days at the listing\'s today when the range starts earlier, echoing from as asked', async () => {
        const flat = (await createListing(q.side, utc, as(owner))).id;
        const hut = (await createListing(q.side, kiritimati, as(owner))).id;
        const availability = async (id: string, from: string, to: string) => {
          const response = await q.app.inject({ url: `/v1/listings/${id}/availability?from=${from}&to=${to}`, headers: q.consistency() });
          expect(response.statusCode).toBe(200);
          return response.json<{ from: string; to: string; days: unknown[] }>();
        };

        expect(await availability(flat, '2030-01-09', '2030-01-12')).toEqual({
          listingId: flat,
          bookable: true,
          from: '2030-01-09',
          to: '2030-01-12',
          days: [{ date: '2030-01-10', status: 'free' }, { date: '2030-01-11', status: 'free' }],
        });
        expect((await availability(hut, '2030-01-09', '2030-01-12')).days).toEqual([{ date: '2030-01-11', status: 'free' }]);
        expect((await availability(hut, '2030-01-01', '2030-01-11')).days).toEqual([]);
        // The command side agrees on both sides of the edge.
        await expect(requestBooking(q.side, { listingId: hut, startDate: '2030-01-10', endDate: '2030-01-12' }, as(guest))).rejects.toMatchObject({ code: 'dates-in-past' });
        await expect(requestBooking(q.side, { listingId: flat, startDate: '2030-01-09', endDate: '2030-01-10' }, as(guest))).rejects.toMatchObject({ code: 'dates-in-past' });
        await expect(requestBooking(q.side, { listingId: flat, startDate: '2030-01-10', endDate: '2030-01-11' }, as(guest))).resolves.toMatchObject({ id: expect.any(String) });
      });

      it('finds a listing for free dates only when the stay starts no earlier than its own today', async () => {
        const flat = (await createListing(q.side, { ...utc, category: 'near-end-search' }, as(owner))).id;
        const hut = (await createListing(q.side, { ...kiritimati, category: 'near-end-search' }, as(owner))).id;
        const found = async (from: string, to: string) => {
          const response = await q.app.inject({ url: `/v1/listings?category=near-end-search&limit=100&from=${from}&to=${to}`, headers: q.consistency() });
          expect(response.statusCode, from).toBe(200);
          return response.json<{ items: { id: string }[] }>().items.map((l) => l.id);
        };

        expect(await found('2030-01-09', '2030-01-12')).toEqual([]);
        expect(await found('2030-01-01', '2030-01-02')).toEqual([]);
        const fromUtcToday = await found('2030-01-10', '2030-01-12');
        expect(fromUtcToday).toContain(flat);
        expect(fromUtcToday).not.toContain(hut);
        expect(await found('2030-01-11', '2030-01-12')).toEqual(expect.arrayContaining([hut, flat]));
      });
    });
  });

  describe('bookings: authorisation', () => {
    it('needs a token (401) and the right role (403) for the lists', async () => {
      expect((await q.app.inject({ url: '/v1/bookings/me' })).statusCode).toBe(401);
      expect((await q.app.inject({ url: '/v1/bookings/me', headers: q.auth(patient) })).statusCode).toBe(403);
      expect((await q.app.inject({ url: '/v1/bookings/owner', headers: q.auth(consumer) })).statusCode).toBe(403);
      expect((await q.app.inject({ url: '/v1/bookings/me', headers: { authorization: 'Bearer nonsense' } })).statusCode).toBe(401);
    });

    it('shows each party their own bookings only', async () => {
      const mine = await q.app.inject({ url: '/v1/bookings/me', headers: { ...q.auth(consumer), ...q.consistency() } });
      expect(mine.json<{ items: { id: string }[] }>().items.map((b) => b.id)).toEqual([bookingId]);
      const theirs = await q.app.inject({ url: '/v1/bookings/me', headers: q.auth(otherConsumer) });
      expect(theirs.json()).toEqual({ items: [], nextCursor: null });
      const owners = await q.app.inject({ url: '/v1/bookings/owner?status=confirmed', headers: q.auth(owner) });
      expect(owners.json<{ items: { id: string }[] }>().items.map((b) => b.id)).toEqual([bookingId]);
      const others = await q.app.inject({ url: '/v1/bookings/owner', headers: q.auth(otherOwner) });
      expect(others.json()).toEqual({ items: [], nextCursor: null });
    });

    it('answers someone else\'s booking with 404, and shows it to its consumer, its owner and admins', async () => {
      for (const actor of [otherConsumer, otherOwner, patient]) {
        const response = await q.app.inject({ url: `/v1/bookings/${bookingId}`, headers: q.auth(actor) });
        expect(response.statusCode, actor.id).toBe(404);
      }
      for (const actor of [consumer, owner, admin]) {
        const response = await q.app.inject({ url: `/v1/bookings/${bookingId}`, headers: q.auth(actor) });
        expect(response.statusCode, actor.id).toBe(200);
      }
    });

    it('refuses another consumer\'s cursor', async () => {
      await requestBooking(q.side, { listingId, startDate: '2030-03-01', endDate: '2030-03-02' }, as(consumer));
      const page = await q.app.inject({ url: '/v1/bookings/me?limit=1', headers: { ...q.auth(consumer), ...q.consistency() } });
      const cursor = page.json<{ nextCursor: string }>().nextCursor;
      expect(cursor).toEqual(expect.any(String));
      const stolen = await q.app.inject({ url: `/v1/bookings/me?limit=1&cursor=${cursor}`, headers: q.auth(otherConsumer) });
      expect(stolen.statusCode).toBe(400);
    });
  });

  describe('conventions', () => {
    it('serves /docs, health and metrics, and the projections to admins only', async () => {
      const docs = await q.app.inject({ url: '/docs/json' });
      const paths = Object.keys(docs.json<{ paths: object }>().paths);
      expect(paths).toEqual(expect.arrayContaining(['/v1/listings', '/v1/bookings/{id}']));
      expect(paths.filter((path) => path.endsWith('/'))).toEqual([]);
      expect((await q.app.inject({ url: '/health/ready' })).statusCode).toBe(200);
      expect((await q.app.inject({ url: '/metrics' })).body).toContain('http_request_duration_seconds');
      expect((await q.app.inject({ url: '/v1/admin/projections', headers: q.auth(owner) })).statusCode).toBe(403);
      const projections = await q.app.inject({ url: '/v1/admin/projections', headers: q.auth(admin) });
      expect(projections.json<{ items: { name: string }[] }>().items.map((p) => p.name)).toEqual(expect.arrayContaining(['bookings', 'listings']));
    });

    it('has no routes that write', async () => {
      const response = await q.app.inject({ method: 'POST', url: '/v1/listings', payload: {} });
      expect(response.statusCode).toBe(404);
    });
  });

  // A misspelt filter (`?categroy=barn`) must not be answered with the whole unfiltered list.
  describe('unknown query parameters', () => {
    const auditor: Actor = { id: 'auditor-1', roles: ['AUDITOR'] };
    type Request = { readonly method: 'GET' | 'HEAD'; readonly route: string; readonly url: string; readonly actor?: Actor };
    /** One valid request per route that takes a query string, as OpenAPI names the route. */
    let requests: Request[];

    beforeAll(async () => {
      await registerUser(q.side, doctor, 'Dr Ada');
      await setSchedule(q.side, doctor.id, everyMorning, as(doctor));
      await q.settle();
      const stream = `listing-${listingId}`;
      requests = [
        { method: 'GET', route: '/v1/listings', url: '/v1/listings?category=barn&limit=5' },
        { method: 'GET', route: '/v1/listings/{id}/availability', url: `/v1/listings/${listingId}/availability?from=2030-02-01&to=2030-02-02` },
        { method: 'GET', route: '/v1/listings/{id}/reviews', url: `/v1/listings/${listingId}/reviews?limit=5` },
        { method: 'GET', route: '/v1/bookings/me', url: '/v1/bookings/me?status=confirmed', actor: consumer },
        { method: 'GET', route: '/v1/bookings/owner', url: '/v1/bookings/owner?limit=5', actor: owner },
        { method: 'GET', route: '/v1/doctors', url: '/v1/doctors?specialty=general', actor: patient },
        { method: 'GET', route: '/v1/doctors/{id}/slots', url: `/v1/doctors/${doctor.id}/slots?from=2030-01-14T00:00:00Z&to=2030-01-15T00:00:00Z` },
        { method: 'GET', route: '/v1/appointments/me', url: '/v1/appointments/me?limit=5', actor: patient },
        { method: 'GET', route: '/v1/audit/streams/{streamId}/events', url: `/v1/audit/streams/${stream}/events?limit=5`, actor: auditor },
        { method: 'GET', route: '/v1/audit/streams/{streamId}/state', url: `/v1/audit/streams/${stream}/state?version=0`, actor: auditor },
        { method: 'GET', route: '/v1/audit/actors/{userId}/events', url: `/v1/audit/actors/${owner.id}/events?from=2020-01-01T00:00:00Z`, actor: auditor },
        { method: 'GET', route: '/v1/audit/correlations/{id}/events', url: '/v1/audit/correlations/no-such-request/events?limit=5', actor: auditor },
        { method: 'GET', route: '/v1/audit/export', url: '/v1/audit/export?streamPrefix=listing-', actor: auditor },
        { method: 'HEAD', route: '/v1/audit/export', url: '/v1/audit/export?streamPrefix=listing-', actor: auditor },
        { method: 'GET', route: '/v1/audit/verify', url: `/v1/audit/verify?streamId=${stream}`, actor: auditor },
        { method: 'GET', route: '/v1/audit/access-log', url: `/v1/audit/access-log?actorId=${auditor.id}`, actor: auditor },
        { method: 'GET', route: '/v1/audit/security-events', url: '/v1/audit/security-events?limit=5', actor: auditor },
      ];
    });

    const send = ({ method, url, actor }: Request, query = '') =>
      q.app.inject({ method, url: `${url}${query}`, headers: actor ? q.auth(actor) : {} });

    it('are checked on every route that takes a query string (the list below is all of them)', async () => {
      type Operation = { parameters?: { in: string }[] };
      const document = (await q.app.inject({ url: '/docs/json' })).json<{ paths: Record<string, Record<string, Operation>> }>();
      const documented = Object.entries(document.paths).flatMap(([route, operations]) =>
        Object.entries(operations)
          .filter(([, operation]) => operation.parameters?.some((parameter) => parameter.in === 'query'))
          .map(([method]) => `${method.toUpperCase()} ${route}`),
      );
      expect(requests.map(({ method, route }) => `${method} ${route}`).sort()).toEqual([...new Set(documented)].sort());
    });

    it('given a valid request, when ?unknownParam=1 is added, then 400 problem+json names querystring.unknownParam and nothing else', async () => {
      for (const request of requests) {
        const label = `${request.method} ${request.url}`;
        expect((await send(request)).statusCode, label).toBe(200);
        const refused = await send(request, '&unknownParam=1');
        expect(refused.statusCode, label).toBe(400);
        expect(refused.headers['content-type'], label).toContain('application/problem+json');
        if (request.method === 'GET') {
          expect(refused.json(), label).toMatchObject({ type: expect.stringMatching(/validation-failed$/) });
          expect(refused.json<{ errors: unknown }>().errors, label).toEqual([{ path: 'querystring.unknownParam', message: 'unknown parameter' }]);
        }
      }
    });

    it('refuses a misspelt filter on /v1/listings, naming each unknown key, instead of listing everything', async () => {
      const cases: [string, string[]][] = [
        ['foo=1', ['querystring.foo']],
        ['categroy=barn', ['querystring.categroy']],
        ['maxprice=5000&currency=EUR', ['querystring.maxprice']],
        ['categroy=barn&maxprice=5000', ['querystring.categroy', 'querystring.maxprice']],
      ];
      for (const [query, paths] of cases) {
        const response = await q.app.inject({ url: `/v1/listings?${query}` });
        expect(response.statusCode, query).toBe(400);
        expect(response.json<{ errors: unknown }>().errors, query).toEqual(paths.map((path) => ({ path, message: 'unknown parameter' })));
      }
    });
  });
});
