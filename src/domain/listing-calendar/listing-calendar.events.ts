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

export const listingCalendarEventSchema = z.discriminatedUnion('type', [datesHeldSchema, datesBookedSchema, datesReleasedSchema]);
export type ListingCalendarEvent = z.infer<typeof listingCalendarEventSchema>;
export type DatesHeld = z.infer<typeof datesHeldSchema>;
export type DatesBooked = z.infer<typeof datesBookedSchema>;
export type DatesReleased = z.infer<typeof datesReleasedSchema>;
