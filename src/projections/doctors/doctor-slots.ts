import type { CalendarDate } from '../../domain/shared/calendar-date.js';
import { addDays } from '../../domain/shared/calendar-date.js';
import { slotEnd, slotProblem, type WeeklySchedule } from '../../domain/doctor-schedule/weekly-schedule.js';
import { isTooFarAhead } from '../../domain/shared/booking-horizon.js';
import { utcInstant, type TimeSlot } from '../../domain/shared/time-slot.js';
import { instantOfWallClock, minuteOfDay, wallClockAt, weekdays } from '../../domain/shared/wall-clock.js';

const minuteMs = 60_000;

/**
 * How far a wall time, read as if it were UTC, can be from the instant clocks show it: UTC offsets
 * run from −12 h to +14 h; an hour more either way, to be safe. A candidate whose every possible
 * instant within this is booked is taken, whatever its zone says, so it is passed over without
 * asking the zone at all.
 */
const maxOffsetMs = 15 * 3_600_000;

/**
 * The slots of `schedule` that start in `[from, to)`, after `now` and within the booking horizon
 * (`isTooFarAhead`), minus those overlapping a booked slot, in time order; with `atLeast`, it may
 * stop after the first whole local day that brings that many (a page needs no more). Candidates
 * walk the wall-clock grid of each local day; the decider's own `slotProblem` and `isTooFarAhead`
 * then keep exactly the slots it would accept, so daylight-saving gaps, repeated wall times, days
 * off and the horizon are decided in one place. A range that starts past the horizon is not walked.
 *
 * The booked time is looked at first, as it is cheap and the wall clock is not: a candidate inside
 * a long stretch of booked time (a day or more) is passed over by arithmetic alone, and any other
 * booked one as soon as its instant is known. A doctor booked solid for the month took tens of ms
 * of the event loop per request otherwise, on a public endpoint.
 */
export function freeSlots(
  schedule: WeeklySchedule,
  booked: readonly TimeSlot[],
  range: { readonly from: Date; readonly to: Date },
  now: Date,
  atLeast = Number.POSITIVE_INFINITY,
): TimeSlot[] {
  const { timeZone, slotMinutes } = schedule;
  const slotMs = slotMinutes * minuteMs;
  const earliest = Math.max(range.from.getTime(), now.getTime() + 1);
  const nowInstant = utcInstant(now.getTime());
  if (isTooFarAhead(utcInstant(earliest), nowInstant)) return [];
  const lastDay = wallClockAt(range.to.getTime(), timeZone).date;
  const taken = bookedTime(booked);
  const slots: TimeSlot[] = [];
  for (let day: CalendarDate = wallClockAt(range.from.getTime(), timeZone).date; day <= lastDay && slots.length < atLeast; day = addDays(day, 1)) {
    if (schedule.daysOff.includes(day)) continue;
    const midnightAsIfUtc = Date.parse(`${day}T00:00:00Z`);
    const weekday = weekdays[(new Date(midnightAsIfUtc).getUTCDay() + 6) % 7] ?? 'mon';
    for (const interval of schedule.weeklyHours[weekday]) {
      for (let minute = minuteOfDay(interval.from); minute + slotMinutes <= minuteOfDay(interval.to); minute += slotMinutes) {
        const asIfUtc = midnightAsIfUtc + minute * minuteMs;
        if (taken.covers(asIfUtc - maxOffsetMs, asIfUtc + maxOffsetMs + slotMs)) continue;
        const startMs = instantOfWallClock(day, minute, timeZone);
        if (startMs === undefined || startMs < earliest || startMs >= range.to.getTime()) continue;
        // A slot lasts `slotMinutes` of real time (`slotEnd`).
        if (taken.overlaps(startMs, startMs + slotMs)) continue;
        const start = utcInstant(startMs);
        if (isTooFarAhead(start, nowInstant) || slotProblem(schedule, start)) continue;
        slots.push({ start, end: slotEnd(schedule, start) });
      }
    }
  }
  return slots.sort((a, b) => Date.parse(a.start) - Date.parse(b.start));
}

type Stretch = { readonly start: number; readonly end: number };

/**
 * The booked time as stretches `[start, end)` in epoch ms: sorted, apart from each other (bookings
 * that overlap or touch are joined), so that each question is one bisection. Checking every
 * booking for every candidate took seconds of the event loop for a month of a busy doctor's slots.
 */
function bookedTime(booked: readonly TimeSlot[]): {
  /** Whether `[startMs, endMs)` overlaps a booking. */
  overlaps(startMs: number, endMs: number): boolean;
  /** Whether one booking or a run of touching ones holds all of `[fromMs, toMs)`. */
  covers(fromMs: number, toMs: number): boolean;
} {
  const sorted = booked.map((slot) => ({ start: Date.parse(slot.start), end: Date.parse(slot.end) })).sort((a, b) => a.start - b.start);
  const stretches: Stretch[] = [];
  for (const slot of sorted) {
    const last = stretches.at(-1);
    if (last && slot.start <= last.end) stretches[stretches.length - 1] = { start: last.start, end: Math.max(last.end, slot.end) };
    else stretches.push(slot);
  }
  /** The last stretch starting before `ms`, if any. */
  const lastStartingBefore = (ms: number): Stretch | undefined => {
    let low = 0;
    let high = stretches.length;
    while (low < high) {
      const middle = (low + high) >> 1;
      if ((stretches[middle]?.start ?? Number.POSITIVE_INFINITY) < ms) low = middle + 1;
      else high = middle;
    }
    return stretches[low - 1];
  };
  return {
    // Stretches are apart: only the last one starting before the end can reach past the start.
    overlaps: (startMs, endMs) => (lastStartingBefore(endMs)?.end ?? Number.NEGATIVE_INFINITY) > startMs,
    covers: (fromMs, toMs) => (lastStartingBefore(fromMs + 1)?.end ?? Number.NEGATIVE_INFINITY) >= toMs,
  };
}
