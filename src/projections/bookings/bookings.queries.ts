import type { Kysely } from 'kysely';
import type { BookingStatus } from '../../domain/booking/booking.status.js';
import { latestPaymentOfBooking, type PaymentView } from '../payments/payments.queries.js';
import type { Database } from '../read-models.js';
import { amount, toPage, type Page, type PageRequest } from '../shared/page.js';
import type { BookingRow } from './bookings.table.js';

export type BookingView = {
  readonly id: string;
  readonly listingId: string;
  readonly consumerId: string;
  readonly ownerId: string;
  readonly startDate: string;
  readonly endDate: string;
  readonly nights: number;
  readonly pricePerNight: number;
  readonly total: number;
  readonly currency: string;
  readonly status: BookingStatus;
  readonly holdExpiresAt: string;
  readonly requestedAt: string;
  readonly paidAmount: number | null;
  readonly cancellation: { readonly cancelledBy: string; readonly refundPercent: number; readonly refundAmount: number } | null;
  readonly version: number;
};

/** Newest first; the key of the last row of a page. */
export type BookingSortKey = { readonly requestedAt: string; readonly bookingId: string };

export type BookingFilter = { readonly status?: BookingStatus | undefined };

export function toBookingView(row: BookingRow): BookingView {
  return {
    id: row.booking_id,
    listingId: row.listing_id,
    consumerId: row.consumer_id,
    ownerId: row.owner_id,
    startDate: row.start_date,
    endDate: row.end_date,
    nights: row.nights,
    pricePerNight: amount(row.price_per_night),
    total: amount(row.total),
    currency: row.currency,
    status: row.status,
    holdExpiresAt: row.hold_expires_at.toISOString(),
    requestedAt: row.requested_at.toISOString(),
    paidAmount: row.paid_amount === null ? null : amount(row.paid_amount),
    cancellation:
      row.cancelled_by === null
        ? null
        : { cancelledBy: row.cancelled_by, refundPercent: row.refund_percent ?? 0, refundAmount: amount(row.refund_amount ?? '0') },
    version: row.version,
  };
}

async function bookingsOf(
  db: Kysely<Database>,
  party: 'consumer_id' | 'owner_id',
  partyId: string,
  filter: BookingFilter,
  page: PageRequest<BookingSortKey>,
): Promise<Page<BookingView, BookingSortKey>> {
  const { after, limit } = page;
  let query = db.selectFrom('rm_bookings.bookings').selectAll().where(party, '=', partyId);
  if (filter.status) query = query.where('status', '=', filter.status);
  if (after) query = query.where((eb) => eb(eb.refTuple('requested_at', 'booking_id'), '<', eb.tuple(new Date(after.requestedAt), after.bookingId)));
  const rows = await query.orderBy('requested_at', 'desc').orderBy('booking_id', 'desc').limit(limit + 1).execute();
  return toPage(rows, limit, toBookingView, (row) => ({ requestedAt: row.requested_at.toISOString(), bookingId: row.booking_id }));
}

/** The consumer's own bookings. */
export function bookingsOfConsumer(db: Kysely<Database>, consumerId: string, filter: BookingFilter, page: PageRequest<BookingSortKey>) {
  return bookingsOf(db, 'consumer_id', consumerId, filter, page);
}

/** Bookings of the owner's listings. */
export function bookingsOfOwner(db: Kysely<Database>, ownerId: string, filter: BookingFilter, page: PageRequest<BookingSortKey>) {
  return bookingsOf(db, 'owner_id', ownerId, filter, page);
}

/** One booking with the state of its latest payment, read from the payments read model. */
export type BookingDetails = BookingView & { readonly payment: PaymentView | null };

export async function findBooking(db: Kysely<Database>, bookingId: string): Promise<BookingDetails | undefined> {
  const row = await db.selectFrom('rm_bookings.bookings').selectAll().where('booking_id', '=', bookingId).executeTakeFirst();
  if (!row) return undefined;
  const payment = await latestPaymentOfBooking(db, bookingId);
  return { ...toBookingView(row), payment: payment ?? null };
}
