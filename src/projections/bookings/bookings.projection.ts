import { sql, type Kysely, type Transaction } from 'kysely';
import { aggregates } from '../../application/aggregates/aggregates.js';
import type { RecordedEvent } from '../../application/ports/event-store.js';
import { assertNever } from '../../domain/shared/decider.js';
import type { BookingEvent } from '../../domain/booking/booking.events.js';
import { decodeKnown, distinct, foldRows } from '../shared/batch-fold.js';
import { withinParameterLimit } from '../shared/parameter-limit.js';
import { defineProjection } from '../runtime/projection.js';
import { bookingsProjectionName, type BookingRow, type BookingsTables } from './bookings.table.js';

const codec = aggregates.booking.codec;

async function migrate(db: Kysely<unknown>): Promise<void> {
  await db.schema
    .createTable('bookings')
    .addColumn('booking_id', 'text', (c) => c.primaryKey())
    .addColumn('listing_id', 'text', (c) => c.notNull())
    .addColumn('consumer_id', 'text', (c) => c.notNull())
    .addColumn('owner_id', 'text', (c) => c.notNull())
    .addColumn('start_date', 'text', (c) => c.notNull())
    .addColumn('end_date', 'text', (c) => c.notNull())
    .addColumn('nights', 'integer', (c) => c.notNull())
    .addColumn('price_per_night', 'bigint', (c) => c.notNull())
    .addColumn('total', 'bigint', (c) => c.notNull())
    .addColumn('currency', 'text', (c) => c.notNull())
    .addColumn('time_zone', 'text', (c) => c.notNull())
    .addColumn('status', 'text', (c) => c.notNull())
    .addColumn('hold_expires_at', 'timestamptz', (c) => c.notNull())
    .addColumn('requested_at', 'timestamptz', (c) => c.notNull())
    .addColumn('payment_id', 'text')
    .addColumn('paid_amount', 'bigint')
    .addColumn('cancelled_by', 'text')
    .addColumn('refund_percent', 'integer')
    .addColumn('refund_amount', 'bigint')
    .addColumn('updated_at', 'timestamptz', (c) => c.notNull())
    .addColumn('version', 'integer', (c) => c.notNull())
    .execute();
  // The pages: own bookings and an owner's, newest first, optionally of one status.
  for (const party of ['consumer_id', 'owner_id']) {
    await db.schema.createIndex(`bookings_${party}_idx`).on('bookings').columns([party, 'requested_at desc', 'booking_id desc']).execute();
    await db.schema
      .createIndex(`bookings_${party}_status_idx`)
      .on('bookings')
      .columns([party, 'status', 'requested_at desc', 'booking_id desc'])
      .execute();
  }
}

function evolve(row: BookingRow | undefined, event: BookingEvent, recorded: RecordedEvent): BookingRow | undefined {
  const at = { version: recorded.revision, updated_at: recorded.recordedAt };
  if (event.type === 'BookingRequested') {
    const d = event.data;
    return {
      booking_id: d.bookingId,
      listing_id: d.listingId,
      consumer_id: d.consumerId,
      owner_id: d.ownerId,
      start_date: d.startDate,
      end_date: d.endDate,
      nights: d.nights,
      price_per_night: String(d.pricePerNight),
      total: String(d.total),
      currency: d.currency,
      time_zone: d.timeZone,
      status: 'requested',
      hold_expires_at: new Date(d.holdExpiresAt),
      requested_at: recorded.recordedAt,
      payment_id: null,
      paid_amount: null,
      cancelled_by: null,
      refund_percent: null,
      refund_amount: null,
      ...at,
    };
  }
  if (!row) return undefined;
  switch (event.type) {
    case 'BookingPaid':
      return { ...row, ...at, status: 'paid', payment_id: event.data.paymentId, paid_amount: String(event.data.amount) };
    case 'BookingConfirmed':
      return { ...row, ...at, status: 'confirmed' };
    case 'BookingCompleted':
      return { ...row, ...at, status: 'completed' };
    case 'BookingCancelled': {
      const { cancelledBy, refundPercent, refundAmount } = event.data;
      return { ...row, ...at, status: 'cancelled', cancelled_by: cancelledBy, refund_percent: refundPercent, refund_amount: String(refundAmount) };
    }
    case 'BookingExpired':
      return { ...row, ...at, status: 'expired' };
    // A booking never recorded has no row, and none is made for it.
    case 'BookingAbandoned':
      return row;
    default:
      return assertNever(event);
  }
}

async function apply(trx: Transaction<BookingsTables>, events: readonly RecordedEvent[]): Promise<void> {
  const decoded = decodeKnown(codec, events);
  if (decoded.length === 0) return;
  const ids = distinct(decoded.map(({ event }) => event.data.bookingId));
  const loaded = await trx.selectFrom('bookings').selectAll().where('booking_id', 'in', ids).execute();
  const rows = foldRows({ events: decoded, loaded, keyOfRow: (row) => row.booking_id, keyOfEvent: (event) => event.data.bookingId, evolve });
  if (rows.length === 0) return;
  for (const run of withinParameterLimit(rows)) {
    await trx
      .insertInto('bookings')
      .values(run)
      .onConflict((oc) =>
        oc
          .column('booking_id')
          .doUpdateSet((eb) => ({
            status: eb.ref('excluded.status'),
            payment_id: eb.ref('excluded.payment_id'),
            paid_amount: eb.ref('excluded.paid_amount'),
            cancelled_by: eb.ref('excluded.cancelled_by'),
            refund_percent: eb.ref('excluded.refund_percent'),
            refund_amount: eb.ref('excluded.refund_amount'),
            updated_at: eb.ref('excluded.updated_at'),
            version: eb.ref('excluded.version'),
          }))
          // Belt and braces: a row never goes back to an older revision.
          .where('bookings.version', '<', sql<number>`excluded.version`),
      )
      .execute();
  }
}

/** Bookings by consumer, by owner and by id. Only the booking's own stream feeds it. */
export const bookingsProjection = defineProjection<BookingsTables>({
  name: bookingsProjectionName,
  version: 1,
  eventTypes: codec.eventTypes,
  migrate,
  apply,
});
