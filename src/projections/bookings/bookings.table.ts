import type { BookingStatus } from '../../domain/booking/booking.status.js';

/**
 * One row per booking. Calendar dates are `YYYY-MM-DD` text (they compare correctly as text, and
 * pg would turn a `date` into a local-midnight JS Date); amounts are `bigint` in minor units,
 * which pg returns as strings. `version` is the revision of the booking stream's last event
 * applied to the row.
 */
export type BookingsTable = {
  booking_id: string;
  listing_id: string;
  consumer_id: string;
  owner_id: string;
  start_date: string;
  end_date: string;
  nights: number;
  price_per_night: string;
  total: string;
  currency: string;
  time_zone: string;
  status: BookingStatus;
  hold_expires_at: Date;
  /** When the store recorded the request: the order of the pages, newest first. */
  requested_at: Date;
  payment_id: string | null;
  paid_amount: string | null;
  cancelled_by: string | null;
  refund_percent: number | null;
  refund_amount: string | null;
  updated_at: Date;
  version: number;
};

export type BookingsTables = { bookings: BookingsTable };

export type BookingRow = BookingsTable;

export const bookingsProjectionName = 'bookings';
