import { z } from 'zod';
import { calendarDateSchema, instantSchema } from '../shared/calendar-date.js';
import { dateRangeSchema } from '../shared/date-range.js';

export const datesHeldSchema = z.object({
  type: z.literal('DatesHeld'),
  data: z.object({
    listingId: z.string().min(1),
    bookingId: z.string().min(1),
    ...dateRangeSchema.shape,
    holdExpiresAt: instantSchema,
    /**
     * "Today" in the listing's time zone when the hold was taken. No later hold may start
     * before it, so ranges that ended by then can be dropped from the state for good.
     */
    heldOn: calendarDateSchema,
  }),
});

/** The hold became firm (the booking was paid); it no longer lapses. */
export const datesBookedSchema = z.object({
  type: z.literal('DatesBooked'),
  data: z.object({ listingId: z.string().min(1), bookingId: z.string().min(1), ...dateRangeSchema.shape }),
});

export const releaseReasonSchema = z.enum(['cancelled', 'expired', 'failed']);
export type ReleaseReason = z.infer<typeof releaseReasonSchema>;

export const datesReleasedSchema = z.object({
  type: z.literal('DatesReleased'),
  data: z.object({
    listingId: z.string().min(1),
    bookingId: z.string().min(1),
    ...dateRangeSchema.shape,
    reason: releaseReasonSchema,
  }),
});

/**
 * The listing stopped taking bookings (it was deactivated): no new hold is granted until the
 * calendar reopens. Dates already held or booked stay. The calendar carries this, not only the
 * listing, because it is where bookings are taken with an expected revision: a booking decided on
 * the listing as it was before either lands before the close or is decided again after it.
 * `alreadyClosed`: the close that follows a deactivation, recorded on a calendar closed already
 * so that a reopen decided on the calendar before it is refused and looks again; it changes
 * nothing else.
 */
export const calendarClosedSchema = z.object({
  type: z.literal('CalendarClosed'),
  data: z.object({ listingId: z.string().min(1), alreadyClosed: z.literal(true).optional() }),
});

/** The listing takes bookings again (it was reactivated). */
export const calendarReopenedSchema = z.object({
  type: z.literal('CalendarReopened'),
  data: z.object({ listingId: z.string().min(1) }),
});

export const listingCalendarEventSchema = z.discriminatedUnion('type', [
  datesHeldSchema,
  datesBookedSchema,
  datesReleasedSchema,
  calendarClosedSchema,
  calendarReopenedSchema,
]);
export type ListingCalendarEvent = z.infer<typeof listingCalendarEventSchema>;
export type DatesHeld = z.infer<typeof datesHeldSchema>;
export type DatesBooked = z.infer<typeof datesBookedSchema>;
export type DatesReleased = z.infer<typeof datesReleasedSchema>;
export type CalendarClosed = z.infer<typeof calendarClosedSchema>;
export type CalendarReopened = z.infer<typeof calendarReopenedSchema>;
