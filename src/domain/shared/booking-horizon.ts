import { daysBetween, type CalendarDate, type Instant } from './calendar-date.js';

/**
 * How far ahead anything may be booked: a doctor's slot may start at most this many days after
 * now, and every night of a stay (its last included) fall at most this many days after today in
 * the listing's time zone, so nothing is booked past the horizon. Without a bound one
 * patient (or guest) could take a slot on each of tens of thousands of future days (request dates
 * run to the year 8999), blocking the doctor or the listing for years; and an aggregate's state
 * keeps every live booking, so each command on it would pay for all of them (30,000 slots made a
 * doctor's schedule 3.8 MB, folded in 8.5 s). A year covers any real planning: a yearly check-up,
 * next summer's holiday.
 */
export const maxDaysAhead = 365;

const dayMs = 86_400_000;

/** `start` is more than `maxDaysAhead` days after `now`. */
export function isTooFarAhead(start: Instant, now: Instant): boolean {
  return Date.parse(start) - Date.parse(now) > maxDaysAhead * dayMs;
}

/** `date` is more than `maxDaysAhead` days after `today`. */
export function isDateTooFarAhead(date: CalendarDate, today: CalendarDate): boolean {
  return daysBetween(today, date) > maxDaysAhead;
}
