import { isDateTooFarAhead, maxDaysAhead } from '../shared/booking-horizon.js';
import { addDays, calendarDateSchema, type CalendarDate, type Instant } from '../shared/calendar-date.js';
import { lastNight, nights, type DateRange } from '../shared/date-range.js';
import { DomainError } from '../shared/domain-error.js';
import { isTimeZone } from '../shared/time-zone.js';
import { wallClockAt } from '../shared/wall-clock.js';

/** The longest stay one booking may hold. */
export const maxNights = 90;

/** The listing's current day; its time zone comes from stored listing data, so it is checked, not trusted. */
export function todayIn(timeZone: string, now: Instant): CalendarDate {
  if (!isTimeZone(timeZone)) throw new DomainError('invalid-time-zone', `unknown time zone ${timeZone}`);
  return wallClockAt(now, timeZone).date;
}

/**
 * The rules every stay `[startDate, endDate)` of a listing obeys. Shared by the calendar (which
 * owns the dates) and the booking (which fails fast before it asks the calendar).
 * `today` is the current day in the listing's time zone.
 */
export function assertBookableRange(range: DateRange, today: CalendarDate): void {
  if (!calendarDateSchema.safeParse(range.startDate).success || !calendarDateSchema.safeParse(range.endDate).success) {
    throw new DomainError('invalid-range', 'start and end must be calendar days as YYYY-MM-DD');
  }
  if (range.endDate <= range.startDate) throw new DomainError('invalid-range', 'the end date must be after the start date');
  if (nights(range) > maxNights) throw new DomainError('stay-too-long', `a stay is at most ${maxNights} nights`);
  if (range.startDate < today) throw new DomainError('dates-in-past', `the stay may not start before ${today}`);
  if (isDateTooFarAhead(lastNight(range), today)) {
    throw new DomainError('dates-too-far-ahead', `the stay must end within ${maxDaysAhead} days after ${today}: its last night may be ${addDays(today, maxDaysAhead)} at the latest`);
  }
}
