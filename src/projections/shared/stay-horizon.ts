import { todayIn } from '../../domain/listing-calendar/stay-range.rules.js';
import { isDateTooFarAhead } from '../../domain/shared/booking-horizon.js';
import type { CalendarDate } from '../../domain/shared/calendar-date.js';
import { lastNight, type DateRange } from '../../domain/shared/date-range.js';
import { isTimeZone } from '../../domain/shared/time-zone.js';

/**
 * Whether a stay of a listing in `timeZone` may hold a night on a given day at `now`: from today
 * there to the far end of the booking horizon, decided as a booking request decides it
 * (`todayIn`, `assertBookableRange`: `dates-in-past`, `dates-too-far-ahead`), so that no read
 * offers a night the command API refuses. Both ends move with the clock, so they are applied when
 * a read is answered, never stored in a read model. A zone the runtime does not know takes no
 * stay at all: booking refuses it (`invalid-time-zone`), and a read must not fail for everyone.
 */
export function bookableNight(timeZone: string, now: Date): (night: CalendarDate) => boolean {
  if (!isTimeZone(timeZone)) return () => false;
  const today = todayIn(timeZone, now.toISOString());
  return (night) => today <= night && !isDateTooFarAhead(night, today);
}

/** Booking takes a stay's dates exactly when it takes its first and its last night: the nights between follow. */
function bookableStay(timeZone: string, now: Date, stay: DateRange): boolean {
  const bookable = bookableNight(timeZone, now);
  return bookable(stay.startDate) && bookable(lastNight(stay));
}

/** The zones furthest behind and furthest ahead of UTC (−12 h, +14 h): every listing's today lies between theirs. */
const furthestBehind = 'Etc/GMT+12';
const furthestAhead = 'Etc/GMT-14';

/**
 * The time zones in which booking takes the dates of `stay` at `now`. A later today makes the
 * first night harder to take and the last easier, so a stay taken where today is earliest and
 * where it is latest is taken everywhere (`'every'`); one starting before the earliest today, or
 * ending past the horizon of the latest, nowhere; and otherwise (a stay starting about today or
 * ending about a year ahead) in those of `zones()` where it is. So the zones in use are read only
 * for a stay at an edge.
 */
export async function zonesWhereStayBookable(stay: DateRange, now: Date, zones: () => Promise<readonly string[]>): Promise<'every' | readonly string[]> {
  if (bookableStay(furthestBehind, now, stay) && bookableStay(furthestAhead, now, stay)) return 'every';
  const instant = now.toISOString();
  if (stay.startDate < todayIn(furthestBehind, instant) || isDateTooFarAhead(lastNight(stay), todayIn(furthestAhead, instant))) return [];
  return (await zones()).filter((zone) => bookableStay(zone, now, stay));
}
