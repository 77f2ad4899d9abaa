import { z } from 'zod';
import { calendarDateSchema, requestDateSchema, type Instant } from '../shared/calendar-date.js';
import { isTimeZone, timeZoneSchema } from '../shared/time-zone.js';
import { addMinutes, utcInstant } from '../shared/time-slot.js';
import { instantOfWallClock, isLocalEndTime, isLocalTime, localEndTimeSchema, localTimeSchema, minuteOfDay, wallClockAt, weekdays } from '../shared/wall-clock.js';

/**
 * A doctor's working week: local working hours per weekday in one IANA time zone, one slot
 * length, and days off. Slots start at each interval's `from` and step by `slotMinutes`; a slot
 * ends by the interval's `to`, which may be 24:00, the end of the day. All in wall-clock time of
 * the doctor's zone, so 09:00 stays 09:00 across daylight-saving changes. No slot runs into the
 * next day: a night shift is two intervals, `mon: 20:00–24:00` and `tue: 00:00–02:00`.
 */

export const minSlotMinutes = 10;
export const maxSlotMinutes = 120;

export const workingIntervalSchema = z.object({ from: localTimeSchema, to: localEndTimeSchema });
export type WorkingInterval = z.infer<typeof workingIntervalSchema>;

// A weekday left out of the request has no working hours.
const dayHoursSchema = z.array(workingIntervalSchema).default([]);

export const weeklyHoursSchema = z.object({
  mon: dayHoursSchema,
  tue: dayHoursSchema,
  wed: dayHoursSchema,
  thu: dayHoursSchema,
  fri: dayHoursSchema,
  sat: dayHoursSchema,
  sun: dayHoursSchema,
});
export type WeeklyHours = z.infer<typeof weeklyHoursSchema>;

// Strict at every level, as a request or a command must be: a misspelt `monday` or `daysoff` was
// dropped and cleared the hours or the days off it meant to set, and an unknown key of an interval
// (`{ from, to, extra }`) was dropped without a word. Events keep the loose shape above.
const requestDayHoursSchema = z.array(workingIntervalSchema.strict()).default([]);
const requestWeeklyHoursSchema = z
  .object({
    mon: requestDayHoursSchema,
    tue: requestDayHoursSchema,
    wed: requestDayHoursSchema,
    thu: requestDayHoursSchema,
    fri: requestDayHoursSchema,
    sat: requestDayHoursSchema,
    sun: requestDayHoursSchema,
  })
  .strict();

/** The shape as stored in events: no semantic checks, those ran when it was decided. */
export const weeklyScheduleShape = z.object({
  timeZone: z.string(),
  slotMinutes: z.number().int(),
  weeklyHours: weeklyHoursSchema,
  daysOff: z.array(calendarDateSchema).default([]),
});
export type WeeklySchedule = z.infer<typeof weeklyScheduleShape>;

/** The shape a request must have, with every rule the decider applies, for precise 400 answers. */
export const weeklyScheduleSchema = z
  .object({
    timeZone: timeZoneSchema,
    slotMinutes: z.number().int().min(minSlotMinutes).max(maxSlotMinutes),
    weeklyHours: requestWeeklyHoursSchema,
    daysOff: z.array(requestDateSchema).default([]),
  })
  .strict()
  // Only on a schedule whose fields passed: a slot length out of range was named twice, by its
  // field's bounds and again by the rule that checks them for commands not sent over HTTP.
  .check(
    z.superRefine(
      (schedule, context) => {
        const problem = scheduleProblem(schedule);
        if (problem) context.addIssue({ code: 'custom', message: problem.message, path: problem.path });
      },
      { when: (payload) => payload.issues.length === 0 },
    ),
  );

export type ScheduleProblem = {
  readonly code: 'invalid-time-zone' | 'invalid-slot-length' | 'invalid-interval' | 'overlapping-intervals' | 'invalid-day-off';
  readonly message: string;
  readonly path: (string | number)[];
};

/**
 * The first rule `schedule` breaks, if any. The decider applies it as well as the request
 * schema, because a command need not have come through HTTP.
 */
export function scheduleProblem(schedule: WeeklySchedule): ScheduleProblem | undefined {
  if (!isTimeZone(schedule.timeZone)) {
    return { code: 'invalid-time-zone', message: `${schedule.timeZone} is not an IANA time zone`, path: ['timeZone'] };
  }
  const { slotMinutes } = schedule;
  if (!Number.isInteger(slotMinutes) || slotMinutes < minSlotMinutes || slotMinutes > maxSlotMinutes) {
    const message = `slots last ${minSlotMinutes} to ${maxSlotMinutes} whole minutes, not ${slotMinutes}`;
    return { code: 'invalid-slot-length', message, path: ['slotMinutes'] };
  }
  for (const day of weekdays) {
    const problem = dayProblem(schedule.weeklyHours[day]);
    if (problem) return { ...problem, path: ['weeklyHours', day, ...problem.path] };
  }
  const badDay = schedule.daysOff.findIndex((date) => !calendarDateSchema.safeParse(date).success);
  if (badDay >= 0) return { code: 'invalid-day-off', message: `${schedule.daysOff[badDay]} is not a date YYYY-MM-DD`, path: ['daysOff', badDay] };
  return undefined;
}

function dayProblem(intervals: readonly WorkingInterval[]): ScheduleProblem | undefined {
  const bad = intervals.findIndex(({ from, to }) => !isLocalTime(from) || !isLocalEndTime(to) || minuteOfDay(from) >= minuteOfDay(to));
  if (bad >= 0) {
    const interval = intervals[bad];
    const message = `working interval ${interval?.from}–${interval?.to} must be HH:MM to a later HH:MM, or to 24:00`;
    return { code: 'invalid-interval', message, path: [bad] };
  }
  const sorted = sortIntervals(intervals);
  for (let i = 1; i < sorted.length; i++) {
    const [before, after] = [sorted[i - 1], sorted[i]];
    if (before && after && minuteOfDay(after.from) < minuteOfDay(before.to)) {
      const message = `working intervals ${before.from}–${before.to} and ${after.from}–${after.to} overlap`;
      return { code: 'overlapping-intervals', message, path: [] };
    }
  }
  return undefined;
}

function sortIntervals(intervals: readonly WorkingInterval[]): WorkingInterval[] {
  return [...intervals].sort((a, b) => (a.from < b.from ? -1 : a.from > b.from ? 1 : 0));
}

/** One spelling per schedule (intervals by start, days off sorted once each), so equal means same. */
export function normaliseSchedule(schedule: WeeklySchedule): WeeklySchedule {
  const weeklyHours = { ...schedule.weeklyHours };
  for (const day of weekdays) weeklyHours[day] = sortIntervals(schedule.weeklyHours[day]).map(({ from, to }) => ({ from, to }));
  return {
    timeZone: schedule.timeZone,
    slotMinutes: schedule.slotMinutes,
    weeklyHours,
    daysOff: [...new Set(schedule.daysOff)].sort(),
  };
}

export function sameSchedule(a: WeeklySchedule, b: WeeklySchedule): boolean {
  return JSON.stringify(normaliseSchedule(a)) === JSON.stringify(normaliseSchedule(b));
}

export type SlotProblem = {
  readonly code: 'day-off' | 'outside-working-hours' | 'off-grid';
  readonly message: string;
};

/**
 * Why no slot of `schedule` starts at `start`, or `undefined` if one does. A slot is offered
 * when its wall-clock start is `from + k × slotMinutes` of a working interval, it ends by `to`,
 * and daylight saving leaves it alone: its start exists on the clock, is the first of two equal
 * wall times when clocks go back, and no change of offset falls inside it. That last rule keeps
 * the slots of a day from overlapping in real time and every slot exactly `slotMinutes` long.
 */
export function slotProblem(schedule: WeeklySchedule, start: Instant): SlotProblem | undefined {
  const { timeZone, slotMinutes } = schedule;
  const startMs = Date.parse(start);
  const local = wallClockAt(startMs, timeZone);
  if (schedule.daysOff.includes(local.date)) return { code: 'day-off', message: `${local.date} is a day off` };
  const interval = schedule.weeklyHours[local.weekday].find(
    ({ from, to }) => minuteOfDay(from) <= local.minute && local.minute + slotMinutes <= minuteOfDay(to),
  );
  if (!interval) {
    return { code: 'outside-working-hours', message: `${start} (${local.date} ${local.weekday}, ${timeZone}) is outside working hours` };
  }
  const onGrid = startMs % 60_000 === 0 && (local.minute - minuteOfDay(interval.from)) % slotMinutes === 0;
  if (!onGrid) {
    return { code: 'off-grid', message: `${start} is not a slot start: slots start at ${interval.from} every ${slotMinutes} minutes` };
  }
  if (instantOfWallClock(local.date, local.minute, timeZone) !== startMs) {
    return { code: 'off-grid', message: `${start} is the second time clocks show that wall time; the slot starts at the first` };
  }
  // A slot ending at 24:00 has its last minute at 23:59 of its own day, so this holds for it too;
  // where clocks change at midnight, the change falls at its end, not inside it.
  const lastMinute = wallClockAt(startMs + (slotMinutes - 1) * 60_000, timeZone);
  if (lastMinute.date !== local.date || lastMinute.minute !== local.minute + slotMinutes - 1) {
    return { code: 'off-grid', message: `the slot at ${start} would span a daylight-saving change` };
  }
  return undefined;
}

/** The end of the slot starting at `start`, in UTC. */
export function slotEnd(schedule: WeeklySchedule, start: Instant): Instant {
  return addMinutes(utcInstant(start), schedule.slotMinutes);
}
