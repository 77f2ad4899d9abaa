import { z } from 'zod';
import { addDays, calendarDateSchema, daysBetween, type CalendarDate } from './calendar-date.js';

/** Nights from `startDate` (inclusive) to `endDate` (exclusive): `[startDate, endDate)`. */
export const dateRangeSchema = z.object({ startDate: calendarDateSchema, endDate: calendarDateSchema });
export type DateRange = z.infer<typeof dateRangeSchema>;

export function nights(range: DateRange): number {
  return daysBetween(range.startDate, range.endDate);
}

/** The date of the last night of a range of at least one night: the day before its (exclusive) end. */
export function lastNight(range: DateRange): CalendarDate {
  return addDays(range.endDate, -1);
}

/** Half-open ranges overlap when each starts before the other ends. */
export function overlaps(a: DateRange, b: DateRange): boolean {
  return a.startDate < b.endDate && b.startDate < a.endDate;
}

export function contains(range: DateRange, date: CalendarDate): boolean {
  return range.startDate <= date && date < range.endDate;
}
