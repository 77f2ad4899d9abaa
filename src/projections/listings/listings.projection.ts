import { sql, type Kysely, type Transaction } from 'kysely';
import { aggregates } from '../../application/aggregates/aggregates.js';
import type { RecordedEvent } from '../../application/ports/event-store.js';
import type { ListingEvent } from '../../domain/listing/listing.events.js';
import { assertNever } from '../../domain/shared/decider.js';
import { decodeKnown, distinct, foldRows } from '../shared/batch-fold.js';
import { defineProjection } from '../runtime/projection.js';
import { listingColumns, listingsProjectionName, type ListingRow, type ListingsTables } from './listings.table.js';

const codec = aggregates.listing.codec;

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
    .addColumn('capacity', 'integer', (c) => c.notNull())
    .addColumn('time_zone', 'text', (c) => c.notNull())
    .addColumn('price_per_day', 'bigint', (c) => c.notNull())
    .addColumn('currency', 'text', (c) => c.notNull())
    .addColumn('active', 'boolean', (c) => c.notNull())
    .addColumn('created_at', 'timestamptz', (c) => c.notNull())
    .addColumn('updated_at', 'timestamptz', (c) => c.notNull())
    .addColumn('version', 'integer', (c) => c.notNull())
    .addColumn('search', sql`tsvector`, (c) => c.generatedAlwaysAs(searchDocument).stored())
    .execute();
  // The list shows active listings, newest first; each filter has an index that starts with it.
  const active = (name: string) => db.schema.createIndex(name).on('listings').where(sql.ref('active'), '=', true);
  await active('listings_newest_idx').columns(['created_at desc', 'listing_id desc']).execute();
  await active('listings_category_idx').columns(['category', 'created_at desc', 'listing_id desc']).execute();
  await active('listings_location_idx').expression(sql`lower(location), created_at desc, listing_id desc`).execute();
  await active('listings_price_idx').columns(['currency', 'price_per_day']).execute();
  await active('listings_search_idx').using('gin').column('search').execute();
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
        capacity: d.capacity,
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
      return row && { ...row, ...at, title, description, category, location, capacity, time_zone: timeZone };
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

async function apply(trx: Transaction<ListingsTables>, events: readonly RecordedEvent[]): Promise<void> {
  const decoded = decodeKnown(codec, events);
  if (decoded.length === 0) return;
  const ids = distinct(decoded.map(({ event }) => event.data.listingId));
  const loaded = await trx.selectFrom('listings').select(listingColumns).where('listing_id', 'in', ids).execute();
  const rows = foldRows({ events: decoded, loaded, keyOfRow: (row) => row.listing_id, keyOfEvent: (event) => event.data.listingId, evolve });
  if (rows.length === 0) return;
  await trx
    .insertInto('listings')
    .values(rows)
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

/** Listings with their details, price and active flag; searchable by text. */
export const listingsProjection = defineProjection<ListingsTables>({
  name: listingsProjectionName,
  version: 1,
  eventTypes: codec.eventTypes,
  migrate,
  apply,
});
