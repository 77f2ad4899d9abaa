import { z } from 'zod';
import { actorSchema } from '../shared/actor.js';
import { calendarDateSchema, instantSchema } from '../shared/calendar-date.js';
import { currencySchema } from '../shared/money.js';
import { timeZoneSchema } from '../shared/time-zone.js';

/** The listing as the application read it just before requesting; the booking keeps these facts. */
export const listingFactsSchema = z.object({
  ownerId: z.string().min(1),
  active: z.boolean(),
  pricePerDay: z.number().int().positive(),
  currency: currencySchema,
  timeZone: timeZoneSchema,
});
export type ListingFacts = z.infer<typeof listingFactsSchema>;

export const requestBookingSchema = z.object({
  type: z.literal('RequestBooking'),
  data: z.object({
    bookingId: z.string().min(1),
    listingId: z.string().min(1),
    consumerId: z.string().min(1),
    startDate: calendarDateSchema,
    endDate: calendarDateSchema,
    holdExpiresAt: instantSchema,
    now: instantSchema,
    listing: listingFactsSchema,
  }),
});

/** Sent by the payment process manager when the payment for this booking succeeded. */
export const markBookingPaidSchema = z.object({
  type: z.literal('MarkBookingPaid'),
  data: z.object({
    bookingId: z.string().min(1),
    paymentId: z.string().min(1),
    amount: z.number().int().nonnegative(),
    currency: currencySchema,
  }),
});

/** Sent by the process manager once the calendar made the dates firm. */
export const confirmBookingSchema = z.object({
  type: z.literal('ConfirmBooking'),
  data: z.object({ bookingId: z.string().min(1) }),
});

export const completeBookingSchema = z.object({
  type: z.literal('CompleteBooking'),
  data: z.object({ bookingId: z.string().min(1), actor: actorSchema, now: instantSchema }),
});

export const cancelBookingSchema = z.object({
  type: z.literal('CancelBooking'),
  data: z.object({ bookingId: z.string().min(1), actor: actorSchema, reason: z.string().min(1).max(1000), now: instantSchema }),
});

/** Sent by the hold-expiry process manager. */
export const expireBookingSchema = z.object({
  type: z.literal('ExpireBooking'),
  data: z.object({ bookingId: z.string().min(1), now: instantSchema }),
});

/** Sent by a request without Idempotency-Key whose booking append failed: the id is given up unless the booking was recorded. */
export const abandonBookingSchema = z.object({
  type: z.literal('AbandonBooking'),
  data: z.object({ bookingId: z.string().min(1), now: instantSchema }),
});

export const bookingCommandSchema = z.discriminatedUnion('type', [
  requestBookingSchema,
  markBookingPaidSchema,
  confirmBookingSchema,
  completeBookingSchema,
  cancelBookingSchema,
  expireBookingSchema,
  abandonBookingSchema,
]);
export type BookingCommand = z.infer<typeof bookingCommandSchema>;
export type RequestBooking = z.infer<typeof requestBookingSchema>;
export type MarkBookingPaid = z.infer<typeof markBookingPaidSchema>;
export type ConfirmBooking = z.infer<typeof confirmBookingSchema>;
export type CompleteBooking = z.infer<typeof completeBookingSchema>;
export type CancelBooking = z.infer<typeof cancelBookingSchema>;
export type ExpireBooking = z.infer<typeof expireBookingSchema>;
export type AbandonBooking = z.infer<typeof abandonBookingSchema>;
