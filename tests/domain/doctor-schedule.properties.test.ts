import { fc, test } from '@fast-check/vitest';
import { expect } from 'vitest';
import type { DoctorScheduleCommand } from '../../src/domain/doctor-schedule/doctor-schedule.commands.js';
import { bookings, doctorScheduleDecider, slotHoldOf, slotOf, type DoctorScheduleState } from '../../src/domain/doctor-schedule/doctor-schedule.decider.js';
import { doctorScheduleEventSchema, type DoctorScheduleEvent } from '../../src/domain/doctor-schedule/doctor-schedule.events.js';
import { slotProblem, type WeeklyHours, type WeeklySchedule } from '../../src/domain/doctor-schedule/weekly-schedule.js';
import { addDays } from '../../src/domain/shared/calendar-date.js';
import { fold } from '../../src/domain/shared/decider.js';
import { freeSlots } from '../../src/projections/doctors/doctor-slots.js';
import { DomainError } from '../../src/domain/shared/domain-error.js';
import { slotsOverlap, type TimeSlot } from '../../src/domain/shared/time-slot.js';
import { instantOfWallClock, minuteOfDay, wallClockAt } from '../../src/domain/shared/wall-clock.js';

const doctorId = 'doctor-p';
const minute = 60_000;
// The week around Berlin's spring-forward night, so the runs cross a daylight-saving change.
const startMs = Date.parse('2026-03-26T06:00:00Z');

const everyDay = (intervals: WeeklyHours['mon']): WeeklyHours => ({
  mon: intervals,
  tue: intervals,
  wed: intervals,
  thu: intervals,
  fri: intervals,
  sat: intervals,
  sun: intervals,
});

const schedules: WeeklySchedule[] = [
  {
    timeZone: 'Europe/Berlin',
    slotMinutes: 30,
    weeklyHours: everyDay([
      { from: '01:00', to: '04:00' },
      { from: '09:00', to: '12:30' },
    ]),
    daysOff: ['2026-03-28'],
  },
  { timeZone: 'Europe/Berlin', slotMinutes: 60, weeklyHours: everyDay([{ from: '08:00', to: '13:00' }]), daysOff: [] },
  { timeZone: 'America/New_York', slotMinutes: 45, weeklyHours: everyDay([{ from: '03:00', to: '09:00' }]), daysOff: [] },
  // 22:00–02:00 UTC (23:00–03:00 in winter): slots on both sides of UTC midnight and across it;
  // two lengths so that, after a change, a slot of one overlaps one of the other across midnight.
  { timeZone: 'America/Los_Angeles', slotMinutes: 30, weeklyHours: everyDay([{ from: '15:00', to: '19:00' }]), daysOff: ['2026-11-02'] },
  { timeZone: 'America/Los_Angeles', slotMinutes: 45, weeklyHours: everyDay([{ from: '15:00', to: '19:00' }]), daysOff: [] },
  // Around Berlin's fall-back night: 02:30 comes twice, and the first 02:30–03:15 spans the change.
  {
    timeZone: 'Europe/Berlin',
    slotMinutes: 45,
    weeklyHours: everyDay([
      { from: '01:00', to: '04:00' },
      { from: '22:00', to: '23:30' },
    ]),
    daysOff: ['2026-10-26'],
  },
  // Beirut's clocks change at midnight (28/29 March, 24/25 October): a night shift until 24:00
  // and on from 00:00, whose last slot of the evening ends as the clocks jump or go back.
  {
    timeZone: 'Asia/Beirut',
    slotMinutes: 30,
    weeklyHours: everyDay([
      { from: '00:00', to: '02:00' },
      { from: '22:00', to: '24:00' },
    ]),
    daysOff: [],
  },
];

const appointmentId = fc.constantFrom('a1', 'a2', 'a3', 'a4', 'a5', 'a6');

/**
 * A candidate start: mostly a grid slot of the schedule in force (so that bookings succeed and
 * collide), sometimes any quarter hour (so that every rule gets to refuse).
 */
const gridStart = fc
  .record({ days: fc.integer({ min: 0, max: 2 }), interval: fc.nat(), index: fc.integer({ min: 0, max: 5 }) })
  .map(({ days, interval, index }) => (now: number, state: DoctorScheduleState) => {
    if (state.status === 'unset') return new Date(now).toISOString();
    const { timeZone, slotMinutes, weeklyHours } = state.schedule;
    const local = wallClockAt(now, timeZone);
    const date = addDays(local.date, days);
    const intervals = weeklyHours[wallClockAt(`${date}T12:00:00Z`, timeZone).weekday];
    const chosen = intervals[interval % Math.max(intervals.length, 1)];
    const at = chosen && instantOfWallClock(date, minuteOfDay(chosen.from) + index * slotMinutes, timeZone);
    return new Date(at ?? now).toISOString();
  });
const anyQuarter = fc
  .record({ days: fc.integer({ min: -1, max: 3 }), quarter: fc.integer({ min: -8, max: 40 }) })
  .map(({ days, quarter }) => (now: number) => {
    const dayStart = Date.parse(`${new Date(now).toISOString().slice(0, 10)}T00:00:00Z`);
    return new Date(dayStart + days * 86_400_000 + quarter * 15 * minute).toISOString();
  });
/** An hour after a grid slot: on a fall-back night, the second time the clocks show its start. */
const hourAfterGrid = gridStart.map((grid) => (now: number, state: DoctorScheduleState) => new Date(Date.parse(grid(now, state)) + 60 * minute).toISOString());
const start = fc.oneof({ weight: 3, arbitrary: gridStart }, { weight: 1, arbitrary: anyQuarter }, { weight: 1, arbitrary: hourAfterGrid });

/** A command without its clock; the run supplies `now`, and the state for acknowledgements. */
type Step = { minutesLater: number; build: (now: number, state: DoctorScheduleState) => DoctorScheduleCommand };

const setSchedule = fc
  .record({ schedule: fc.constantFrom(...schedules), specialty: fc.constantFrom(null, 'Cardiology', ' Cardiology ', ''), acknowledge: fc.boolean() })
  .map(({ schedule, specialty, acknowledge }) => (now: number, state: DoctorScheduleState): DoctorScheduleCommand => {
    const acknowledgedAffected = acknowledge && state.status === 'active' ? bookings(state.booked).map((held) => held.appointmentId) : [];
    return { type: 'SetSchedule', data: { doctorId, ...schedule, specialty, acknowledgedAffected, now: new Date(now).toISOString() } };
  });
const book = fc.record({ appointmentId, start }).map(({ appointmentId, start }) => (now: number, state: DoctorScheduleState): DoctorScheduleCommand => ({
  type: 'BookSlot',
  data: { appointmentId, patientId: `patient-${appointmentId}`, start: start(now, state), now: new Date(now).toISOString() },
}));
/** What a schedule holds, slots and holds for moves, withdrawn or not. */
const held = (state: DoctorScheduleState) => (state.status === 'unset' ? [] : bookings(state.booked));
const heldStart = (state: DoctorScheduleState, id: string) => slotOf(state, id)?.start;
const release = appointmentId.map((appointmentId) => (): DoctorScheduleCommand => ({ type: 'ReleaseSlot', data: { appointmentId } }));
const holdForMove = fc.record({ appointmentId, start }).map(({ appointmentId, start }) => (now: number, state: DoctorScheduleState): DoctorScheduleCommand => ({
  type: 'HoldSlotForMove',
  // From where the slot is, as a mover that read the appointment just now saw it.
  data: { appointmentId, from: heldStart(state, appointmentId) ?? new Date(now).toISOString(), newStart: start(now, state), now: new Date(now).toISOString() },
}));
/** Mostly at the appointment's hold, as a reschedule's last step or its undo; sometimes anywhere, so that they get refused. */
const atHold = fc.record({ appointmentId, start, exact: fc.boolean() }).map(({ appointmentId, start, exact }) => (now: number, state: DoctorScheduleState) => ({
  appointmentId,
  to: (exact ? slotHoldOf(state, appointmentId)?.start : undefined) ?? start(now, state),
}));
const completeMove = atHold.map((at) => (now: number, state: DoctorScheduleState): DoctorScheduleCommand => ({
  type: 'CompleteSlotMove',
  data: { ...at(now, state), now: new Date(now).toISOString() },
}));
const dropHold = atHold.map((at) => (now: number, state: DoctorScheduleState): DoctorScheduleCommand => ({ type: 'DropSlotHold', data: at(now, state) }));

/**
 * A slot put back, as an undo of a move does: to any time (on the grid or not, past or future),
 * sometimes longer than a slot may be, so that every rule gets to refuse.
 */
const restore = fc
  .record({ appointmentId, start, minutes: fc.constantFrom(15, 30, 45, 60, 120, 150) })
  .map(({ appointmentId, start, minutes }) => (now: number, state: DoctorScheduleState): DoctorScheduleCommand => {
    const at = start(now, state);
    const end = new Date(Date.parse(at) + minutes * minute).toISOString();
    return { type: 'RestoreSlot', data: { appointmentId, from: heldStart(state, appointmentId) ?? new Date(now).toISOString(), start: at, end, now: new Date(now).toISOString() } };
  });

/** The doctor's erasure: rare, so that most runs keep booking, and a run seldom has it twice. */
const withdraw = fc.constant((now: number): DoctorScheduleCommand => ({ type: 'WithdrawSchedule', data: { doctorId, now: new Date(now).toISOString() } }));

const step: fc.Arbitrary<Step> = fc.record({
  // Now and then the clock steps back a little, as clocks on different machines do.
  minutesLater: fc.oneof({ weight: 9, arbitrary: fc.integer({ min: 0, max: 300 }) }, { weight: 1, arbitrary: fc.integer({ min: -120, max: 0 }) }),
  build: fc.oneof(
    { weight: 4, arbitrary: setSchedule },
    { weight: 20, arbitrary: book },
    { weight: 8, arbitrary: release },
    { weight: 12, arbitrary: holdForMove },
    { weight: 6, arbitrary: completeMove },
    { weight: 4, arbitrary: dropHold },
    { weight: 8, arbitrary: restore },
    { weight: 1, arbitrary: withdraw },
  ),
});

/**
 * Where a run starts, as minutes after `startMs` (the first step moves the clock there): Berlin's
 * spring-forward week, and just before the fall-back nights of Berlin and Los Angeles.
 */
const runStart = fc.constantFrom('2026-03-26T06:00:00Z', '2026-10-24T06:00:00Z', '2026-10-31T06:00:00Z').map((at) => (Date.parse(at) - startMs) / minute);

// Every run starts from a schedule, so that bookings have something to succeed against.
const steps = fc
  .tuple(runStart, setSchedule, fc.array(step, { minLength: 5, maxLength: 40 }))
  .map(([minutesLater, first, rest]) => [{ minutesLater, build: first }, ...rest]);

type Outcome = { command: DoctorScheduleCommand; before: DoctorScheduleState; events: DoctorScheduleEvent[]; after: DoctorScheduleState; now: number };

/** Decides each step; a refused command leaves the state as it was. */
function run(plan: Step[]): Outcome[] {
  let state = doctorScheduleDecider.initialState;
  let clock = startMs;
  const outcomes: Outcome[] = [];
  for (const { minutesLater, build } of plan) {
    clock += minutesLater * minute;
    const command = build(clock, state);
    let events: DoctorScheduleEvent[];
    try {
      events = doctorScheduleDecider.decide(command, state);
    } catch (error) {
      if (error instanceof DomainError) continue;
      throw error;
    }
    const before = state;
    for (const event of events) state = doctorScheduleDecider.evolve(state, event);
    outcomes.push({ command, before, events, after: state, now: clock });
  }
  return outcomes;
}

/** What the events alone say each appointment holds: its slot, and time held for its move. */
type Model = { slots: Map<string, TimeSlot>; holds: Map<string, TimeSlot> };

/**
 * What the events alone say each appointment holds, kept without any pruning: the state must
 * agree with it on every slot and hold that has not ended, so a booking can be neither overwritten
 * nor forgotten while it matters.
 */
function replay({ slots: model, holds }: Model, event: DoctorScheduleEvent, now: number): void {
  if (event.type === 'SlotMoveHeld') {
    expect(model.get(event.data.appointmentId)?.start).toBe(event.data.previousStart);
    expect(holds.has(event.data.appointmentId), `${event.data.appointmentId} holds for two moves`).toBe(false);
    holds.set(event.data.appointmentId, { start: event.data.start, end: event.data.end });
  } else if (event.type === 'SlotMoveCompleted') {
    expect(model.get(event.data.appointmentId)?.start).toBe(event.data.previousStart);
    expect(holds.get(event.data.appointmentId)).toEqual({ start: event.data.start, end: event.data.end });
    holds.delete(event.data.appointmentId);
    model.set(event.data.appointmentId, { start: event.data.start, end: event.data.end });
  } else if (event.type === 'SlotMoveDropped') {
    expect(holds.get(event.data.appointmentId)?.start).toBe(event.data.start);
    holds.delete(event.data.appointmentId);
  } else if (event.type === 'SlotBooked') {
    const earlier = model.get(event.data.appointmentId);
    expect(earlier === undefined || Date.parse(earlier.end) <= now, `${event.data.appointmentId} booked twice`).toBe(true);
    model.set(event.data.appointmentId, { start: event.data.start, end: event.data.end });
  } else if (event.type === 'SlotReleased') {
    expect(model.get(event.data.appointmentId)?.start).toBe(event.data.start);
    model.delete(event.data.appointmentId);
  } else if (event.type === 'SlotMoved' || event.type === 'SlotRestored') {
    expect(model.get(event.data.appointmentId)?.start).toBe(event.data.previousStart);
    model.set(event.data.appointmentId, { start: event.data.start, end: event.data.end });
  }
}

const byStart = (a: TimeSlot, b: TimeSlot) => Date.parse(a.start) - Date.parse(b.start);

/** The wall clock at `ms` in `timeZone`, read from Intl rather than from the code under test. */
const formats = new Map<string, Intl.DateTimeFormat>();
function localAt(ms: number, timeZone: string): { date: string; minute: number; weekday: keyof WeeklyHours } {
  const format =
    formats.get(timeZone) ??
    new Intl.DateTimeFormat('en-US', { timeZone, hourCycle: 'h23', year: 'numeric', month: '2-digit', day: '2-digit', hour: '2-digit', minute: '2-digit' });
  formats.set(timeZone, format);
  const parts = Object.fromEntries(format.formatToParts(ms).map((part) => [part.type, part.value]));
  const date = `${parts.year}-${parts.month}-${parts.day}`;
  const weekday = (['sun', 'mon', 'tue', 'wed', 'thu', 'fri', 'sat'] as const)[new Date(`${date}T00:00:00Z`).getUTCDay()] ?? 'mon';
  return { date, minute: Number(parts.hour) * 60 + Number(parts.minute), weekday };
}

/**
 * Whether `schedule` offers a slot at `start`, written out independently of `slotProblem`: not
 * on a day off, on the grid of a working interval and ending by its end, the first time the
 * clocks show that wall time (every zone the runs use shifts by one hour), and the offset the
 * same at its start and its last minute.
 */
function offers(schedule: WeeklySchedule, start: string): boolean {
  const ms = Date.parse(start);
  const local = localAt(ms, schedule.timeZone);
  if (schedule.daysOff.includes(local.date)) return false;
  const onGrid = schedule.weeklyHours[local.weekday].some(
    ({ from, to }) =>
      local.minute >= minuteOfDay(from) && (local.minute - minuteOfDay(from)) % schedule.slotMinutes === 0 && local.minute + schedule.slotMinutes <= minuteOfDay(to),
  );
  const hourBefore = localAt(ms - 60 * minute, schedule.timeZone);
  const repeated = hourBefore.date === local.date && hourBefore.minute === local.minute;
  const last = localAt(ms + (schedule.slotMinutes - 1) * minute, schedule.timeZone);
  const unbroken = last.date === local.date && last.minute === local.minute + schedule.slotMinutes - 1;
  return ms % minute === 0 && onGrid && !repeated && unbroken;
}

test.prop([steps])('no time is ever held by two appointments (slots and holds for moves alike), no appointment holds two slots or two holds, and no live booking or hold is forgotten', (plan) => {
  const model: Model = { slots: new Map(), holds: new Map() };
  for (const { events, after, now } of run(plan)) {
    for (const event of events) replay(model, event, now);
    const liveOf = (entries: Map<string, TimeSlot>) => [...entries].filter(([, slot]) => Date.parse(slot.end) > now).map(([appointmentId, slot]) => ({ appointmentId, ...slot }));
    const live = [...liveOf(model.slots), ...liveOf(model.holds).map((hold) => ({ ...hold, heldForMove: true, heldAt: expect.any(String) as unknown }))];
    for (const [i, a] of live.entries()) {
      for (const b of live.slice(i + 1)) {
        // A move's hold may overlap its own appointment's slot (a move by less than a slot's length).
        if (a.appointmentId !== b.appointmentId) expect(slotsOverlap(a, b), `${JSON.stringify(a)} vs ${JSON.stringify(b)}`).toBe(false);
      }
    }
    const entries = held(after);
    expect(entries.filter((slot) => Date.parse(slot.end) > now).sort(byStart)).toEqual(live.sort(byStart));
    for (const kind of [false, true]) {
      const ids = entries.filter((entry) => ('heldForMove' in entry) === kind).map((entry) => entry.appointmentId);
      expect(new Set(ids).size).toBe(ids.length);
    }
  }
});

test.prop([steps])('a slot is taken only in the future, on the grid of the schedule in force, for its full length', (plan) => {
  for (const { before, events, now } of run(plan)) {
    for (const event of events) {
      if (event.type !== 'SlotBooked' && event.type !== 'SlotMoveHeld') continue;
      expect(before.status).toBe('active');
      if (before.status !== 'active') continue;
      expect(Date.parse(event.data.start)).toBeGreaterThan(now);
      expect(offers(before.schedule, event.data.start), `${event.data.start} offered by ${JSON.stringify(before.schedule)}`).toBe(true);
      expect(Date.parse(event.data.end) - Date.parse(event.data.start)).toBe(before.schedule.slotMinutes * minute);
    }
  }
});

const liveSlots = (state: DoctorScheduleState, now: number) => held(state).filter((slot) => Date.parse(slot.end) > now).sort(byStart);

/** The state after `command`, or `undefined` when a rule refuses it. */
function decided(state: DoctorScheduleState, command: DoctorScheduleCommand): DoctorScheduleState | undefined {
  try {
    return doctorScheduleDecider.decide(command, state).reduce(doctorScheduleDecider.evolve, state);
  } catch (error) {
    if (error instanceof DomainError) return undefined;
    throw error;
  }
}

// What a failed reschedule's undo relies on: dropping its hold is never refused, and leaves
// everything as it was, the schedule withdrawn meanwhile (the doctor erased while the reschedule
// ran) or not. And a slot whose appointment did not follow its move is restored: never refused
// for the grid, the clock or the slot length, only for another appointment, and none can have
// come in between.
test.prop([steps, start])('a hold dropped, or a completed move undone by a restore, leaves every slot as it was, whatever schedule was set since it was booked, or withdrawn since it was held', (plan, target) => {
  for (const { after: before, now } of run(plan)) {
    if (before.status !== 'active') continue;
    const at = new Date(now).toISOString();
    for (const booking of bookings(before.booked)) {
      const { appointmentId, start, end } = booking;
      if ('heldForMove' in booking || slotHoldOf(before, appointmentId)) continue;
      const newStart = target(now, before);
      const held = decided(before, { type: 'HoldSlotForMove', data: { appointmentId, from: start, newStart, now: at } });
      if (!held) continue;
      const drop: DoctorScheduleCommand = { type: 'DropSlotHold', data: { appointmentId, to: newStart } };
      expect(liveSlots(doctorScheduleDecider.decide(drop, held).reduce(doctorScheduleDecider.evolve, held), now)).toEqual(liveSlots(before, now));
      const withdrawn = decided(held, { type: 'WithdrawSchedule', data: { doctorId, now: at } });
      const droppedWithdrawn = withdrawn && decided(withdrawn, drop);
      expect(droppedWithdrawn && liveSlots(droppedWithdrawn, now)).toEqual(liveSlots(before, now));
      const completed = decided(held, { type: 'CompleteSlotMove', data: { appointmentId, to: newStart, now: at } });
      const from = (completed && slotOf(completed, appointmentId)?.start) ?? start;
      const restore: DoctorScheduleCommand = { type: 'RestoreSlot', data: { appointmentId, from, start, end, now: at } };
      const restored = completed && decided(completed, restore);
      expect(restored && liveSlots(restored, now)).toEqual(liveSlots(before, now));
    }
  }
});

test.prop([steps])('once withdrawn, a schedule stays withdrawn and takes no slot, and every slot it holds can still be given back', (plan) => {
  const outcomes = run(plan);
  for (const { before, events, after } of outcomes) {
    if (before.status !== 'withdrawn') continue;
    expect(after.status).toBe('withdrawn');
    expect(events.filter((event) => event.type === 'SlotBooked' || event.type === 'SlotMoveHeld' || event.type === 'ScheduleSet')).toEqual([]);
  }
  const last = outcomes.at(-1)?.after;
  if (last?.status !== 'withdrawn') return;
  for (const booking of bookings(last.booked)) {
    const { appointmentId, start, end } = booking;
    const freed = doctorScheduleDecider.decide({ type: 'ReleaseSlot', data: { appointmentId } }, last);
    const type = 'heldForMove' in booking ? 'SlotMoveDropped' : 'SlotReleased';
    expect(freed).toContainEqual({ type, data: { doctorId, appointmentId, start, end } });
    const after = freed.reduce(doctorScheduleDecider.evolve, last);
    expect([slotOf(after, appointmentId), slotHoldOf(after, appointmentId)]).toEqual([undefined, undefined]);
  }
});

/** The doctor erased before publishing any schedule: the withdrawal comes first. */
const withdrawnFirst = fc
  .tuple(runStart, withdraw, fc.array(step, { minLength: 5, maxLength: 40 }))
  .map(([minutesLater, first, rest]) => [{ minutesLater, build: first }, ...rest]);

test.prop([withdrawnFirst])('withdrawn before any schedule, it is never set, takes no slot, and every later command changes nothing', (plan) => {
  const [first, ...later] = run(plan);
  if (!first) throw new Error('a withdrawal from nothing is never refused');
  expect(first.events.map((event) => event.type)).toEqual(['ScheduleWithdrawn']);
  for (const event of first.events) expect(doctorScheduleEventSchema.parse(JSON.parse(JSON.stringify(event)))).toEqual(event);
  expect(fold(doctorScheduleDecider, first.events)).toEqual(first.after);
  for (const { events, after } of later) {
    expect(events).toEqual([]);
    expect(after).toEqual(first.after);
  }
});

test.prop([steps])('the same command again changes nothing, and folding the events gives the same state', (plan) => {
  const outcomes = run(plan);
  for (const { command, after } of outcomes) expect(doctorScheduleDecider.decide(command, after)).toEqual([]);
  const last = outcomes.at(-1);
  if (last) expect(fold(doctorScheduleDecider, outcomes.flatMap((outcome) => outcome.events))).toEqual(last.after);
});

test.prop([steps])('a schedule change never drops a live booking unannounced', (plan) => {
  for (const { before, events, now } of run(plan)) {
    for (const event of events) {
      if (event.type !== 'ScheduleSet' || before.status !== 'active') continue;
      const newSchedule: WeeklySchedule = { ...event.data };
      const misfits = bookings(before.booked).filter(
        (held) =>
          Date.parse(held.end) > now &&
          (!offers(newSchedule, held.start) || Date.parse(held.end) - Date.parse(held.start) !== newSchedule.slotMinutes * minute),
      );
      expect([...event.data.affectedAppointmentIds].sort()).toEqual([...new Set(misfits.map((held) => held.appointmentId))].sort());
    }
  }
});

// The grid on its own, in zones whose daylight-saving rules are unusual: half-hour shifts
// (Lord Howe), changes at midnight (Santiago, Beirut), quarter-hour offsets (Chatham, Kathmandu).
// The days before a change at midnight end as the clocks jump or go back, where 24:00 meets it.
const zones = ['Europe/Berlin', 'America/New_York', 'Australia/Lord_Howe', 'America/Santiago', 'Asia/Beirut', 'Pacific/Chatham', 'Asia/Kathmandu'];
const transitionDays = [
  '2026-03-29',
  '2026-10-25',
  '2026-03-08',
  '2026-11-01',
  '2026-04-05',
  '2026-10-04',
  '2026-09-06',
  '2026-09-27',
  '2026-03-28',
  '2026-10-24',
  '2026-04-04',
  '2026-09-05',
];
const day = fc.oneof(fc.constantFrom(...transitionDays), fc.integer({ min: 0, max: 364 }).map((n) => addDays('2026-01-01', n)));
const fiveMinutes = (n: number) => `${String(Math.floor(n / 12)).padStart(2, '0')}:${String((n % 12) * 5).padStart(2, '0')}`;
// Point 288 is 24:00, drawn often enough to matter. Points pair up from the last, so it always
// ends an interval and never starts one.
const point = fc.oneof({ weight: 1, arbitrary: fc.constant(288) }, { weight: 6, arbitrary: fc.integer({ min: 0, max: 287 }) });
const hours = fc
  .uniqueArray(point, { minLength: 2, maxLength: 4 })
  .map((points) => [...points].sort((a, b) => a - b))
  .map((points) => {
    const intervals = [];
    for (let i = points.length % 2; i + 1 < points.length; i += 2) intervals.push({ from: fiveMinutes(points[i] ?? 0), to: fiveMinutes(points[i + 1] ?? 0) });
    return intervals;
  });
const grid = fc.record({
  timeZone: fc.constantFrom(...zones),
  slotMinutes: fc.integer({ min: 2, max: 24 }).map((n) => n * 5),
  intervals: hours,
  date: day,
});

// Santiago's clocks spring from 00:00 to 01:00 on 2026-09-06: a day without its first hour, after
// one whose last slot ends as they jump. On 2026-04-05 they go back from 00:00 to 23:00.
const springsAtMidnight = { timeZone: 'America/Santiago', slotMinutes: 10, intervals: [{ from: '00:00', to: '00:10' }], date: '2026-09-06' };
const beforeSpringAtMidnight = { timeZone: 'America/Santiago', slotMinutes: 30, intervals: [{ from: '20:00', to: '24:00' }], date: '2026-09-05' };
const beforeFallAtMidnight = { timeZone: 'America/Santiago', slotMinutes: 30, intervals: [{ from: '20:00', to: '24:00' }], date: '2026-04-04' };

test.prop([grid], { examples: [[springsAtMidnight], [beforeSpringAtMidnight], [beforeFallAtMidnight]] })('the slots of any day never overlap, the listing shows exactly them, and a day without a clock change has every grid slot', ({ timeZone, slotMinutes, intervals, date }) => {
  const schedule: WeeklySchedule = { timeZone, slotMinutes, weeklyHours: everyDay(intervals), daysOff: [] };
  // Every five minutes of the UTC span that can hold the local day (offsets run from −12 h to +14 h).
  const from = Date.parse(`${date}T00:00:00Z`) - 15 * 3_600_000;
  const offered: number[] = [];
  const offsets = new Set<number>();
  let firstMinute = Number.POSITIVE_INFINITY;
  for (let at = from; at < from + 54 * 3_600_000; at += 5 * minute) {
    const local = wallClockAt(at, timeZone);
    if (local.date !== date) continue;
    firstMinute = Math.min(firstMinute, local.minute);
    offsets.add(Date.parse(`${local.date}T00:00:00Z`) + local.minute * minute - at);
    if (slotProblem(schedule, new Date(at).toISOString()) === undefined) offered.push(at);
  }
  for (let i = 1; i < offered.length; i++) expect((offered[i] ?? 0) - (offered[i - 1] ?? 0)).toBeGreaterThanOrEqual(slotMinutes * minute);
  // Asked the day before: every slot of the day is in the future and within the year ahead.
  const listed = freeSlots(schedule, [], { from: new Date(from), to: new Date(from + 54 * 3_600_000) }, new Date(from - 86_400_000))
    .map((slot) => Date.parse(slot.start))
    .filter((at) => wallClockAt(at, timeZone).date === date);
  expect(listed).toEqual(offered);

  // A change at midnight (Santiago springs from 00:00 to 01:00) shows as a day that starts late.
  if (offsets.size > 1 || firstMinute !== 0) return;
  const expected = intervals.reduce((sum, { from, to }) => sum + Math.floor((minuteOfDay(to) - minuteOfDay(from)) / slotMinutes), 0);
  expect(offered.length).toBe(expected);
});

test.prop([steps])('every event decide emits survives JSON and its published schema unchanged', (plan) => {
  for (const { events } of run(plan)) {
    for (const event of events) expect(doctorScheduleEventSchema.parse(JSON.parse(JSON.stringify(event)))).toEqual(event);
  }
});

/**
 * The other side of the safety properties above: a decider that refused every booking would pass
 * them. After any run, a free grid slot one to three days ahead, within working hours, is booked
 * by a new appointment, unless the schedule was withdrawn, which refuses it for that reason.
 * Candidates come from the grid by construction; only the few a clock change, a day off or an
 * existing booking rules out are left aside.
 */
test.prop([steps, fc.integer({ min: 1, max: 3 }), fc.nat()])('given any history, when a new appointment books a free grid slot in the future, then it is booked, unless the schedule was withdrawn', (plan, daysAhead, pick) => {
  const last = run(plan).at(-1);
  if (!last || last.after.status === 'unset') throw new Error('every run starts by setting a schedule');
  const { after: state, now } = last;
  const { timeZone, slotMinutes, weeklyHours } = state.schedule;
  const date = addDays(localAt(now, timeZone).date, daysAhead);
  const weekday = localAt(Date.parse(`${date}T12:00:00Z`), timeZone).weekday;
  const candidates = weeklyHours[weekday].flatMap(({ from, to }) =>
    Array.from({ length: Math.floor((minuteOfDay(to) - minuteOfDay(from)) / slotMinutes) }, (_, k) => instantOfWallClock(date, minuteOfDay(from) + k * slotMinutes, timeZone)),
  );
  const taken = bookings(state.booked);
  const free = candidates
    .flatMap((at) => (at === undefined ? [] : [new Date(at).toISOString()]))
    .filter((start) => offers(state.schedule, start))
    .filter((start) => !taken.some((held) => slotsOverlap(held, { start, end: new Date(Date.parse(start) + slotMinutes * minute).toISOString() })));
  const start = free[pick % Math.max(free.length, 1)];
  if (start === undefined) return;
  const command: DoctorScheduleCommand = { type: 'BookSlot', data: { appointmentId: 'a-new', patientId: 'patient-new', start, now: new Date(now).toISOString() } };

  if (state.status === 'withdrawn') {
    expect(() => doctorScheduleDecider.decide(command, state)).toThrow(expect.objectContaining({ code: 'schedule-withdrawn' }));
    return;
  }
  expect(doctorScheduleDecider.decide(command, state)).toMatchObject([
    { type: 'SlotBooked', data: { appointmentId: 'a-new', start, end: new Date(Date.parse(start) + slotMinutes * minute).toISOString() } },
  ]);
});

/**
 * The bound on booking ahead, against any history: a free grid slot a year ahead, give or take a
 * few days, is booked, or held for a move, exactly when it starts at most 365 days after now.
 */
test.prop([steps, fc.integer({ min: 360, max: 370 }), fc.nat(), fc.boolean()])(
  'given any history, when a slot about a year ahead is booked or moved to, then it is taken only if it starts at most 365 days from now',
  (plan, daysAhead, pick, move) => {
    const last = run(plan).at(-1);
    if (!last || last.after.status !== 'active') return;
    const { after: state, now } = last;
    const { timeZone, slotMinutes, weeklyHours } = state.schedule;
    const date = addDays(localAt(now, timeZone).date, daysAhead);
    const weekday = localAt(Date.parse(`${date}T12:00:00Z`), timeZone).weekday;
    const starts = weeklyHours[weekday]
      .flatMap(({ from, to }) => Array.from({ length: Math.floor((minuteOfDay(to) - minuteOfDay(from)) / slotMinutes) }, (_, k) => instantOfWallClock(date, minuteOfDay(from) + k * slotMinutes, timeZone)))
      .flatMap((at) => (at === undefined ? [] : [new Date(at).toISOString()]))
      .filter((start) => offers(state.schedule, start));
    const start = starts[pick % Math.max(starts.length, 1)];
    const mover = bookings(state.booked).find((held) => !('heldForMove' in held) && slotHoldOf(state, held.appointmentId) === undefined);
    if (start === undefined) return;
    const at = new Date(now).toISOString();
    const command: DoctorScheduleCommand =
      move && mover
        ? { type: 'HoldSlotForMove', data: { appointmentId: mover.appointmentId, from: mover.start, newStart: start, now: at } }
        : { type: 'BookSlot', data: { appointmentId: 'a-new', patientId: 'patient-new', start, now: at } };

    if (Date.parse(start) - now <= 365 * 86_400_000) expect(decided(state, command)).toBeDefined();
    else expect(() => doctorScheduleDecider.decide(command, state)).toThrow(expect.objectContaining({ code: 'slot-too-far-ahead' }));
  },
);

// Slots are kept by the UTC day they start on: one that starts just after UTC midnight must still
// meet one of another length that started the evening before, in the listing's zone.
test.prop([fc.integer({ min: 0, max: 300 }).map((n) => addDays('2026-01-05', n))])(
  'given a slot across UTC midnight kept after a change of slot length, when a slot starting at UTC midnight is booked, then it is taken',
  (date) => {
    const [thirty, fortyFive] = [schedules[3], schedules[4]];
    if (!thirty || !fortyFive) throw new Error('the Los Angeles schedules are missing');
    const now = Date.parse(`${addDays(date, -1)}T12:00:00Z`);
    const at = (localMinute: number) => new Date(instantOfWallClock(date, localMinute, 'America/Los_Angeles') ?? 0).toISOString();
    const evening = fold(
      doctorScheduleDecider,
      doctorScheduleDecider.decide({ type: 'SetSchedule', data: { doctorId, ...fortyFive, specialty: null, acknowledgedAffected: [], now: new Date(now).toISOString() } }, doctorScheduleDecider.initialState),
    );
    // 16:30–17:15 in Los Angeles: 23:30–00:15 UTC (or 00:30–01:15 in winter, then the other slot starts at 01:00).
    const held = doctorScheduleDecider.decide({ type: 'BookSlot', data: { appointmentId: 'a1', patientId: 'p1', start: at(16 * 60 + 30), now: new Date(now).toISOString() } }, evening);
    const booked = held.reduce(doctorScheduleDecider.evolve, evening);
    const changed = doctorScheduleDecider
      .decide({ type: 'SetSchedule', data: { doctorId, ...thirty, specialty: null, acknowledgedAffected: ['a1'], now: new Date(now).toISOString() } }, booked)
      .reduce(doctorScheduleDecider.evolve, booked);
    const clash: DoctorScheduleCommand = { type: 'BookSlot', data: { appointmentId: 'a2', patientId: 'p2', start: at(17 * 60), now: new Date(now).toISOString() } };

    expect(() => doctorScheduleDecider.decide(clash, changed)).toThrow(expect.objectContaining({ code: 'slot-taken' }));
  },
);

// The runs above meet a clock change only now and then; here every five minutes of a day around
// one is offered to the decider, and it books exactly those the independent rule offers.
const clockChanges = [
  { schedule: 5, date: '2026-10-25' }, // Berlin falls back: 02:30 twice, 02:30–03:15 spans the change
  { schedule: 0, date: '2026-03-29' }, // Berlin springs forward inside 01:00–04:00
  { schedule: 3, date: '2026-11-01' }, // Los Angeles falls back, evening slots across UTC midnight
  { schedule: 4, date: '2026-03-08' },
  { schedule: 2, date: '2026-11-01' }, // New York
  { schedule: 6, date: '2026-03-29' }, // Beirut springs forward at midnight, after a shift until 24:00
  { schedule: 6, date: '2026-10-25' }, // Beirut goes back at midnight: 23:00–24:00 twice
];
test.prop([fc.constantFrom(...clockChanges), fc.integer({ min: -1, max: 1 })], { numRuns: 30 })(
  'given a schedule around a clock change, when any five-minute instant of the day is booked, then exactly the offered slots are',
  ({ schedule: index, date }, dayShift) => {
    const schedule = schedules[index];
    if (!schedule) throw new Error(`no schedule ${index}`);
    const day = addDays(date, dayShift);
    const now = new Date(Date.parse(`${day}T00:00:00Z`) - 2 * 86_400_000).toISOString();
    const state = fold(
      doctorScheduleDecider,
      doctorScheduleDecider.decide({ type: 'SetSchedule', data: { doctorId, ...schedule, specialty: null, acknowledgedAffected: [], now } }, doctorScheduleDecider.initialState),
    );
    const from = Date.parse(`${day}T00:00:00Z`) - 12 * 3_600_000;
    for (let at = from; at < from + 48 * 3_600_000; at += 5 * minute) {
      const start = new Date(at).toISOString();
      const booked = decided(state, { type: 'BookSlot', data: { appointmentId: 'a1', patientId: 'p1', start, now } });
      expect(booked !== undefined, `${start} in ${schedule.timeZone}`).toBe(offers(schedule, start));
    }
  },
);
