import { z } from 'zod';
import { instantSchema, type Instant } from './calendar-date.js';

/** A stretch of time `[start, end)`; instants as ISO 8601 strings. */
export const timeSlotSchema = z.object({ start: instantSchema, end: instantSchema });
export type TimeSlot = z.infer<typeof timeSlotSchema>;

/**
 * One spelling per instant (UTC, milliseconds, `Z`), so that the same moment written with
 * different offsets is the same key and compares correctly as a string.
 */
export function utcInstant(instant: Instant | number): Instant {
  return new Date(instant).toISOString();
}

export function addMinutes(instant: Instant, minutes: number): Instant {
  return utcInstant(Date.parse(instant) + minutes * 60_000);
}

/** `a` is strictly before `b`. */
export function isBefore(a: Instant, b: Instant): boolean {
  return Date.parse(a) < Date.parse(b);
}

export function minutesBetween(from: Instant, to: Instant): number {
  return (Date.parse(to) - Date.parse(from)) / 60_000;
}

/** A slot that ends after it starts; anything else is a client or application bug. */
export function isProperSlot(slot: TimeSlot): boolean {
  return isBefore(slot.start, slot.end);
}

/** Half-open slots overlap when each starts before the other ends; touching is not overlapping. */
export function slotsOverlap(a: TimeSlot, b: TimeSlot): boolean {
  return isBefore(a.start, b.end) && isBefore(b.start, a.end);
}

export function sameSlot(a: TimeSlot, b: TimeSlot): boolean {
  return Date.parse(a.start) === Date.parse(b.start) && Date.parse(a.end) === Date.parse(b.end);
}
