import { z } from 'zod';

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
