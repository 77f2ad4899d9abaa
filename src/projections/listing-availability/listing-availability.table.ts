/** Which revision of each listing's calendar stream the ranges reflect. */
export type ListingCalendarsTable = {
  listing_id: string;
  version: number;
};

/**
 * The live ranges of each listing's calendar, one per booking, `[start_date, end_date)` as
 * `YYYY-MM-DD` text: held while the booking is being paid, then booked. A released range is
 * deleted. A held range whose `hold_expires_at` has passed is shown as free: the calendar lets
 * a new hold displace it once its payment is found not to have gone through. One paid in time,
 * which the payment process has yet to book, is shown free too for as long as that process is
 * behind, and a request for it then gets 409 dates-unavailable.
 */
export type CalendarRangesTable = {
  listing_id: string;
  booking_id: string;
  start_date: string;
  end_date: string;
  status: 'held' | 'booked';
  hold_expires_at: Date | null;
};

export type ListingAvailabilityTables = { listing_calendars: ListingCalendarsTable; calendar_ranges: CalendarRangesTable };

export type CalendarRangeRow = CalendarRangesTable;

export const listingAvailabilityProjectionName = 'listing_availability';
