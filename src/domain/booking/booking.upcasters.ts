import { z } from 'zod';
import { calendarDateSchema, daysBetween, instantSchema } from '../shared/calendar-date.js';
import type { EventUpcaster } from '../shared/upcaster.js';
import type { BookingEvent, BookingRequestedData } from './booking.events.js';

/**
 * `BookingRequested` as first written, when the service sold in euros only and reckoned every
 * listing's days in UTC: no currency, no time zone, no night count, and the prices under other
 * names. Frozen: stored events of this shape exist and are never rewritten.
 */
export const bookingRequestedV1Schema = z.object({
  bookingId: z.string().min(1),
  listingId: z.string().min(1),
  consumerId: z.string().min(1),
  ownerId: z.string().min(1),
  startDate: calendarDateSchema,
  endDate: calendarDateSchema,
  /** Euro cents. */
  nightlyRate: z.number().int().nonnegative(),
  /** Euro cents. */
  totalAmount: z.number().int().nonnegative(),
  holdExpiresAt: instantSchema,
});
export type BookingRequestedV1 = z.infer<typeof bookingRequestedV1Schema>;

/** Fills in what version 1 left implicit: euros, UTC, and the nights the dates already say. */
export function upcastBookingRequestedV1(v1: BookingRequestedV1): BookingRequestedData {
  return {
    bookingId: v1.bookingId,
    listingId: v1.listingId,
    consumerId: v1.consumerId,
    ownerId: v1.ownerId,
    startDate: v1.startDate,
    endDate: v1.endDate,
    nights: daysBetween(v1.startDate, v1.endDate),
    pricePerNight: v1.nightlyRate,
    total: v1.totalAmount,
    currency: 'EUR',
    timeZone: 'UTC',
    holdExpiresAt: v1.holdExpiresAt,
  };
}

export const bookingUpcasters: readonly EventUpcaster<BookingEvent>[] = [
  {
    type: 'BookingRequested',
    fromVersion: 1,
    toVersion: 2,
    upcast: (data: unknown): BookingRequestedData => upcastBookingRequestedV1(bookingRequestedV1Schema.parse(data)),
  },
];
