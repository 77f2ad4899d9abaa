import { todayIn } from '../../domain/listing-calendar/stay-range.rules.js';
import { isDateTooFarAhead } from '../../domain/shared/booking-horizon.js';
import type { CalendarDate } from '../../domain/shared/calendar-date.js';
import { isTimeZone } from '../../domain/shared/time-zone.js';

/**
 * Whether a night on a given day of a listing in `timeZone` is within the booking horizon at
 * `now`, decided as a booking request decides it for a stay's last night (`todayIn`,
 * `isDateTooFarAhead`), so that no read offers a night the command API refuses: a stay is
 * bookable, as far as the horizon goes, exactly when its last night is. The horizon moves with the
 * clock, so it is applied when a read is answered, never stored in a read model. A zone the
 * runtime does not know takes no stay at all: booking refuses it (`invalid-time-zone`), and a read
 * must not fail for everyone.
 */
export function withinStayHorizon(timeZone: string, now: Date): (night: CalendarDate) => boolean {
  if (!isTimeZone(timeZone)) return () => false;
  const today = todayIn(timeZone, now.toISOString());
  return (night) => !isDateTooFarAhead(night, today);
}

/** The zones furthest behind and furthest ahead of UTC (−12 h, +14 h): every listing's today lies between theirs. */
const furthestBehind = 'Etc/GMT+12';
const furthestAhead = 'Etc/GMT-14';

/**
 * The time zones in which a night on `night` is within the horizon at `now`: `'every'` when it
 * is even where today is earliest, none when it is not even where today is latest, and otherwise
 * (one or two days a year ahead) those of `zones()` in which it is. So the zones in use are read
 * only for a night at the edge.
 */
export async function zonesWithinStayHorizon(night: CalendarDate, now: Date, zones: () => Promise<readonly string[]>): Promise<'every' | readonly string[]> {
  if (withinStayHorizon(furthestBehind, now)(night)) return 'every';
  if (!withinStayHorizon(furthestAhead, now)(night)) return [];
  return (await zones()).filter((zone) => withinStayHorizon(zone, now)(night));
}
