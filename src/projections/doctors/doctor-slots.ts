import type { CalendarDate } from '../../domain/shared/calendar-date.js';
import { addDays } from '../../domain/shared/calendar-date.js';
import { slotEnd, slotProblem, type WeeklySchedule } from '../../domain/doctor-schedule/weekly-schedule.js';
import { slotsOverlap, utcInstant, type TimeSlot } from '../../domain/shared/time-slot.js';
import { instantOfWallClock, minuteOfDay, wallClockAt, weekdays } from '../../domain/shared/wall-clock.js';

/**
 * The slots of `schedule` that start in `[from, to)` and after `now`, minus those overlapping a
 * booked slot, in time order. Candidates walk the wall-clock grid of each local day; the
 * decider's own `slotProblem` then keeps exactly the slots it would accept, so daylight-saving
 * gaps, repeated wall times and days off are decided in one place.
 */
export function freeSlots(schedule: WeeklySchedule, booked: readonly TimeSlot[], range: { readonly from: Date; readonly to: Date }, now: Date): TimeSlot[] {
  const { timeZone, slotMinutes } = schedule;
  const earliest = Math.max(range.from.getTime(), now.getTime() + 1);
  const lastDay = wallClockAt(range.to.getTime(), timeZone).date;
  const slots: TimeSlot[] = [];
  for (let day: CalendarDate = wallClockAt(range.from.getTime(), timeZone).date; day <= lastDay; day = addDays(day, 1)) {
    if (schedule.daysOff.includes(day)) continue;
    const weekday = weekdays[(new Date(`${day}T00:00:00Z`).getUTCDay() + 6) % 7] ?? 'mon';
    for (const interval of schedule.weeklyHours[weekday]) {
      for (let minute = minuteOfDay(interval.from); minute + slotMinutes <= minuteOfDay(interval.to); minute += slotMinutes) {
        const startMs = instantOfWallClock(day, minute, timeZone);
        if (startMs === undefined || startMs < earliest || startMs >= range.to.getTime()) continue;
        const start = utcInstant(startMs);
        if (slotProblem(schedule, start)) continue;
        const slot = { start, end: slotEnd(schedule, start) };
        if (!booked.some((taken) => slotsOverlap(taken, slot))) slots.push(slot);
      }
    }
  }
  return slots.sort((a, b) => Date.parse(a.start) - Date.parse(b.start));
}
