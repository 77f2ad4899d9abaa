import { fc, test } from '@fast-check/vitest';
import { describe, expect, it } from 'vitest';
import { slotsOverlap, utcInstant } from '../../src/domain/shared/time-slot.js';
import { cachedFormatterCount, instantOfWallClock, isLocalEndTime, localEndTimeSchema, localTimeSchema, minuteOfDay, wallClockAt } from '../../src/domain/shared/wall-clock.js';

// The shared helpers the schedule's grid stands on.

const at = (date: string, time: string, zone: string) => {
  const instant = instantOfWallClock(date, minuteOfDay(time), zone);
  return instant === undefined ? undefined : new Date(instant).toISOString();
};

describe('wallClockAt', () => {
  it('gives the local date, weekday and minute of an instant', () => {
    expect(wallClockAt('2026-03-29T00:30:00Z', 'Europe/Berlin')).toEqual({ date: '2026-03-29', weekday: 'sun', minute: 90 });
    expect(wallClockAt('2026-03-29T01:00:00Z', 'Europe/Berlin')).toEqual({ date: '2026-03-29', weekday: 'sun', minute: 180 });
    expect(wallClockAt('2026-01-01T03:00:00Z', 'America/Los_Angeles')).toEqual({ date: '2025-12-31', weekday: 'wed', minute: 19 * 60 });
    expect(wallClockAt('2026-01-01T00:00:00Z', 'Asia/Kathmandu')).toEqual({ date: '2026-01-01', weekday: 'thu', minute: 5 * 60 + 45 });
  });
});

describe('the formatters behind wallClockAt', () => {
  /** The `n`th of the ways to case the letters of `zone`: bit i of `n` capitalises its i-th letter. */
  const casing = (zone: string, n: number) => {
    let letter = 0;
    return zone.replace(/[a-z]/gi, (c) => ((n >> letter++) & 1 ? c.toUpperCase() : c.toLowerCase()));
  };

  it('keeps one per zone however many spellings of it are asked about (a stored odd spelling still works)', () => {
    const summer = '2026-07-01T12:00:00Z';
    const expected = wallClockAt(summer, 'Europe/Lisbon');
    const before = cachedFormatterCount();
    // More spellings than any bound on them, each new to every cache.
    const spellings = new Set(Array.from({ length: 1_500 }, (_, n) => casing('europe/lisbon', n + 1)));
    expect(spellings.size).toBe(1_500);
    for (const spelling of spellings) expect(wallClockAt(summer, spelling)).toEqual(expected);
    expect(cachedFormatterCount()).toBe(before);
  });
});

// Zones with daylight saving (half an hour on Lord Howe, south of the equator in Santiago), odd
// offsets (Monrovia's -0:44:30 until 1972), and changes that are not daylight saving
// (Casablanca around Ramadan, Samoa skipping a day in 2011).
const zones = ['UTC', 'Europe/Berlin', 'America/New_York', 'Australia/Lord_Howe', 'America/Santiago', 'Asia/Kathmandu', 'Pacific/Chatham', 'America/St_Johns', 'Africa/Casablanca', 'Pacific/Apia', 'Africa/Monrovia'];
const oracle = (utcMs: number, timeZone: string) => {
  const parts = new Intl.DateTimeFormat('en-GB', { timeZone, hourCycle: 'h23', weekday: 'short', year: 'numeric', month: '2-digit', day: '2-digit', hour: '2-digit', minute: '2-digit' }).formatToParts(utcMs);
  const part = (type: string) => parts.find((p) => p.type === type)?.value ?? '';
  return { date: `${part('year')}-${part('month')}-${part('day')}`, weekday: part('weekday').toLowerCase(), minute: Number(part('hour')) * 60 + Number(part('minute')) };
};

test.prop([fc.constantFrom(...zones), fc.date({ min: new Date('1970-01-01T00:00:00Z'), max: new Date('2100-01-01T00:00:00Z'), noInvalidDate: true }).map((date) => date.getTime())])(
  'wallClockAt shows what Intl shows, at any instant',
  (zone, utcMs) => {
    expect(wallClockAt(utcMs, zone)).toEqual(oracle(utcMs, zone));
  },
);

// Within a few hours of offset changes, to the second: where an hour's offset is not steady.
const changes = ['2026-03-29T01:00:00Z', '2026-10-25T01:00:00Z', '2026-03-08T07:00:00Z', '2026-10-03T15:30:00Z', '2026-04-05T14:00:00Z', '2011-12-30T10:00:00Z', '1972-01-07T00:44:30Z'];
test.prop([fc.constantFrom(...zones), fc.constantFrom(...changes), fc.integer({ min: -3 * 3_600, max: 3 * 3_600 })])(
  'wallClockAt shows what Intl shows around a change of offset',
  (zone, change, seconds) => {
    const utcMs = Date.parse(change) + seconds * 1_000;
    expect(wallClockAt(utcMs, zone)).toEqual(oracle(utcMs, zone));
  },
);

describe('instantOfWallClock', () => {
  it('finds the instant of an ordinary wall time, in winter and in summer', () => {
    expect(at('2026-03-28', '09:00', 'Europe/Berlin')).toBe('2026-03-28T08:00:00.000Z');
    expect(at('2026-03-30', '09:00', 'Europe/Berlin')).toBe('2026-03-30T07:00:00.000Z');
    expect(at('2026-07-01', '09:00', 'America/New_York')).toBe('2026-07-01T13:00:00.000Z');
  });

  it('answers nothing for a wall time that clocks skip', () => {
    expect(at('2026-03-29', '02:00', 'Europe/Berlin')).toBeUndefined();
    expect(at('2026-03-29', '02:59', 'Europe/Berlin')).toBeUndefined();
    expect(at('2026-03-08', '02:30', 'America/New_York')).toBeUndefined();
    // Lord Howe skips only half an hour.
    expect(at('2026-10-04', '02:15', 'Australia/Lord_Howe')).toBeUndefined();
    expect(at('2026-10-04', '02:30', 'Australia/Lord_Howe')).toBe('2026-10-03T15:30:00.000Z');
  });

  it('answers the earlier instant for a wall time that clocks show twice', () => {
    expect(at('2026-10-25', '02:30', 'Europe/Berlin')).toBe('2026-10-25T00:30:00.000Z');
    expect(at('2026-11-01', '01:30', 'America/New_York')).toBe('2026-11-01T05:30:00.000Z');
  });

  it('finds the wall times around the jumps', () => {
    expect(at('2026-03-29', '01:59', 'Europe/Berlin')).toBe('2026-03-29T00:59:00.000Z');
    expect(at('2026-03-29', '03:00', 'Europe/Berlin')).toBe('2026-03-29T01:00:00.000Z');
    expect(at('2026-10-25', '03:00', 'Europe/Berlin')).toBe('2026-10-25T02:00:00.000Z');
  });
});

test.prop([fc.integer({ min: Date.parse('2025-01-01T00:00:00Z') / 60_000, max: Date.parse('2028-01-01T00:00:00Z') / 60_000 }), fc.constantFrom(...zones)])(
  'every instant is found again from its own wall time, or is the later of two equal wall times',
  (minutes, zone) => {
    const instant = minutes * 60_000;
    const local = wallClockAt(instant, zone);
    const found = instantOfWallClock(local.date, local.minute, zone);
    expect(found).toBeDefined();
    expect(found === instant || (found !== undefined && found < instant && instant - found <= 3 * 3_600_000)).toBe(true);
  },
);

describe('localTimeSchema, localEndTimeSchema and minuteOfDay', () => {
  it('accepts HH:MM from 00:00 to 23:59 only', () => {
    for (const time of ['00:00', '09:30', '23:59']) expect(localTimeSchema.safeParse(time).success).toBe(true);
    for (const time of ['24:00', '9:30', '09:60', '09:30:00', '']) expect(localTimeSchema.safeParse(time).success).toBe(false);
  });

  it('accepts as an end HH:MM from 00:00 to 23:59, or 24:00 for the end of the day, and nothing past it', () => {
    for (const time of ['00:00', '09:30', '23:59', '24:00']) expect(localEndTimeSchema.safeParse(time).success, time).toBe(true);
    for (const time of ['24:01', '24:30', '25:00', '24:00:00', '24', '9:30', '']) expect(isLocalEndTime(time), time).toBe(false);
  });

  it('counts minutes since midnight', () => {
    expect(minuteOfDay('00:00')).toBe(0);
    expect(minuteOfDay('09:30')).toBe(570);
    expect(minuteOfDay('23:59')).toBe(1439);
    expect(minuteOfDay('24:00')).toBe(1440);
  });
});

describe('time slots', () => {
  it('spell an instant one way, in UTC', () => {
    expect(utcInstant('2026-03-30T09:00:00+02:00')).toBe('2026-03-30T07:00:00.000Z');
  });

  it('overlap when each starts before the other ends, not when they touch', () => {
    const nine = { start: '2026-05-04T09:00:00Z', end: '2026-05-04T09:30:00Z' };
    expect(slotsOverlap(nine, { start: '2026-05-04T09:30:00Z', end: '2026-05-04T10:00:00Z' })).toBe(false);
    expect(slotsOverlap(nine, { start: '2026-05-04T11:29:00+02:00', end: '2026-05-04T12:00:00+02:00' })).toBe(true);
  });
});
