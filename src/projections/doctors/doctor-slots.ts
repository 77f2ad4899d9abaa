import type { CalendarDate } from '../../domain/shared/calendar-date.js';
import { addDays } from '../../domain/shared/calendar-date.js';
import { slotEnd, slotProblem, type WeeklySchedule } from '../../domain/doctor-schedule/weekly-schedule.js';
import { utcInstant, type TimeSlot } from '../../domain/shared/time-slot.js';
import { instantOfWallClock, minuteOfDay, wallClockAt, weekdays } from '../../domain/shared/wall-clock.js';

/**
 * The slots of `schedule` that start in `[from, to)` and after `now`, minus those overlapping a
 * booked slot, in time order; with `atLeast`, it may stop after the first whole local day that
 * brings that many (a page needs no more). Candidates walk the wall-clock grid of each local day;
 * the decider's own `slotProblem` then keeps exactly the slots it would accept, so daylight-saving
 * gaps, repeated wall times and days off are decided in one place.
 */
export function freeSlots(
  schedule: WeeklySchedule,
  booked: readonly TimeSlot[],
  range: { readonly from: Date; readonly to: Date },
  now: Date,
  atLeast = Number.POSITIVE_INFINITY,
): TimeSlot[] {
  const { timeZone, slotMinutes } = schedule;
  const earliest = Math.max(range.from.getTime(), now.getTime() + 1);
  const lastDay = wallClockAt(range.to.getTime(), timeZone).date;
  const isTaken = overlapsAny(booked);
  const slots: TimeSlot[] = [];
  for (let day: CalendarDate = wallClockAt(range.from.getTime(), timeZone).date; day <= lastDay && slots.length < atLeast; day = addDays(day, 1)) {
    if (schedule.daysOff.includes(day)) continue;
    const weekday = weekdays[(new Date(`${day}T00:00:00Z`).getUTCDay() + 6) % 7] ?? 'mon';
    for (const interval of schedule.weeklyHours[weekday]) {
      for (let minute = minuteOfDay(interval.from); minute + slotMinutes <= minuteOfDay(interval.to); minute += slotMinutes) {
        const startMs = instantOfWallClock(day, minute, timeZone);
        if (startMs === undefined || startMs < earliest || startMs >= range.to.getTime()) continue;
        const start = utcInstant(startMs);
        if (slotProblem(schedule, start)) continue;
        const slot = { start, end: slotEnd(schedule, start) };
        if (!isTaken(startMs, Date.parse(slot.end))) slots.push(slot);
      }
    }
  }
  return slots.sort((a, b) => Date.parse(a.start) - Date.parse(b.start));
}

/**
 * Whether `[startMs, endMs)` overlaps one of `booked`, in O(log n): the bookings sorted by start,
 * with the latest end among each prefix. Checking every booking for every candidate took seconds
 * of the event loop for a month of a busy doctor's slots, on a public endpoint.
 */
function overlapsAny(booked: readonly TimeSlot[]): (startMs: number, endMs: number) => boolean {
  const sorted = booked.map((slot) => ({ start: Date.parse(slot.start), end: Date.parse(slot.end) })).sort((a, b) => a.start - b.start);
  const latestEnd: number[] = [];
  for (const [index, slot] of sorted.entries()) latestEnd.push(Math.max(slot.end, latestEnd[index - 1] ?? Number.NEGATIVE_INFINITY));
  return (startMs, endMs) => {
    // How many bookings start before the candidate ends; one of them overlaps it if any ends after it starts.
    let low = 0;
    let high = sorted.length;
    while (low < high) {
      const middle = (low + high) >> 1;
      if ((sorted[middle]?.start ?? Number.POSITIVE_INFINITY) < endMs) low = middle + 1;
      else high = middle;
    }
    return low > 0 && (latestEnd[low - 1] ?? Number.NEGATIVE_INFINITY) > startMs;
  };
}
