import { z } from 'zod';
import type { CalendarDate, Instant } from './calendar-date.js';

/** Whether the runtime's time-zone database knows `value` (e.g. `Europe/Lisbon`, `UTC`). */
export function isTimeZone(value: string): boolean {
  try {
    new Intl.DateTimeFormat('en-US', { timeZone: value });
    return true;
  } catch {
    return false;
  }
}

export const timeZoneSchema = z.string().min(1).refine(isTimeZone, 'must be an IANA time zone like Europe/Lisbon');

/** How far the wall clock of `timeZone` is ahead of UTC at `utcMs`, in ms (whole seconds). */
function offsetMs(utcMs: number, timeZone: string): number {
  const parts = new Intl.DateTimeFormat('en-US', {
    timeZone,
    hourCycle: 'h23',
    year: 'numeric',
    month: 'numeric',
    day: 'numeric',
    hour: 'numeric',
    minute: 'numeric',
    second: 'numeric',
  }).formatToParts(new Date(utcMs));
  const part = (type: Intl.DateTimeFormatPartTypes) => Number(parts.find((p) => p.type === type)?.value ?? 0);
  const wall = Date.UTC(part('year'), part('month') - 1, part('day'), part('hour'), part('minute'), part('second'));
  return wall - Math.floor(utcMs / 1000) * 1000;
}

/**
 * The instant at which clocks in `timeZone` show `time` (`HH:mm`) on `date`. Two passes,
 * because the offset to use is the one in force at the answer, not at the naive guess; a wall
 * time that a daylight-saving jump skips maps to an instant within that jump's hour.
 */
export function zonedInstant(date: CalendarDate, time: string, timeZone: string): Instant {
  const wall = Date.parse(`${date}T${time}:00Z`);
  const firstGuess = wall - offsetMs(wall, timeZone);
  return new Date(wall - offsetMs(firstGuess, timeZone)).toISOString();
}
