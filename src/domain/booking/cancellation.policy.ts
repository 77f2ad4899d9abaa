import type { CalendarDate, Instant } from '../shared/calendar-date.js';
import { startOfDayIn } from '../shared/wall-clock.js';
import type { Canceller } from './booking.events.js';

const hourMs = 3_600_000;

/**
 * How much of what was paid goes back. An owner or admin cancelling is never the consumer's
 * fault: everything. A consumer gets 100 % at least 7 days (168 h) before the start, 50 % at
 * least 48 h before, nothing later. The stay starts at 00:00 on its start date in the listing's
 * time zone: check-in times vary by listing, and the earliest moment favours no one's guess.
 */
export function refundPercent(cancelledBy: Canceller, now: Instant, startDate: CalendarDate, timeZone: string): number {
  if (cancelledBy !== 'consumer') return 100;
  const hoursBeforeStart = (startOfDayIn(startDate, timeZone) - Date.parse(now)) / hourMs;
  if (hoursBeforeStart >= 7 * 24) return 100;
  if (hoursBeforeStart >= 48) return 50;
  return 0;
}
