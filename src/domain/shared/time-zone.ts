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
 * Current IANA names and common links the runtime accepts but `Intl.supportedValuesOf` leaves out:
 * it lists ICU's names only, often the older ones (`Asia/Calcutta`, `Europe/Kiev`).
 */
const namesOutsideSupportedValues = [
  'Africa/Asmara', 'America/Argentina/Buenos_Aires', 'America/Argentina/Catamarca', 'America/Argentina/Cordoba',
  'America/Argentina/Jujuy', 'America/Argentina/Mendoza', 'America/Atikokan', 'America/Indiana/Indianapolis',
  'America/Kentucky/Louisville', 'America/Nuuk', 'Asia/Ho_Chi_Minh', 'Asia/Kathmandu', 'Asia/Kolkata', 'Asia/Yangon',
  'Atlantic/Faroe', 'Europe/Kyiv', 'Pacific/Chuuk', 'Pacific/Kanton', 'Pacific/Pohnpei',
  'Etc/GMT', 'Etc/UTC', 'GMT', 'UTC', 'US/Alaska', 'US/Arizona', 'US/Central', 'US/Eastern', 'US/Hawaii', 'US/Mountain', 'US/Pacific',
];

/** Each known zone name by its lower-case form; built on first use, bounded by the lists above. */
let namesByLowerCase: ReadonlyMap<string, string> | undefined;

function properNameOf(value: string): string | undefined {
  namesByLowerCase ??= new Map([...Intl.supportedValuesOf('timeZone'), ...namesOutsideSupportedValues].map((name) => [name.toLowerCase(), name]));
  return namesByLowerCase.get(value.toLowerCase());
}

/**
 * `value` in its proper letter case (`europe/lisbon` → `Europe/Lisbon`, `asia/kolkata` →
 * `Asia/Kolkata`); as sent if no known name matches it. A zone keeps the name the client chose:
 * the runtime's names for links are ICU's older ones (`Asia/Kolkata` → `Asia/Calcutta`), and a
 * client naming a zone by its current name gets that name back.
 */
export function properTimeZoneSpelling(value: string): string {
  const canonical = canonicalTimeZone(value);
  if (canonical === undefined) return value;
  if (canonical.toLowerCase() === value.toLowerCase()) return canonical;
  return properNameOf(value) ?? value;
}

/** An IANA zone, in the runtime's letter case where it has the same name for it. */
export const timeZoneSchema = z
  .string()
  .min(1)
  .refine(isTimeZone, 'must be an IANA time zone like Europe/Lisbon')
  .overwrite(properTimeZoneSpelling);
