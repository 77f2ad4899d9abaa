import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { requestBooking } from '../../src/application/bookings/booking.use-cases.js';
import { createListing } from '../../src/application/listings/listing.use-cases.js';
import { as, consumer, listingInput, owner } from '../support/command-side.js';
import { startQueryApi, type QueryApiFixture } from './support/query-api.fixture.js';

type Page = { items: { id: string }[]; nextCursor: string | null };

/** More than the largest page, so that `limit=100` is a full page with more to follow. */
const total = 105;

/**
 * API.md, "Pagination": `?limit=` (1–100, default 20) and `?cursor=`; `{ items, nextCursor }`,
 * `nextCursor` null at the end; a stable order.
 */
describe('pagination of the query API', () => {
  let q: QueryApiFixture;
  const listingIds: string[] = [];
  const bookingIds: string[] = [];

  beforeAll(async () => {
    q = await startQueryApi();
    for (let i = 0; i < total; i++) {
      listingIds.push((await createListing(q.side, { ...listingInput, title: `Loft ${i}` }, as(owner))).id);
    }
    const [listingId = ''] = listingIds;
    // One night each, one after the other: none overlaps another.
    const night = (n: number) => new Date(Date.UTC(2030, 2, 1) + n * 86_400_000).toISOString().slice(0, 10);
    for (let i = 0; i < total; i++) {
      bookingIds.push((await requestBooking(q.side, { listingId, startDate: night(i), endDate: night(i + 1) }, as(consumer))).id);
    }
    await q.settle();
  }, 120_000);
  afterAll(() => q.close());

  async function page(url: string, headers: Record<string, string>): Promise<Page> {
    const response = await q.app.inject({ url, headers });
    expect(response.statusCode, url).toBe(200);
    return response.json<Page>();
  }

  /** Follows `nextCursor` from the first page to the last; every page as it came. */
  async function walk(path: string, limit: number | undefined, headers: Record<string, string>): Promise<Page[]> {
    const pages: Page[] = [];
    let cursor: string | null | undefined;
    do {
      const query = new URLSearchParams();
      if (limit !== undefined) query.set('limit', String(limit));
      if (cursor) query.set('cursor', cursor);
      const current = await page(`${path}?${query.toString()}`, headers);
      pages.push(current);
      cursor = current.nextCursor;
      expect(pages.length).toBeLessThanOrEqual(total + 1);
    } while (cursor !== null);
    return pages;
  }

  const endpoints = [
    { path: '/v1/listings', headers: (): Record<string, string> => ({}), ids: () => listingIds },
    { path: '/v1/bookings/me', headers: (): Record<string, string> => q.auth(consumer), ids: () => bookingIds },
  ];

  describe.each(endpoints)('GET $path', ({ path, headers, ids }) => {
    it('answers 20 items and a nextCursor without a limit', async () => {
      const first = await page(path, headers());
      expect(first.items).toHaveLength(20);
      expect(first.nextCursor).toEqual(expect.any(String));
    });

    it('answers 100 items with limit=100, then the 5 left with nextCursor null', async () => {
      const first = await page(`${path}?limit=100`, headers());
      expect(first.items).toHaveLength(100);
      expect(first.nextCursor).toEqual(expect.any(String));
      const rest = await page(`${path}?limit=100&cursor=${first.nextCursor ?? ''}`, headers());
      expect(rest.items).toHaveLength(total - 100);
      expect(rest.nextCursor).toBeNull();
    });

    it('visits every item exactly once by following nextCursor, in one order whatever the page size', async () => {
      const byDefault = await walk(path, undefined, headers());
      expect(byDefault.map((p) => p.items.length)).toEqual([20, 20, 20, 20, 20, 5]);
      expect(byDefault.at(-1)?.nextCursor).toBeNull();
      const order = byDefault.flatMap((p) => p.items.map((item) => item.id));
      expect(new Set(order).size).toBe(total);
      expect([...order].sort()).toEqual([...ids()].sort());

      const byHundred = await walk(path, 100, headers());
      expect(byHundred.map((p) => p.items.length)).toEqual([100, 5]);
      expect(byHundred.flatMap((p) => p.items.map((item) => item.id))).toEqual(order);
      const bySeven = await walk(path, 7, headers());
      expect(bySeven).toHaveLength(15);
      expect(bySeven.flatMap((p) => p.items.map((item) => item.id))).toEqual(order);
      // And again: the same order on a second walk.
      expect((await walk(path, undefined, headers())).flatMap((p) => p.items.map((item) => item.id))).toEqual(order);
    });

    it('refuses a cursor it did not hand out with 400 invalid-cursor, naming querystring.cursor as a validation failure does', async () => {
      const handedOut = (await page(`${path}?limit=1`, headers())).nextCursor ?? '';
      for (const cursor of ['garbage', handedOut.slice(0, -2), `${handedOut}.x`]) {
        const response = await q.app.inject({ url: `${path}?cursor=${encodeURIComponent(cursor)}`, headers: headers() });
        expect(response.statusCode, cursor).toBe(400);
        expect(response.headers['content-type'], cursor).toContain('application/problem+json');
        expect(response.json(), cursor).toMatchObject({
          type: 'https://bookable.example/problems/invalid-cursor',
          errors: [{ path: 'querystring.cursor', message: 'not a cursor this query handed out' }],
        });
      }
    });
  });
});
