import { z } from 'zod';

/**
 * Calendar days as `YYYY-MM-DD` strings. Day arithmetic goes through UTC midnight, where
 * every day has 24 hours, so it never trips over daylight-saving changes.
 */
export const calendarDateSchema = z.iso.date();
export type CalendarDate = z.infer<typeof calendarDateSchema>;

/** An instant as ISO 8601 with an offset, e.g. `2026-03-01T09:00:00.000Z`. */
export const instantSchema = z.iso.datetime({ offset: true });
export type Instant = z.infer<typeof instantSchema>;

/**
 * Dates and instants as requests may name them: within years 1970–8999. Day arithmetic past
 * 9999 leaves the `YYYY-MM-DD` form (so a walk over days compared as strings never ends), and
 * time zone rules before 1000 come back in another shape; no booking, appointment or search
 * needs either.
 */
const supportedYears = { first: 1970, last: 8999 } as const;
const inSupportedYears = (text: string) => {
  const year = Number(text.slice(0, 4));
  return year >= supportedYears.first && year <= supportedYears.last;
};
const supportedYearsMessage = `must fall in the years ${supportedYears.first}–${supportedYears.last}`;
export const requestDateSchema = calendarDateSchema.refine(inSupportedYears, supportedYearsMessage);
/** The year is checked as written; an offset moves it across a year boundary by hours at most. */
export const requestInstantSchema = instantSchema.refine(inSupportedYears, supportedYearsMessage);

const dayMs = 86_400_000;

function toUtcMs(date: CalendarDate): number {
  return Date.parse(`${date}T00:00:00Z`);
}

export function addDays(date: CalendarDate, days: number): CalendarDate {
  return new Date(toUtcMs(date) + days * dayMs).toISOString().slice(0, 10);
}

/** Whole days from `from` to `to` (negative if `to` is earlier). */
export function daysBetween(from: CalendarDate, to: CalendarDate): number {
  return Math.round((toUtcMs(to) - toUtcMs(from)) / dayMs);
}
