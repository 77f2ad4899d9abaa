import { z } from 'zod';
import { calendarDateSchema, instantSchema } from '../shared/calendar-date.js';
import { currencySchema } from '../shared/money.js';
import { personal } from '../shared/personal-data.js';

const amountSchema = z.number().int().nonnegative().max(Number.MAX_SAFE_INTEGER);

/**
 * Version 2 (see booking.upcasters.ts for version 1). Carries the listing facts as they were
 * when the booking was requested: a later price change or move of time zone does not touch it.
 */
export const bookingRequestedDataSchema = z.object({
  bookingId: z.string().min(1),
  listingId: z.string().min(1),
  consumerId: z.string().min(1),
  ownerId: z.string().min(1),
  startDate: calendarDateSchema,
  endDate: calendarDateSchema,
  nights: z.number().int().positive(),
  pricePerNight: amountSchema,
  /** nights × pricePerNight, in minor units of `currency`. */
  total: amountSchema,
  currency: currencySchema,
  /**
   * The listing's time zone: which day "today" is for the cancellation policy and completion.
   * Checked when the command is, not again here: a stored event must always decode.
   */
  timeZone: z.string().min(1),
  holdExpiresAt: instantSchema,
});
export type BookingRequestedData = z.infer<typeof bookingRequestedDataSchema>;

export const bookingRequestedSchema = z.object({ type: z.literal('BookingRequested'), data: bookingRequestedDataSchema });

export const bookingPaidSchema = z.object({
  type: z.literal('BookingPaid'),
  data: z.object({ bookingId: z.string().min(1), paymentId: z.string().min(1), amount: amountSchema, currency: currencySchema }),
});

/** The calendar made the held dates firm. */
export const bookingConfirmedSchema = z.object({
  type: z.literal('BookingConfirmed'),
  data: z.object({ bookingId: z.string().min(1) }),
});

export const bookingCompletedSchema = z.object({
  type: z.literal('BookingCompleted'),
  data: z.object({ bookingId: z.string().min(1) }),
});

export const cancellerSchema = z.enum(['consumer', 'owner', 'admin']);
export type Canceller = z.infer<typeof cancellerSchema>;

export const bookingCancelledSchema = z.object({
  type: z.literal('BookingCancelled'),
  data: z.object({
    bookingId: z.string().min(1),
    /** In which capacity the actor cancelled; it decides the refund. */
    cancelledBy: cancellerSchema,
    cancelledById: z.string().min(1),
    reason: personal(z.string().min(1).max(1000)),
    /** What the policy grants; the amount is 0 when nothing was paid. */
    refundPercent: z.number().int().min(0).max(100),
    refundAmount: amountSchema,
    currency: currencySchema,
  }),
});

/** The hold ran out before the booking was paid. */
export const bookingExpiredSchema = z.object({
  type: z.literal('BookingExpired'),
  data: z.object({ bookingId: z.string().min(1) }),
});

/**
 * The request that held dates for this booking failed before it could tell whether the booking
 * was recorded; it gave the id up, and then the dates back. Claims the id first (only on a stream
 * still empty), so a booking append of that request landing late is refused rather than become a
 * booking whose dates were given back.
 */
export const bookingAbandonedSchema = z.object({
  type: z.literal('BookingAbandoned'),
  data: z.object({ bookingId: z.string().min(1), abandonedAt: instantSchema }),
});

export const bookingEventSchema = z.discriminatedUnion('type', [
  bookingRequestedSchema,
  bookingPaidSchema,
  bookingConfirmedSchema,
  bookingCompletedSchema,
  bookingCancelledSchema,
  bookingExpiredSchema,
  bookingAbandonedSchema,
]);
export type BookingEvent = z.infer<typeof bookingEventSchema>;
export type BookingRequested = z.infer<typeof bookingRequestedSchema>;
export type BookingPaid = z.infer<typeof bookingPaidSchema>;
export type BookingConfirmed = z.infer<typeof bookingConfirmedSchema>;
export type BookingCompleted = z.infer<typeof bookingCompletedSchema>;
export type BookingCancelled = z.infer<typeof bookingCancelledSchema>;
export type BookingExpired = z.infer<typeof bookingExpiredSchema>;
export type BookingAbandoned = z.infer<typeof bookingAbandonedSchema>;
