import { sql, type Kysely } from 'kysely';
import type { CalendarDate } from '../../domain/shared/calendar-date.js';
import type { Database } from '../read-models.js';
import { amount, toPage, type Page, type PageRequest } from '../shared/page.js';
import { readAcrossGenerations } from '../shared/read-across-generations.js';
import { zonesWhereStayBookable } from '../shared/stay-horizon.js';
import type { CheckpointTables } from '../runtime/projection-checkpoints.table.js';
import { listingsProjectionName } from './listings.table.js';

export type ListingView = {
  readonly id: string;
  readonly ownerId: string;
  readonly title: string;
  readonly description: string;
  readonly category: string;
  readonly location: string;
  readonly capacity: number;
  readonly timeZone: string;
  readonly pricePerDay: number;
  readonly currency: string;
  readonly active: boolean;
  readonly rating: { readonly average: number | null; readonly count: number };
  readonly createdAt: string;
  readonly version: number;
};

export type ListingFilter = {
  readonly category?: string | undefined;
  /** Case-insensitive, whole value. */
  readonly location?: string | undefined;
  /** Minor units of `currency`: without it the bounds would compare amounts in different units. */
  readonly minPrice?: number | undefined;
  readonly maxPrice?: number | undefined;
  readonly currency?: string | undefined;
  /**
   * Only listings with no live hold or booking overlapping `[from, to)`, and in which, at `now`
   * and in each listing's time zone, `from` is not before today and the stay's last night (the
   * day before `to`) not past the booking horizon: a stay of those nights would otherwise be
   * refused.
   */
  readonly freeDates?: { readonly from: CalendarDate; readonly to: CalendarDate; readonly now: Date } | undefined;
  /** Words to find in title, description, category and location (web search syntax). */
  readonly q?: string | undefined;
};

/** Newest first. */
export type ListingSortKey = { readonly createdAt: string; readonly listingId: string };

const shownColumns = [
  'l.listing_id',
  'l.owner_id',
  'l.title',
  'l.description',
  'l.category',
  'l.location',
  'l.capacity',
  'l.time_zone',
  'l.price_per_day',
  'l.currency',
  'l.active',
  'l.created_at',
  'l.version',
] as const;

/** The columns a listing is shown with, its rating counted by the projection (version 2). */
function listings(db: Kysely<Database>) {
  return db.selectFrom('rm_listings.listings as l').select([...shownColumns, 'l.rating_count', 'l.rating_sum']);
}

/**
 * The same rows counted from the reviews read model, as readers did before version 2: after a
 * deploy, version 2 rebuilds beside the active version 1, whose tables have no rating columns,
 * and listings must keep answering until it swaps in. Remove once no deployment can still have
 * version 1 active.
 */
function listingsCountingReviews(db: Kysely<Database>): ReturnType<typeof listings> {
  return db
    .selectFrom('rm_listings.listings as l')
    .select(shownColumns)
    .select((eb) => {
      const visibleReviews = eb.selectFrom('rm_reviews.reviews as r').whereRef('r.listing_id', '=', 'l.listing_id').where('r.hidden', '=', false);
      return [
        visibleReviews.select(sql<number>`count(*)::int`.as('count')).$asScalar().$notNull().as('rating_count'),
        visibleReviews.select(sql<number>`coalesce(sum(r.rating), 0)::int`.as('sum')).$asScalar().$notNull().as('rating_sum'),
      ];
    });
}

/** Reads with `listings`, or with `listingsCountingReviews` while version 1's tables still serve. */
function readListings<T>(db: Kysely<Database>, read: (from: ReturnType<typeof listings>) => Promise<T>): Promise<T> {
  return readAcrossGenerations(() => read(listings(db)), () => read(listingsCountingReviews(db)));
}

type ListingRecord = Awaited<ReturnType<ReturnType<typeof listings>['execute']>>[number];

function toListingView(row: ListingRecord): ListingView {
  const count = row.rating_count;
  const average = count === 0 ? null : Math.round((row.rating_sum / count) * 100) / 100;
  return {
    id: row.listing_id,
    ownerId: row.owner_id,
    title: row.title,
    description: row.description,
    category: row.category,
    location: row.location,
    // A string from a bigint column, a number from the integer one of a version 2 generation still serving.
    capacity: Number(row.capacity),
    timeZone: row.time_zone,
    pricePerDay: amount(row.price_per_day),
    currency: row.currency,
    active: row.active,
    rating: { average, count },
    createdAt: row.created_at.toISOString(),
    version: row.version,
  };
}

/** Active listings matching every given filter, newest first. */
export async function searchListings(db: Kysely<Database>, filter: ListingFilter, page: PageRequest<ListingSortKey>): Promise<Page<ListingView, ListingSortKey>> {
  const { freeDates } = filter;
  const zones = freeDates ? await zonesWhereStayBookable({ startDate: freeDates.from, endDate: freeDates.to }, freeDates.now, () => activeTimeZones(db)) : 'every';
  return readListings(db, (from) => search(from, filter, zones, page));
}

/** The first version of the listings read model with `listings_time_zone_idx`. */
const zoneIndexVersion = 4;

/**
 * The time zones active listings are in: a few hundred at most, however many listings there are,
 * so read by skipping through `listings_time_zone_idx` from one zone to the next (a loose index
 * scan: PostgreSQL's DISTINCT would read every entry). Searches from today take this path for
 * much of each day. Tables of an older version, serving while the new one rebuilds, have no such
 * index: there each skip would be a scan of its own, and one DISTINCT scan is read instead.
 */
async function activeTimeZones(db: Kysely<Database>): Promise<string[]> {
  const active = await db
    .withTables<CheckpointTables>()
    .selectFrom('projection_checkpoints')
    .select('version')
    .where('name', '=', listingsProjectionName)
    .where('active', '=', true)
    .executeTakeFirst();
  if (active === undefined || active.version < zoneIndexVersion) {
    const rows = await db.selectFrom('rm_listings.listings').select('time_zone').distinct().where('active', '=', true).execute();
    return rows.map((row) => row.time_zone);
  }
  const { rows } = await sql<{ time_zone: string }>`
    WITH RECURSIVE zone AS (
      SELECT min(time_zone) AS time_zone FROM rm_listings.listings WHERE active
      UNION ALL
      SELECT (SELECT min(l.time_zone) FROM rm_listings.listings l WHERE l.active AND l.time_zone > zone.time_zone)
        FROM zone WHERE zone.time_zone IS NOT NULL
    )
    SELECT time_zone FROM zone WHERE time_zone IS NOT NULL`.execute(db);
  return rows.map((row) => row.time_zone);
}

async function search(
  from: ReturnType<typeof listings>,
  filter: ListingFilter,
  zones: 'every' | readonly string[],
  page: PageRequest<ListingSortKey>,
): Promise<Page<ListingView, ListingSortKey>> {
  const { after, limit } = page;
  const { category, location, minPrice, maxPrice, currency, freeDates, q } = filter;
  let query = from.where('l.active', '=', true);
  if (zones !== 'every') query = zones.length === 0 ? query.where(sql<boolean>`false`) : query.where('l.time_zone', 'in', zones);
  if (category !== undefined) query = query.where('l.category', '=', category);
  // Both sides lowered by PostgreSQL: under the C locale it lowers ASCII only, and a value lowered
  // by JavaScript would then never meet 'Île-de-France' or 'Москва' as stored.
  if (location !== undefined) query = query.where(sql`lower(l.location)`, '=', sql`lower(${location})`);
  if (currency !== undefined) query = query.where('l.currency', '=', currency);
  if (minPrice !== undefined) query = query.where('l.price_per_day', '>=', String(minPrice));
  if (maxPrice !== undefined) query = query.where('l.price_per_day', '<=', String(maxPrice));
  if (q !== undefined) query = query.where(sql<boolean>`l.search @@ websearch_to_tsquery('simple'::regconfig, ${q})`);
  if (freeDates) {
    const { from, to, now } = freeDates;
    query = query.where(({ not, exists, selectFrom }) =>
      not(
        exists(
          selectFrom('rm_listing_availability.calendar_ranges as c')
            .select('c.booking_id')
            .whereRef('c.listing_id', '=', 'l.listing_id')
            .where('c.start_date', '<', to)
            .where('c.end_date', '>', from)
            .where((c) => c.or([c('c.status', '=', 'booked'), c('c.hold_expires_at', '>', now)])),
        ),
      ),
    );
  }
  if (after) query = query.where((eb) => eb(eb.refTuple('l.created_at', 'l.listing_id'), '<', eb.tuple(new Date(after.createdAt), after.listingId)));
  const rows = await query.orderBy('l.created_at', 'desc').orderBy('l.listing_id', 'desc').limit(limit + 1).execute();
  return toPage(rows, limit, toListingView, (row) => ({ createdAt: row.created_at.toISOString(), listingId: row.listing_id }));
}

/** One listing, active or not, with its rating. */
export async function findListing(db: Kysely<Database>, listingId: string): Promise<ListingView | undefined> {
  const row = await readListings(db, (from) => from.where('l.listing_id', '=', listingId).executeTakeFirst());
  return row && toListingView(row);
}
