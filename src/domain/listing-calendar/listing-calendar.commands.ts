import { z } from 'zod';
import { instantSchema } from '../shared/calendar-date.js';
import { dateRangeSchema } from '../shared/date-range.js';
import { timeZoneSchema } from '../shared/time-zone.js';
import { releaseReasonSchema } from './listing-calendar.events.js';

/** `now` and the listing's `timeZone` decide which day is "today"; the application supplies both. */
export const holdDatesSchema = z.object({
  type: z.literal('HoldDates'),
  data: z.object({
    listingId: z.string().min(1),
    bookingId: z.string().min(1),
    ...dateRangeSchema.shape,
    holdExpiresAt: instantSchema,
    now: instantSchema,
    timeZone: timeZoneSchema,
    /**
     * Lapsed holds in the way that may be displaced: those whose payment the caller found had
     * not gone through. The calendar cannot know it, and a payment that went through in time
     * must keep its dates while the payment process catches up to book them.
     */
    displaceable: z.array(z.string().min(1)).max(1000).optional(),
  }),
});

export const bookDatesSchema = z.object({
  type: z.literal('BookDates'),
  data: z.object({ listingId: z.string().min(1), bookingId: z.string().min(1) }),
});

export const releaseDatesSchema = z.object({
  type: z.literal('ReleaseDates'),
  data: z.object({
    listingId: z.string().min(1),
    bookingId: z.string().min(1),
    reason: releaseReasonSchema,
    now: instantSchema,
  }),
});

/**
 * The listing was deactivated: refuse new holds. `afterDeactivation`: the close that follows a
 * deactivation's append is recorded even on a closed calendar (`alreadyClosed`), so that a reopen
 * decided on the calendar as it was before (by a reactivation that read the listing before the
 * deactivation) finds the calendar moved and looks again instead of opening it.
 */
export const closeCalendarSchema = z.object({
  type: z.literal('CloseCalendar'),
  data: z.object({ listingId: z.string().min(1), afterDeactivation: z.literal(true).optional() }),
});

/** The listing was reactivated: take new holds again. */
export const reopenCalendarSchema = z.object({
  type: z.literal('ReopenCalendar'),
  data: z.object({ listingId: z.string().min(1) }),
});

export const listingCalendarCommandSchema = z.discriminatedUnion('type', [
  holdDatesSchema,
  bookDatesSchema,
  releaseDatesSchema,
  closeCalendarSchema,
  reopenCalendarSchema,
]);
export type ListingCalendarCommand = z.infer<typeof listingCalendarCommandSchema>;
export type HoldDates = z.infer<typeof holdDatesSchema>;
export type BookDates = z.infer<typeof bookDatesSchema>;
export type ReleaseDates = z.infer<typeof releaseDatesSchema>;
export type CloseCalendar = z.infer<typeof closeCalendarSchema>;
export type ReopenCalendar = z.infer<typeof reopenCalendarSchema>;
