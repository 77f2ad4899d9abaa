import type { Kysely } from 'kysely';
import { addDays, type CalendarDate } from '../../domain/shared/calendar-date.js';
import type { Database } from '../read-models.js';

export type DayStatus = 'free' | 'held' | 'booked';
export type DayAvailability = { readonly date: CalendarDate; readonly status: DayStatus };

/**
 * Each day of `[from, to)` for one listing: booked, held (by a hold that has not lapsed at
 * `now`), or free. The caller bounds the range.
 */
export async function listingAvailability(
  db: Kysely<Database>,
  listingId: string,
  range: { readonly from: CalendarDate; readonly to: CalendarDate },
  now: Date,
): Promise<DayAvailability[]> {
  const ranges = await db
    .selectFrom('rm_listing_availability.calendar_ranges')
    .select(['start_date', 'end_date', 'status', 'hold_expires_at'])
    .where('listing_id', '=', listingId)
    .where('start_date', '<', range.to)
    .where('end_date', '>', range.from)
    .execute();
  const live = ranges.filter((r) => r.status === 'booked' || (r.hold_expires_at !== null && r.hold_expires_at > now));
  const days: DayAvailability[] = [];
  for (let date = range.from; date < range.to; date = addDays(date, 1)) {
    const taken = live.find((r) => r.start_date <= date && date < r.end_date);
    days.push({ date, status: taken?.status ?? 'free' });
  }
  return days;
}
