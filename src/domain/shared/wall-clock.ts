import { z } from 'zod';
import type { CalendarDate, Instant } from './calendar-date.js';

/**
 * Local wall-clock time in an IANA time zone, computed with Intl only. Unlike `zonedInstant`
 * in `time-zone.ts`, which always answers with some instant, these functions say when a wall
 * time does not exist (skipped by a daylight-saving jump) and pick the earlier of the two
 * instants when it exists twice, so a slot grid built on them never has a start that is not
 * on the clock, nor two starts for one wall time.
 */

export const weekdays = ['mon', 'tue', 'wed', 'thu', 'fri', 'sat', 'sun'] as const;
export type Weekday = (typeof weekdays)[number];

/** `HH:MM`, 00:00 to 23:59. */
export const localTimeSchema = z.string().regex(/^([01]\d|2[0-3]):[0-5]\d$/, 'must be a local time HH:MM');
export type LocalTime = z.infer<typeof localTimeSchema>;

export function isLocalTime(value: string): boolean {
  return localTimeSchema.safeParse(value).success;
}

/**
 * Where a span of local time ends: `HH:MM`, or `24:00` for the end of the day, so that working
 * hours can run up to midnight. Only ever an end: no clock shows 24:00, so nothing starts there.
 */
export const localEndTimeSchema = z
  .string()
  .regex(/^(([01]\d|2[0-3]):[0-5]\d|24:00)$/, 'must be a local time HH:MM, or 24:00 for the end of the day');
export type LocalEndTime = z.infer<typeof localEndTimeSchema>;

export function isLocalEndTime(value: string): boolean {
  return localEndTimeSchema.safeParse(value).success;
}

/** Minutes since local midnight: `09:30` → 570, `24:00` → 1440. */
export function minuteOfDay(time: LocalTime | LocalEndTime): number {
  return Number(time.slice(0, 2)) * 60 + Number(time.slice(3, 5));
}

export type WallClock = { readonly date: CalendarDate; readonly weekday: Weekday; readonly minute: number };

// Building a DateTimeFormat costs far more than using one, and the schedule asks per slot. Each
// holds tens of KB of native memory, so there is one per zone, under the runtime's name for it:
// Intl takes any case, and a formatter per spelling let odd input grow memory without end.
const formatters = new Map<string, Intl.DateTimeFormat>();
/** Spelling → the runtime's name for its zone. Bounded, so that odd input cannot grow it for ever. */
const zoneNames = new Map<string, string>();

function formatterFor(timeZone: string): Intl.DateTimeFormat {
  const name = zoneNames.get(timeZone);
  const known = name === undefined ? undefined : formatters.get(name);
  if (known) return known;
  const created = new Intl.DateTimeFormat('en-US', {
    timeZone,
    hourCycle: 'h23',
    weekday: 'short',
    year: 'numeric',
    month: '2-digit',
    day: '2-digit',
    hour: '2-digit',
    minute: '2-digit',
    second: '2-digit',
  });
  const canonical = created.resolvedOptions().timeZone;
  if (zoneNames.size >= 1_000) zoneNames.clear();
  zoneNames.set(timeZone, canonical);
  const shared = formatters.get(canonical);
  if (shared) return shared;
  // The runtime knows some hundreds of zones; the bound only guards against surprises.
  if (formatters.size >= 1_000) formatters.clear();
  formatters.set(canonical, created);
  return created;
}

/** How many formatters are held (one per zone), for tests of the bound. */
export function cachedFormatterCount(): number {
  return formatters.size;
}

const weekdayByShortName: Readonly<Record<string, Weekday>> = {
  Mon: 'mon',
  Tue: 'tue',
  Wed: 'wed',
  Thu: 'thu',
  Fri: 'fri',
  Sat: 'sat',
  Sun: 'sun',
};

/** What clocks in `timeZone` show at `instant` (seconds dropped). */
export function wallClockAt(instant: Instant | number, timeZone: string): WallClock {
  const utcMs = typeof instant === 'number' ? instant : Date.parse(instant);
  const offset = utcMs >= 0 && utcMs < year10000Ms ? steadyOffset(utcMs, timeZone) : null;
  if (offset === null) return shownAt(utcMs, timeZone).clock;
  // The offset holds all this hour: the wall clock is UTC shifted by it, no Intl call needed.
  const local = new Date(utcMs + offset);
  // getUTCDay counts from Sunday, `weekdays` from Monday.
  const weekday = weekdays[(local.getUTCDay() + 6) % 7];
  if (!weekday) throw new Error(`no weekday for ${String(instant)} in ${timeZone}`);
  return { date: local.toISOString().slice(0, 10), weekday, minute: local.getUTCHours() * 60 + local.getUTCMinutes() };
}

const hourMs = 3_600_000;
/** Past year 9999 ISO dates take a sign and six digits; such instants take Intl's answer. */
const year10000Ms = Date.UTC(10_000, 0, 1);

/**
 * Per time zone, per UTC hour (epoch ms / 1 h): the zone's UTC offset in ms if it is the same all
 * that hour, `null` if it changes within it. Intl's formatToParts costs tens of µs, and every
 * slot check asks twice; the instants asked about crowd into few hours (a grid of working
 * hours), so two Intl calls per zone and hour answer nearly all of them.
 */
const steadyOffsets = new Map<string, Map<number, number | null>>();

function steadyOffset(utcMs: number, timeZone: string): number | null {
  const hour = Math.floor(utcMs / hourMs);
  let hours = steadyOffsets.get(timeZone);
  if (!hours) {
    // Bounded, so that odd input cannot grow it for ever; a cleared entry is computed again.
    if (steadyOffsets.size >= 1_000) steadyOffsets.clear();
    hours = new Map();
    steadyOffsets.set(timeZone, hours);
  }
  let offset = hours.get(hour);
  if (offset === undefined) {
    // Offsets change on whole seconds, and never twice within an hour: the same offset at the
    // hour's first and last second holds all of it.
    const first = shownAt(hour * hourMs, timeZone).offsetMs;
    const last = shownAt((hour + 1) * hourMs - 1_000, timeZone).offsetMs;
    offset = first === last ? first : null;
    if (hours.size >= 100_000) hours.clear();
    hours.set(hour, offset);
  }
  return offset;
}

/** Intl's answer: the wall clock at `utcMs`, and the offset it shows (to the second). */
function shownAt(utcMs: number, timeZone: string): { clock: WallClock; offsetMs: number } {
  const parts = formatterFor(timeZone).formatToParts(utcMs);
  const part = (type: Intl.DateTimeFormatPartTypes) => parts.find((p) => p.type === type)?.value ?? '';
  const weekday = weekdayByShortName[part('weekday')];
  if (!weekday) throw new Error(`Intl gave an unknown weekday for ${String(utcMs)} in ${timeZone}`);
  const number = (type: Intl.DateTimeFormatPartTypes) => Number(part(type));
  const minute = number('hour') * 60 + number('minute');
  const shownMs = Date.UTC(number('year'), number('month') - 1, number('day'), 0, minute, number('second'));
  return {
    clock: { date: `${part('year')}-${part('month')}-${part('day')}`, weekday, minute },
    offsetMs: shownMs - Math.floor(utcMs / 1_000) * 1_000,
  };
}

const minuteMs = 60_000;
const dayMs = 86_400_000;

/**
 * The earliest instant (epoch ms) at which clocks in `timeZone` show `minute` on `date`, or
 * `undefined` if they never do (the wall time falls into a daylight-saving gap). Candidates come
 * from the offsets in force a day either side, which covers every real-world transition.
 */
export function instantOfWallClock(date: CalendarDate, minute: number, timeZone: string): number | undefined {
  const asIfUtc = Date.parse(`${date}T00:00:00Z`) + minute * minuteMs;
  const offsets = new Set([asIfUtc - dayMs, asIfUtc, asIfUtc + dayMs].map((at) => offsetAt(at, timeZone)));
  const matches = [...offsets]
    .map((offset) => asIfUtc - offset)
    .filter((candidate) => {
      const shown = wallClockAt(candidate, timeZone);
      return shown.date === date && shown.minute === minute;
    });
  return matches.length === 0 ? undefined : Math.min(...matches);
}

/** How far the wall clock is ahead of UTC at `utcMs`, in ms (whole minutes). */
function offsetAt(utcMs: number, timeZone: string): number {
  const shown = wallClockAt(utcMs, timeZone);
  const wallMs = Date.parse(`${shown.date}T00:00:00Z`) + shown.minute * minuteMs;
  return wallMs - Math.floor(utcMs / minuteMs) * minuteMs;
}

/**
 * When `date` begins in `timeZone` (epoch ms): its midnight, or, where a daylight-saving jump
 * skips midnight, the first minute the clocks do show that day.
 */
export function startOfDayIn(date: CalendarDate, timeZone: string): number {
  for (let minute = 0; minute < 24 * 60; minute++) {
    const instant = instantOfWallClock(date, minute, timeZone);
    if (instant !== undefined) return instant;
  }
  throw new RangeError(`${date} never happens in ${timeZone}`);
}
