import { describe, expect, it } from 'vitest';
import { canonicalTimeZone, isTimeZone, timeZoneSchema } from '../../src/domain/shared/time-zone.js';

describe('timeZoneSchema', () => {
  it('answers a zone in the runtime’s spelling, whatever case it came in', () => {
    for (const spelling of ['Europe/Lisbon', 'europe/lisbon', 'EUROPE/LISBON', 'eUrOpE/lIsBoN']) {
      expect(timeZoneSchema.parse(spelling), spelling).toBe('Europe/Lisbon');
    }
    expect(timeZoneSchema.parse('utc')).toBe('UTC');
  });

  it('keeps a zone by the name the client gave it where the runtime knows it by an older one', () => {
    for (const current of ['Asia/Kolkata', 'Europe/Kyiv', 'America/Argentina/Buenos_Aires', 'Etc/UTC', 'US/Pacific']) {
      expect(timeZoneSchema.parse(current), current).toBe(current);
    }
  });

  it('answers a zone the runtime knows by an older name in the name the client chose, in its proper case', () => {
    const spellings = {
      'asia/kolkata': 'Asia/Kolkata',
      'europe/kyiv': 'Europe/Kyiv',
      'AMERICA/ARGENTINA/BUENOS_AIRES': 'America/Argentina/Buenos_Aires',
      'us/pacific': 'US/Pacific',
      'etc/utc': 'Etc/UTC',
      'asia/calcutta': 'Asia/Calcutta',
      'europe/lisbon': 'Europe/Lisbon',
    };
    for (const [sent, stored] of Object.entries(spellings)) expect(timeZoneSchema.parse(sent), sent).toBe(stored);
  });

  it('refuses what names no zone', () => {
    for (const bad of ['', 'Mars/Olympus', 'Europe/Lisbon ', 'Nowhere']) expect(timeZoneSchema.safeParse(bad).success, bad).toBe(false);
  });
});

describe('canonicalTimeZone and isTimeZone', () => {
  it('give the runtime’s name for a zone, or nothing for no zone', () => {
    expect(canonicalTimeZone('america/new_york')).toBe('America/New_York');
    expect(canonicalTimeZone('Mars/Olympus')).toBeUndefined();
    expect(isTimeZone('america/new_york')).toBe(true);
    expect(isTimeZone('Mars/Olympus')).toBe(false);
  });
});
