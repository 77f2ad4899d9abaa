/** Which revision of each listing's calendar stream the ranges reflect. */
export type ListingCalendarsTable = {
  listing_id: string;
  version: number;
};

/**
 * The live ranges of each listing's calendar, one per booking, `[start_date, end_date)` as
 * `YYYY-MM-DD` text: held while the booking is being paid, then booked. A released range is
 * deleted. A held range whose `hold_expires_at` has passed blocks nobody (the calendar lets a
 * new hold displace it), so readers treat it as free.
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
