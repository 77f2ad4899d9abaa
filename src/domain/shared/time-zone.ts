import { z } from 'zod';

/** Zones already asked about: building an `Intl.DateTimeFormat` costs tens of microseconds. */
const knownZones = new Map<string, boolean>();

/** Whether the runtime's time-zone database knows `value` (e.g. `Europe/Lisbon`, `UTC`). */
export function isTimeZone(value: string): boolean {
  const known = knownZones.get(value);
  if (known !== undefined) return known;
  let valid = true;
  try {
    new Intl.DateTimeFormat('en-US', { timeZone: value });
  } catch {
    valid = false;
  }
  // Bounded: arbitrary strings from requests must not grow it without limit.
  if (knownZones.size < 1_000) knownZones.set(value, valid);
  return valid;
}

export const timeZoneSchema = z.string().min(1).refine(isTimeZone, 'must be an IANA time zone like Europe/Lisbon');
