import { z } from 'zod';

/**
 * Spellings already asked about, each with the runtime's name for the zone (`undefined` when it
 * knows none): building an `Intl.DateTimeFormat` costs tens of microseconds.
 */
const knownZones = new Map<string, string | undefined>();

/**
 * The runtime's own name for the zone `value` spells, e.g. `Europe/Lisbon` for `europe/lisbon`;
 * `undefined` if its time-zone database knows no such zone. Links resolve as the runtime's
 * database says (`Etc/UTC` → `UTC`).
 */
export function canonicalTimeZone(value: string): string | undefined {
  if (knownZones.has(value)) return knownZones.get(value);
  let canonical: string | undefined;
  try {
    canonical = new Intl.DateTimeFormat('en-US', { timeZone: value }).resolvedOptions().timeZone;
  } catch {
    canonical = undefined;
  }
  // Bounded: arbitrary strings from requests must not grow it without limit.
  if (knownZones.size < 1_000) knownZones.set(value, canonical);
  return canonical;
}

/** Whether the runtime's time-zone database knows `value` (e.g. `Europe/Lisbon`, `UTC`). */
export function isTimeZone(value: string): boolean {
  return canonicalTimeZone(value) !== undefined;
}

/**
 * `value` in the runtime's letter case when case is all that differs (`europe/lisbon` →
 * `Europe/Lisbon`); otherwise as sent. The runtime's names for links are ICU's older ones
 * (`Asia/Kolkata` → `Asia/Calcutta`, `Europe/Kyiv` → `Europe/Kiev`): a client naming a zone
 * by its current name gets that name back.
 */
export function properTimeZoneSpelling(value: string): string {
  const canonical = canonicalTimeZone(value);
  return canonical !== undefined && canonical.toLowerCase() === value.toLowerCase() ? canonical : value;
}

/** An IANA zone, in the runtime's letter case where it has the same name for it. */
export const timeZoneSchema = z
  .string()
  .min(1)
  .refine(isTimeZone, 'must be an IANA time zone like Europe/Lisbon')
  .overwrite(properTimeZoneSpelling);
