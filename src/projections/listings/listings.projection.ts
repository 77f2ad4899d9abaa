import { sql, type Kysely, type Transaction } from 'kysely';
import { aggregates } from '../../application/aggregates/aggregates.js';
import type { RecordedEvent } from '../../application/ports/event-store.js';
import type { ListingEvent } from '../../domain/listing/listing.events.js';
import type { ReviewEvent } from '../../domain/review/review.events.js';
import { assertNever } from '../../domain/shared/decider.js';
import { decodeKnown, distinct, foldRows } from '../shared/batch-fold.js';
import { withinParameterLimit } from '../shared/parameter-limit.js';
import { defineProjection } from '../runtime/projection.js';
import { listingColumns, listingsProjectionName, type ListingReviewRow, type ListingRow, type ListingsTables } from './listings.table.js';

const codec = aggregates.listing.codec;
const reviewCodec = aggregates.review.codec;

/**
 * The `simple` text-search configuration: listings are written in many languages, and a
 * language's stemmer would mangle the others' words; `simple` also keeps the column immutable.
 */
const searchDocument = sql`to_tsvector('simple'::regconfig, title || ' ' || description || ' ' || category || ' ' || location)`;

async function migrate(db: Kysely<unknown>): Promise<void> {
  await db.schema
    .createTable('listings')
    .addColumn('listing_id', 'text', (c) => c.primaryKey())
    .addColumn('owner_id', 'text', (c) => c.notNull())
    .addColumn('title', 'text', (c) => c.notNull())
    .addColumn('description', 'text', (c) => c.notNull())
    .addColumn('category', 'text', (c) => c.notNull())
    .addColumn('location', 'text', (c) => c.notNull())
    .addColumn('capacity', 'bigint', (c) => c.notNull())
    .addColumn('time_zone', 'text', (c) => c.notNull())
    .addColumn('price_per_day', 'bigint', (c) => c.notNull())
    .addColumn('currency', 'text', (c) => c.notNull())
    .addColumn('active', 'boolean', (c) => c.notNull())
    .addColumn('created_at', 'timestamptz', (c) => c.notNull())
    .addColumn('updated_at', 'timestamptz', (c) => c.notNull())
    .addColumn('version', 'integer', (c) => c.notNull())
    .addColumn('search', sql`tsvector`, (c) => c.generatedAlwaysAs(searchDocument).stored())
    .addColumn('rating_count', 'integer', (c) => c.notNull().defaultTo(0))
    .addColumn('rating_sum', 'integer', (c) => c.notNull().defaultTo(0))
    .execute();
  await db.schema
    .createTable('listing_reviews')
    .addColumn('booking_id', 'text', (c) => c.primaryKey())
    .addColumn('listing_id', 'text', (c) => c.notNull())
    .addColumn('rating', 'integer', (c) => c.notNull())
    .addColumn('hidden', 'boolean', (c) => c.notNull())
    .addColumn('version', 'integer', (c) => c.notNull())
    .execute();
  await db.schema.createIndex('listing_reviews_listing_idx').on('listing_reviews').column('listing_id').execute();
  // The list shows active listings, newest first; each filter has an index that starts with it.
  const active = (name: string) => db.schema.createIndex(name).on('listings').where(sql.ref('active'), '=', true);
  await active('listings_newest_idx').columns(['created_at desc', 'listing_id desc']).execute();
  await active('listings_category_idx').columns(['category', 'created_at desc', 'listing_id desc']).execute();
  await active('listings_location_idx').expression(sql`lower(location), created_at desc, listing_id desc`).execute();
  await active('listings_price_idx').columns(['currency', 'price_per_day']).execute();
  await active('listings_search_idx').using('gin').column('search').execute();
  // The zones listings are in, for a free-dates search at the edge of the booking window: one
  // probe per zone (`activeTimeZones`), not a scan of every listing.
  await active('listings_time_zone_idx').column('time_zone').execute();
  await db.schema.createIndex('listings_owner_idx').on('listings').column('owner_id').execute();
}

function evolve(row: ListingRow | undefined, event: ListingEvent, recorded: RecordedEvent): ListingRow | undefined {
  const at = { version: recorded.revision, updated_at: recorded.recordedAt };
  switch (event.type) {
    case 'ListingCreated': {
      const d = event.data;
      return {
        listing_id: d.listingId,
        owner_id: d.ownerId,
        title: d.title,
        description: d.description,
        category: d.category,
        location: d.location,
        capacity: String(d.capacity),
        time_zone: d.timeZone,
        price_per_day: String(d.pricePerDay),
        currency: d.currency,
        active: true,
        created_at: recorded.recordedAt,
        ...at,
      };
    }
    case 'ListingDetailsUpdated': {
      const { title, description, category, location, capacity, timeZone } = event.data;
      return row && { ...row, ...at, title, description, category, location, capacity: String(capacity), time_zone: timeZone };
    }
    case 'ListingPriceChanged':
      return row && { ...row, ...at, price_per_day: String(event.data.pricePerDay), currency: event.data.currency };
    case 'ListingDeactivated':
      return row && { ...row, ...at, active: false };
    case 'ListingReactivated':
      return row && { ...row, ...at, active: true };
    default:
      return assertNever(event);
  }
}

function evolveReview(row: ListingReviewRow | undefined, event: ReviewEvent, recorded: RecordedEvent): ListingReviewRow | undefined {
  const version = recorded.revision;
  switch (event.type) {
    case 'ReviewSubmitted':
      return { booking_id: event.data.bookingId, listing_id: event.data.listingId, rating: event.data.rating, hidden: false, version };
    case 'ReviewEdited':
      return row && { ...row, rating: event.data.rating, version };
    case 'ReviewHidden':
      return row && { ...row, hidden: true, version };
    default:
      return assertNever(event);
  }
}

async function apply(trx: Transaction<ListingsTables>, events: readonly RecordedEvent[]): Promise<void> {
  await upsertListings(trx, events);
  await countRatings(trx, events);
}

async function upsertListings(trx: Transaction<ListingsTables>, events: readonly RecordedEvent[]): Promise<void> {
  const decoded = decodeKnown(codec, events);
  if (decoded.length === 0) return;
  const ids = distinct(decoded.map(({ event }) => event.data.listingId));
  const loaded = await trx.selectFrom('listings').select(listingColumns).where('listing_id', 'in', ids).execute();
  const rows = foldRows({ events: decoded, loaded, keyOfRow: (row) => row.listing_id, keyOfEvent: (event) => event.data.listingId, evolve });
  if (rows.length === 0) return;
  for (const run of withinParameterLimit(rows)) {
    await trx
      .insertInto('listings')
      .values(run)
      .onConflict((oc) =>
        oc
          .column('listing_id')
          .doUpdateSet((eb) => ({
            title: eb.ref('excluded.title'),
            description: eb.ref('excluded.description'),
            category: eb.ref('excluded.category'),
            location: eb.ref('excluded.location'),
            capacity: eb.ref('excluded.capacity'),
            time_zone: eb.ref('excluded.time_zone'),
            price_per_day: eb.ref('excluded.price_per_day'),
            currency: eb.ref('excluded.currency'),
            active: eb.ref('excluded.active'),
            updated_at: eb.ref('excluded.updated_at'),
            version: eb.ref('excluded.version'),
          }))
          .where('listings.version', '<', sql<number>`excluded.version`),
      )
      .execute();
  }
}

/** Keeps each review's rating, then recounts the rating of every listing the batch's reviews touched. */
async function countRatings(trx: Transaction<ListingsTables>, events: readonly RecordedEvent[]): Promise<void> {
  const decoded = decodeKnown(reviewCodec, events);
  if (decoded.length === 0) return;
  const ids = distinct(decoded.map(({ event }) => event.data.bookingId));
  const loaded = await trx.selectFrom('listing_reviews').selectAll().where('booking_id', 'in', ids).execute();
  const rows = foldRows({ events: decoded, loaded, keyOfRow: (row) => row.booking_id, keyOfEvent: (event) => event.data.bookingId, evolve: evolveReview });
  if (rows.length === 0) return;
  for (const run of withinParameterLimit(rows)) {
    await trx
      .insertInto('listing_reviews')
      .values(run)
      .onConflict((oc) =>
        oc
          .column('booking_id')
          .doUpdateSet((eb) => ({ rating: eb.ref('excluded.rating'), hidden: eb.ref('excluded.hidden'), version: eb.ref('excluded.version') }))
          .where('listing_reviews.version', '<', sql<number>`excluded.version`),
      )
      .execute();
  }
  // Recounted rather than adjusted: a replayed batch then changes nothing.
  const listings = distinct(rows.map((row) => row.listing_id));
  await trx
    .updateTable('listings')
    .set((eb) => ({
      rating_count: eb.selectFrom('listing_reviews as r').whereRef('r.listing_id', '=', 'listings.listing_id').where('r.hidden', '=', false).select((r) => r.fn.countAll<number>().as('count')),
      rating_sum: eb
        .selectFrom('listing_reviews as r')
        .whereRef('r.listing_id', '=', 'listings.listing_id')
        .where('r.hidden', '=', false)
        .select((r) => r.fn.coalesce(r.fn.sum<number>('r.rating'), sql<number>`0`).as('sum')),
    }))
    .where('listing_id', 'in', listings)
    .execute();
}

/** Listings with their details, price, active flag and rating; searchable by text. */
export const listingsProjection = defineProjection<ListingsTables>({
  name: listingsProjectionName,
  // 2: the rating, counted here from review events instead of read from the reviews read model.
  // 3: `capacity` is a bigint: a listing stored before capacity was bounded failed version 2.
  // 4: an index of the active listings' time zones.
  version: 4,
  eventTypes: [...codec.eventTypes, ...reviewCodec.eventTypes],
  migrate,
  apply,
});
