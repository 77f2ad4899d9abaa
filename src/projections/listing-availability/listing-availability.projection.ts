import { sql, type Kysely, type Transaction } from 'kysely';
import { aggregates } from '../../application/aggregates/aggregates.js';
import type { RecordedEvent } from '../../application/ports/event-store.js';
import { assertNever } from '../../domain/shared/decider.js';
import { decodeKnown, distinct } from '../shared/batch-fold.js';
import { withinParameterLimit } from '../shared/parameter-limit.js';
import { defineProjection } from '../runtime/projection.js';
import {
  listingAvailabilityProjectionName,
  type CalendarRangeRow,
  type ListingAvailabilityTables,
} from './listing-availability.table.js';

const codec = aggregates.listingCalendar.codec;

async function migrate(db: Kysely<unknown>): Promise<void> {
  await db.schema
    .createTable('listing_calendars')
    .addColumn('listing_id', 'text', (c) => c.primaryKey())
    .addColumn('version', 'integer', (c) => c.notNull())
    .execute();
  await db.schema
    .createTable('calendar_ranges')
    .addColumn('listing_id', 'text', (c) => c.notNull())
    .addColumn('booking_id', 'text', (c) => c.notNull())
    .addColumn('start_date', 'text', (c) => c.notNull())
    .addColumn('end_date', 'text', (c) => c.notNull())
    .addColumn('status', 'text', (c) => c.notNull())
    .addColumn('hold_expires_at', 'timestamptz')
    .addPrimaryKeyConstraint('calendar_ranges_pk', ['listing_id', 'booking_id'])
    .execute();
  // Overlap with [from, to) of one listing: availability by day, and the listings' free-dates filter.
  await db.schema.createIndex('calendar_ranges_overlap_idx').on('calendar_ranges').columns(['listing_id', 'start_date', 'end_date']).execute();
}

type RangeChange = { readonly kind: 'set'; readonly row: CalendarRangeRow } | { readonly kind: 'delete'; readonly listingId: string; readonly bookingId: string };

/**
 * The calendar's events decide each range outright (every event carries the range's dates), so a
 * batch folds to one change per range without reading the ranges: only the stream versions.
 */
async function apply(trx: Transaction<ListingAvailabilityTables>, events: readonly RecordedEvent[]): Promise<void> {
  const decoded = decodeKnown(codec, events);
  if (decoded.length === 0) return;
  const listingIds = distinct(decoded.map(({ event }) => event.data.listingId));
  const stored = await trx.selectFrom('listing_calendars').selectAll().where('listing_id', 'in', listingIds).execute();
  const versions = new Map(stored.map((row) => [row.listing_id, row.version]));
  const changes = new Map<string, RangeChange>();
  for (const { event, recorded } of decoded) {
    const { listingId } = event.data;
    if (recorded.revision <= (versions.get(listingId) ?? -1)) continue;
    versions.set(listingId, recorded.revision);
    // Whether a listing takes bookings is the listings read model's, from the listing's own events.
    if (event.type === 'CalendarClosed' || event.type === 'CalendarReopened') continue;
    const { bookingId, startDate, endDate } = event.data;
    const key = `${listingId}\u0000${bookingId}`;
    const range = { listing_id: listingId, booking_id: bookingId, start_date: startDate, end_date: endDate };
    switch (event.type) {
      case 'DatesHeld':
        changes.set(key, { kind: 'set', row: { ...range, status: 'held', hold_expires_at: new Date(event.data.holdExpiresAt) } });
        break;
      case 'DatesBooked':
        changes.set(key, { kind: 'set', row: { ...range, status: 'booked', hold_expires_at: null } });
        break;
      case 'DatesReleased':
        changes.set(key, { kind: 'delete', listingId, bookingId });
        break;
      default:
        assertNever(event);
    }
  }
  await writeChanges(trx, [...changes.values()]);
  const touched = listingIds.flatMap((listingId) => {
    const version = versions.get(listingId);
    return version === undefined ? [] : [{ listing_id: listingId, version }];
  });
  for (const run of withinParameterLimit(touched)) {
    await trx
      .insertInto('listing_calendars')
      .values(run)
      .onConflict((oc) =>
        oc
          .column('listing_id')
          .doUpdateSet((eb) => ({ version: eb.ref('excluded.version') }))
          .where('listing_calendars.version', '<', sql<number>`excluded.version`),
      )
      .execute();
  }
}

async function writeChanges(trx: Transaction<ListingAvailabilityTables>, changes: readonly RangeChange[]): Promise<void> {
  const sets = changes.flatMap((change) => (change.kind === 'set' ? [change.row] : []));
  const deletes = changes.flatMap((change) => (change.kind === 'delete' ? [change] : []));
  if (sets.length > 0) {
    for (const run of withinParameterLimit(sets)) {
      await trx
        .insertInto('calendar_ranges')
        .values(run)
        .onConflict((oc) =>
          oc.columns(['listing_id', 'booking_id']).doUpdateSet((eb) => ({
            start_date: eb.ref('excluded.start_date'),
            end_date: eb.ref('excluded.end_date'),
            status: eb.ref('excluded.status'),
            hold_expires_at: eb.ref('excluded.hold_expires_at'),
          })),
        )
        .execute();
    }
  }
  if (deletes.length > 0) {
    await trx
      .deleteFrom('calendar_ranges')
      .where((eb) => eb(eb.refTuple('listing_id', 'booking_id'), 'in', deletes.map((d) => eb.tuple(d.listingId, d.bookingId))))
      .execute();
  }
}

/** Held and booked days per listing, from the listing calendar's events. */
export const listingAvailabilityProjection = defineProjection<ListingAvailabilityTables>({
  name: listingAvailabilityProjectionName,
  version: 1,
  eventTypes: codec.eventTypes,
  migrate,
  apply,
});
