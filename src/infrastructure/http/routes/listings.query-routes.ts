import type { FastifyRequest } from 'fastify';
import type { FastifyPluginAsyncZod } from 'fastify-type-provider-zod';
import { z } from 'zod';
import { daysBetween, requestDateSchema } from '../../../domain/shared/calendar-date.js';
import { knownCurrencySchema } from '../../../domain/shared/money.js';
import { listingAvailability } from '../../../projections/listing-availability/listing-availability.queries.js';
import { listingAvailabilityProjectionName } from '../../../projections/listing-availability/listing-availability.table.js';
import { findListing, searchListings } from '../../../projections/listings/listings.queries.js';
import { listingsProjectionName } from '../../../projections/listings/listings.table.js';
import { reviewsOfListing } from '../../../projections/reviews/reviews.queries.js';
import { reviewsProjectionName } from '../../../projections/reviews/reviews.table.js';
import { bookableNight } from '../../../projections/shared/stay-horizon.js';
import { optionalAuth } from '../plugins/auth.plugin.js';
import { consistencyHeaders, cursorScope, idParams, notFound, paged, pageQuery, pageSchema, textParam, type QueryRoutesOptions } from '../query-context.js';
import { wholeNumberText } from '../../whole-number-text.js';

const maxAmount = Number.MAX_SAFE_INTEGER;
/** Availability and free-date searches look at most a year ahead at once. */
const maxRangeDays = 366;

const listingSchema = z
  .object({
    id: z.string(),
    ownerId: z.string(),
    title: z.string(),
    description: z.string(),
    category: z.string(),
    location: z.string(),
    capacity: z.number().int(),
    timeZone: z.string(),
    pricePerDay: z.number().int().describe('Minor units of `currency`'),
    currency: z.string(),
    active: z.boolean(),
    rating: z.object({ average: z.number().nullable().describe('Of visible reviews; null without any'), count: z.number().int() }),
    createdAt: z.string(),
    version: z.number().int(),
  })
  .meta({ id: 'Listing' });

const reviewSchema = z
  .object({
    bookingId: z.string(),
    listingId: z.string(),
    authorId: z.string(),
    rating: z.number().int(),
    comment: z.string(),
    submittedAt: z.string(),
    editedAt: z.string().nullable(),
  })
  .meta({ id: 'Review' });

const dayRange = z
  .strictObject({ from: requestDateSchema, to: requestDateSchema })
  .refine(({ from, to }) => from < to && daysBetween(from, to) <= maxRangeDays, { message: `from must be before to, at most ${maxRangeDays} days apart`, path: ['to'] });

const listingsQuery = pageQuery
  .extend({
    category: textParam(100).optional(),
    location: textParam(200).optional().describe('Whole location, any case'),
    minPrice: wholeNumberText(0, maxAmount).optional().describe('Per day, minor units of `currency`, which it needs'),
    maxPrice: wholeNumberText(0, maxAmount).optional().describe('Per day, minor units of `currency`, which it needs'),
    currency: knownCurrencySchema.optional().describe('ISO 4217 code; required with `minPrice` or `maxPrice`'),
    from: requestDateSchema.optional().describe('With `to`: only listings free for every night of [from, to)'),
    to: requestDateSchema.optional(),
    q: textParam(200).optional().describe('Words to find in title, description, category and location'),
  })
  .refine(({ from, to }) => from === undefined || to !== undefined, { message: 'goes with from', path: ['to'] })
  .refine(({ from, to }) => to === undefined || from !== undefined, { message: 'goes with to', path: ['from'] })
  .refine(({ from, to }) => from === undefined || to === undefined || dayRange.safeParse({ from, to }).success, {
    message: `from must be before to, at most ${maxRangeDays} days apart`,
    path: ['to'],
  })
  // Minor units differ by currency (JPY has none, KWD three): a bound in no currency would let in
  // 9.999 KWD under 10000 and keep out 120 EUR.
  .refine(({ minPrice, maxPrice, currency }) => currency !== undefined || (minPrice === undefined && maxPrice === undefined), {
    message: 'goes with minPrice and maxPrice: prices are counted in minor units of one currency',
    path: ['currency'],
  })
  .refine(({ minPrice, maxPrice }) => minPrice === undefined || maxPrice === undefined || minPrice <= maxPrice, { message: 'minPrice must not exceed maxPrice', path: ['maxPrice'] });

const listingSortKey = z.object({ createdAt: z.iso.datetime(), listingId: z.string().max(200) });
const reviewSortKey = z.object({ submittedAt: z.iso.datetime(), bookingId: z.string().max(200) });
const dayStatusSchema = z.enum(['free', 'held', 'booked']);
const availabilitySchema = z
  .object({
    listingId: z.string(),
    bookable: z.boolean().describe('Whether the listing takes bookings: false once deactivated, when every day is refused whatever its status'),
    from: z.string(),
    to: z.string(),
    days: z
      .array(z.object({ date: z.string(), status: dayStatusSchema }))
      .describe('One per day of [from, to) that a stay may hold as a night (from today to 365 days after it, in the listing\'s time zone): none before or past that, as a booking with a night there is refused'),
  })
  .meta({ id: 'ListingAvailability' });

/** Free dates depend on the clock too (holds expire): those searches are read every time. */
function withoutFreeDates(request: FastifyRequest): boolean {
  // preHandlers run after validation: the query is the schema's output.
  const query = request.query as z.output<typeof listingsQuery>;
  return query.from === undefined;
}

/**
 * What a listing with its rating is read from: the listings read model, and the reviews read
 * model while a listings version 1 generation still serves (its tables have no rating, see
 * `findListing`), so read-your-writes waits for both.
 */
const listingWithRating = [listingsProjectionName, reviewsProjectionName];

/** Public reads of listings, their availability and their reviews; a token, if sent, must be valid (API.md). */
export const listingQueryRoutes: FastifyPluginAsyncZod<QueryRoutesOptions> = async (app, { db, clock, cursors, consistentWith, cachedRead }) => {
  const tags = ['listings'];
  const headers = consistencyHeaders;

  app.get(
    '/',
    {
      onRequest: optionalAuth,
      preHandler: cachedRead([...listingWithRating, listingAvailabilityProjectionName], { cacheable: withoutFreeDates, sameForEveryone: true }),
      schema: { tags, summary: 'Search active listings, newest first', headers, querystring: listingsQuery, response: { 200: pageSchema(listingSchema) } },
    },
    async (request) => {
      const { limit, cursor, from, to, ...filter } = request.query;
      const freeDates = from !== undefined && to !== undefined ? { from, to, now: clock.now() } : undefined;
      const scope = cursorScope('listings', undefined, { ...filter, from, to });
      return paged(cursors, scope, { limit, cursor }, listingSortKey, (page) => searchListings(db, { ...filter, freeDates }, page));
    },
  );

  app.get(
    '/:id',
    {
      onRequest: optionalAuth,
      preHandler: cachedRead(listingWithRating, { sameForEveryone: true }),
      schema: { tags, summary: 'One listing with its rating', headers, params: idParams, response: { 200: listingSchema } },
    },
    async (request) => {
      const listing = await findListing(db, request.params.id);
      if (!listing) throw notFound(`listing ${request.params.id}`);
      return listing;
    },
  );

  app.get(
    '/:id/availability',
    {
      onRequest: optionalAuth,
      preHandler: consistentWith([listingsProjectionName, listingAvailabilityProjectionName]),
      schema: { tags, summary: 'Free, held and booked days of [from, to)', headers, params: idParams, querystring: dayRange, response: { 200: availabilitySchema } },
    },
    async (request) => {
      const { id } = request.params;
      const listing = await findListing(db, id);
      if (!listing) throw notFound(`listing ${id}`);
      const now = clock.now();
      const days = await listingAvailability(db, id, request.query, now);
      // Days before today and past the horizon go, so `days` may start after `from` and end before
      // `to`, both echoed as asked: each day names its date.
      const bookable = bookableNight(listing.timeZone, now);
      return { listingId: id, bookable: listing.active, ...request.query, days: days.filter((day) => bookable(day.date)) };
    },
  );

  app.get(
    '/:id/reviews',
    {
      onRequest: optionalAuth,
      preHandler: cachedRead(listingWithRating, { sameForEveryone: true }),
      schema: { tags, summary: 'Visible reviews, newest first', headers, params: idParams, querystring: pageQuery, response: { 200: pageSchema(reviewSchema) } },
    },
    async (request) => {
      const { id } = request.params;
      if (!(await findListing(db, id))) throw notFound(`listing ${id}`);
      const scope = cursorScope('listing-reviews', undefined, { id });
      return paged(cursors, scope, request.query, reviewSortKey, (page) => reviewsOfListing(db, id, page));
    },
  );
};
