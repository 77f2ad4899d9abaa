import { fc, test } from '@fast-check/vitest';
import { expect } from 'vitest';
import { slotEnd, slotProblem, type WeeklyHours, type WeeklySchedule } from '../../src/domain/doctor-schedule/weekly-schedule.js';
import { addDays, type CalendarDate } from '../../src/domain/shared/calendar-date.js';
import { utcInstant, type TimeSlot } from '../../src/domain/shared/time-slot.js';
import { instantOfWallClock, minuteOfDay, wallClockAt, weekdays } from '../../src/domain/shared/wall-clock.js';
import { freeSlots } from '../../src/projections/doctors/doctor-slots.js';

const minute = 60_000;
const day = 86_400_000;

/**
 * The walk as it was before it learnt to pass over booked time: every candidate of the grid asks
 * the wall clock and the decider's rule, then every booking. Slow, and plainly right.
 */
function plainFreeSlots(schedule: WeeklySchedule, booked: readonly TimeSlot[], range: { from: Date; to: Date }, now: Date, atLeast = Number.POSITIVE_INFINITY): TimeSlot[] {
  const { timeZone, slotMinutes } = schedule;
  const earliest = Math.max(range.from.getTime(), now.getTime() + 1);
  const lastDay = wallClockAt(range.to.getTime(), timeZone).date;
  const bookedMs = booked.map((slot) => ({ start: Date.parse(slot.start), end: Date.parse(slot.end) }));
  const slots: TimeSlot[] = [];
  for (let date: CalendarDate = wallClockAt(range.from.getTime(), timeZone).date; date <= lastDay && slots.length < atLeast; date = addDays(date, 1)) {
    if (schedule.daysOff.includes(date)) continue;
    const weekday = weekdays[(new Date(`${date}T00:00:00Z`).getUTCDay() + 6) % 7] ?? 'mon';
    for (const interval of schedule.weeklyHours[weekday]) {
      for (let at = minuteOfDay(interval.from); at + slotMinutes <= minuteOfDay(interval.to); at += slotMinutes) {
        const startMs = instantOfWallClock(date, at, timeZone);
        if (startMs === undefined || startMs < earliest || startMs >= range.to.getTime()) continue;
        const start = utcInstant(startMs);
        if (slotProblem(schedule, start)) continue;
        const slot = { start, end: slotEnd(schedule, start) };
        const endMs = Date.parse(slot.end);
        // Half-open: each starts before the other ends.
        if (!bookedMs.some((taken) => taken.start < endMs && startMs < taken.end)) slots.push(slot);
      }
    }
  }
  return slots.sort((a, b) => Date.parse(a.start) - Date.parse(b.start));
}

// Zones with daylight-saving changes at night, at midnight (Santiago, Beirut), by half an hour
// (Lord Howe), with quarter-hour offsets (Chatham, Kathmandu) and at both ends of the offsets.
const zones = ['Europe/Berlin', 'America/New_York', 'Australia/Lord_Howe', 'America/Santiago', 'Asia/Beirut', 'Pacific/Chatham', 'Asia/Kathmandu', 'Pacific/Kiritimati', 'Pacific/Pago_Pago', 'UTC'];
// Weeks around the clock changes of 2026 (March, April, September, October, November).
const rangeStarts = ['2026-03-05', '2026-03-25', '2026-04-01', '2026-09-01', '2026-09-24', '2026-10-20', '2026-10-29'].map((date) => Date.parse(`${date}T00:00:00Z`));

const fiveMinutes = (n: number) => `${String(Math.floor(n / 12)).padStart(2, '0')}:${String((n % 12) * 5).padStart(2, '0')}`;
/** Working hours of a day: often all of it (so bookings can run solid for days), else a few intervals. */
const hours = fc.oneof(
  fc.constant<WeeklyHours['mon']>([{ from: '00:00', to: '24:00' }]),
  fc
    .uniqueArray(fc.oneof({ weight: 1, arbitrary: fc.constant(288) }, { weight: 6, arbitrary: fc.integer({ min: 0, max: 287 }) }), { minLength: 2, maxLength: 4 })
    .map((points) => [...points].sort((a, b) => a - b))
    .map((points) => {
      const intervals = [];
      for (let i = points.length % 2; i + 1 < points.length; i += 2) intervals.push({ from: fiveMinutes(points[i] ?? 0), to: fiveMinutes(points[i + 1] ?? 0) });
      return intervals;
    }),
);
const weeklyHours = fc.oneof(
  hours.map((intervals): WeeklyHours => ({ mon: intervals, tue: intervals, wed: intervals, thu: intervals, fri: intervals, sat: intervals, sun: intervals })),
  fc.tuple(hours, hours, hours, hours, hours, hours, hours).map(([mon, tue, wed, thu, fri, sat, sun]): WeeklyHours => ({ mon, tue, wed, thu, fri, sat, sun })),
);

type Query = { schedule: WeeklySchedule; range: { from: Date; to: Date }; now: Date };

const query = fc
  .record({
    timeZone: fc.constantFrom(...zones),
    slotMinutes: fc.constantFrom(5, 10, 15, 20, 30, 45, 60, 90, 120),
    weeklyHours,
    rangeStart: fc.constantFrom(...rangeStarts),
    // Up to the 31 days the route allows, from any minute; mostly a few days, which walk faster.
    fromMinute: fc.integer({ min: 0, max: 24 * 60 - 1 }),
    lengthMinutes: fc.oneof({ weight: 3, arbitrary: fc.integer({ min: 1, max: 4 * 24 * 60 }) }, { weight: 1, arbitrary: fc.integer({ min: 1, max: 31 * 24 * 60 }) }),
    daysOff: fc.array(fc.integer({ min: -1, max: 32 }), { maxLength: 3 }),
    nowMinutes: fc.oneof(fc.constant(-10 * 24 * 60), fc.integer({ min: -24 * 60, max: 10 * 24 * 60 })),
  })
  .map(({ timeZone, slotMinutes, weeklyHours, rangeStart, fromMinute, lengthMinutes, daysOff, nowMinutes }): Query => {
    const from = rangeStart + fromMinute * minute;
    const schedule: WeeklySchedule = { timeZone, slotMinutes, weeklyHours, daysOff: daysOff.map((n) => addDays(new Date(rangeStart).toISOString().slice(0, 10), n)) };
    return { schedule, range: { from: new Date(from), to: new Date(from + lengthMinutes * minute) }, now: new Date(from + nowMinutes * minute) };
  });

/**
 * Booked time as it comes: slots of the grid taken one after another (a doctor booked solid,
 * but for the gaps `free` leaves), and stray bookings of any length up to days, kept through a
 * schedule change or overlapping each other.
 */
const bookings = fc.record({
  solid: fc.array(fc.record({ fromDay: fc.integer({ min: -2, max: 32 }), days: fc.integer({ min: 0, max: 33 }) }), { maxLength: 3 }),
  free: fc.array(fc.nat(), { maxLength: 20 }),
  stray: fc.array(fc.record({ at: fc.integer({ min: -2 * 24 * 60, max: 33 * 24 * 60 }), length: fc.oneof(fc.integer({ min: 1, max: 120 }), fc.integer({ min: 1, max: 4 * 24 * 60 })) }), { maxLength: 30 }),
});

type Booked = { solid: { fromDay: number; days: number }[]; free: number[]; stray: { at: number; length: number }[] };

function booked(schedule: WeeklySchedule, rangeStart: number, { solid, free, stray }: Booked): TimeSlot[] {
  const grid = solid.flatMap(({ fromDay, days }) => {
    const from = new Date(rangeStart + fromDay * day);
    return plainFreeSlots(schedule, [], { from, to: new Date(from.getTime() + days * day) }, new Date(0));
  });
  const leftFree = new Set(free.map((n) => n % Math.max(grid.length, 1)));
  const strays = stray.map(({ at, length }) => ({ start: utcInstant(rangeStart + at * minute), end: utcInstant(rangeStart + (at + length) * minute) }));
  return [...grid.filter((_, i) => !leftFree.has(i)), ...strays];
}

/**
 * Two days booked solid in the zones furthest ahead of UTC and behind it: the free slots just
 * before and just after the booked time are where the wall time, read as UTC, lies furthest
 * inside it (14 and 11 hours).
 */
const farFromUtc = ['Pacific/Kiritimati', 'Pacific/Pago_Pago', 'Pacific/Chatham'].map((timeZone): [Query, Booked, number] => {
  const allDay = [{ from: '00:00', to: '24:00' }];
  const schedule: WeeklySchedule = { timeZone, slotMinutes: 30, weeklyHours: { mon: allDay, tue: allDay, wed: allDay, thu: allDay, fri: allDay, sat: allDay, sun: allDay }, daysOff: [] };
  const from = Date.parse('2026-03-05T00:00:00Z');
  const query = { schedule, range: { from: new Date(from), to: new Date(from + 5 * day) }, now: new Date(from - day) };
  return [query, { solid: [], free: [], stray: [{ at: 2 * 24 * 60, length: 2 * 24 * 60 }] }, Number.POSITIVE_INFINITY];
});

test.prop([query, bookings, fc.oneof(fc.constant(Number.POSITIVE_INFINITY), fc.integer({ min: 1, max: 101 }))], { numRuns: 60, examples: farFromUtc })(
  'given any schedule, bookings and range, when the free slots are listed, then they are exactly those of the plain walk over every candidate',
  ({ schedule, range, now }, given, atLeast) => {
    const taken = booked(schedule, range.from.getTime(), given);

    expect(freeSlots(schedule, taken, range, now, atLeast)).toEqual(plainFreeSlots(schedule, taken, range, now, atLeast));
  },
);
