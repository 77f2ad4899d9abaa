import { describe, expect, it } from 'vitest';
import type { BookSlot, CompleteSlotMove, DropSlotHold, HoldSlotForMove, RestoreSlot, SetSchedule, WithdrawSchedule } from '../../src/domain/doctor-schedule/doctor-schedule.commands.js';
import { setScheduleSchema } from '../../src/domain/doctor-schedule/doctor-schedule.commands.js';
import {
  bookings,
  doctorScheduleDecider,
  doctorScheduleStreamId,
  slotHoldOf,
  slotOf,
} from '../../src/domain/doctor-schedule/doctor-schedule.decider.js';
import { ScheduleConflictError } from '../../src/domain/doctor-schedule/doctor-schedule.errors.js';
import type {
  DoctorScheduleEvent,
  ScheduleSet,
  ScheduleWithdrawn,
  SlotBooked,
  SlotMoveCompleted,
  SlotMoveDropped,
  SlotMoved,
  SlotMoveHeld,
  SlotRestored,
} from '../../src/domain/doctor-schedule/doctor-schedule.events.js';
import type { WeeklyHours } from '../../src/domain/doctor-schedule/weekly-schedule.js';
import { fold } from '../../src/domain/shared/decider.js';
import { deciderSpec } from '../support/decider-spec.js';

const spec = deciderSpec(doctorScheduleDecider);

const doctorId = 'doctor-1';
const now = '2026-03-02T08:00:00.000Z';
const noHours: WeeklyHours = { mon: [], tue: [], wed: [], thu: [], fri: [], sat: [], sun: [] };
const weekday = [
  { from: '09:00', to: '12:30' },
  { from: '14:00', to: '17:00' },
];
// Weekdays in Berlin, 30-minute slots; Easter Monday off.
const weeklyHours: WeeklyHours = { ...noHours, mon: weekday, tue: weekday, wed: weekday, thu: weekday, fri: weekday };

function setSchedule(data: Partial<SetSchedule['data']> = {}): SetSchedule {
  return {
    type: 'SetSchedule',
    data: {
      doctorId,
      timeZone: 'Europe/Berlin',
      slotMinutes: 30,
      weeklyHours,
      daysOff: ['2026-04-06'],
      specialty: null,
      acknowledgedAffected: [],
      now,
      ...data,
    },
  };
}

function scheduleSet(data: Partial<ScheduleSet['data']> = {}): ScheduleSet {
  return {
    type: 'ScheduleSet',
    data: {
      doctorId,
      timeZone: 'Europe/Berlin',
      slotMinutes: 30,
      weeklyHours,
      daysOff: ['2026-04-06'],
      specialty: null,
      affectedAppointmentIds: [],
      setAt: now,
      ...data,
    },
  };
}

const bookSlot = (appointmentId: string, start: string, at = now): BookSlot => ({
  type: 'BookSlot',
  data: { appointmentId, patientId: `patient-of-${appointmentId}`, start, now: at },
});

const slotBooked = (appointmentId: string, start: string, end: string, at = now): SlotBooked => ({
  type: 'SlotBooked',
  data: { doctorId, appointmentId, patientId: `patient-of-${appointmentId}`, start, end, bookedAt: at },
});

type Span = [start: string, end: string];

const slotMoved = (appointmentId: string, [previousStart, previousEnd]: Span, [start, end]: Span): SlotMoved => ({
  type: 'SlotMoved',
  data: { doctorId, appointmentId, previousStart, previousEnd, start, end, movedAt: now },
});

// Monday 9 March 2026, Berlin on CET (UTC+1): 09:00 local is 08:00Z.
const mon0900 = '2026-03-09T08:00:00.000Z';
const mon0930 = '2026-03-09T08:30:00.000Z';
const mon1000 = '2026-03-09T09:00:00.000Z';

const mon1030 = '2026-03-09T09:30:00.000Z';

const holdSlot = (appointmentId: string, newStart: string, at = now, from = mon0900): HoldSlotForMove => ({
  type: 'HoldSlotForMove',
  data: { appointmentId, from, newStart, now: at },
});

const slotMoveHeld = (appointmentId: string, [previousStart, previousEnd]: Span, [start, end]: Span, at = now): SlotMoveHeld => ({
  type: 'SlotMoveHeld',
  data: { doctorId, appointmentId, previousStart, previousEnd, start, end, heldAt: at },
});

const completeMove = (appointmentId: string, to: string, at = now, heldAt?: string): CompleteSlotMove => ({
  type: 'CompleteSlotMove',
  data: { appointmentId, to, now: at, ...(heldAt === undefined ? {} : { heldAt }) },
});

const slotMoveCompleted = (appointmentId: string, [previousStart, previousEnd]: Span, [start, end]: Span, at = now): SlotMoveCompleted => ({
  type: 'SlotMoveCompleted',
  data: { doctorId, appointmentId, previousStart, previousEnd, start, end, completedAt: at },
});

const dropHold = (appointmentId: string, to: string, heldAt?: string): DropSlotHold => ({
  type: 'DropSlotHold',
  data: { appointmentId, to, ...(heldAt === undefined ? {} : { heldAt }) },
});

const slotMoveDropped = (appointmentId: string, [start, end]: Span): SlotMoveDropped => ({ type: 'SlotMoveDropped', data: { doctorId, appointmentId, start, end } });


describe('DoctorSchedule stream', () => {
  it('is named doctorSchedule-<doctorId>', () => {
    expect(doctorScheduleStreamId('d-7')).toBe('doctorSchedule-d-7');
  });
});

describe('SetSchedule', () => {
  it('sets the first schedule, normalised: intervals by start, days off sorted once each', () => {
    spec
      .given([])
      .when(setSchedule({ weeklyHours: { ...noHours, mon: [...weekday].reverse() }, daysOff: ['2026-05-01', '2026-04-06', '2026-05-01'] }))
      .then([scheduleSet({ weeklyHours: { ...noHours, mon: weekday }, daysOff: ['2026-04-06', '2026-05-01'] })]);
  });

  it('records when it was set in UTC', () => {
    spec.given([]).when(setSchedule({ now: '2026-03-02T09:00:00+01:00' })).then([scheduleSet({ setAt: now })]);
  });

  it('replaces an existing schedule', () => {
    spec.given([scheduleSet()]).when(setSchedule({ slotMinutes: 20 })).then([scheduleSet({ slotMinutes: 20 })]);
  });

  it('changes nothing when the schedule is the same', () => {
    spec
      .given([scheduleSet()])
      .when(setSchedule({ weeklyHours: { ...weeklyHours, mon: [...weekday].reverse() } }))
      .then([]);
  });

  it('publishes a specialty with the hours, trimmed', () => {
    spec.given([scheduleSet()]).when(setSchedule({ specialty: '  Cardiology ' })).then([scheduleSet({ specialty: 'Cardiology' })]);
  });

  it('changes nothing when only the specialty is repeated, however it is padded', () => {
    spec.given([scheduleSet({ specialty: 'Cardiology' })]).when(setSchedule({ specialty: 'Cardiology  ' })).then([]);
  });

  it('withdraws the specialty when the new schedule gives none, or a blank one', () => {
    spec.given([scheduleSet({ specialty: 'Cardiology' })]).when(setSchedule({ specialty: null })).then([scheduleSet()]);
    spec.given([scheduleSet({ specialty: 'Cardiology' })]).when(setSchedule({ specialty: '   ' })).then([scheduleSet()]);
  });

  it('refuses a specialty longer than 100 characters', () => {
    spec.given([]).when(setSchedule({ specialty: 'x'.repeat(101) })).thenFails('invalid-specialty');
  });

  it('refuses a time zone that is not an IANA zone', () => {
    spec.given([]).when(setSchedule({ timeZone: 'Mars/Olympus_Mons' })).thenFails('invalid-time-zone');
  });

  it.each([9, 121, 12.5])('refuses a slot length of %s minutes', (slotMinutes) => {
    spec.given([]).when(setSchedule({ slotMinutes })).thenFails('invalid-slot-length');
  });

  it.each([
    ['an interval that ends before it starts', { from: '12:00', to: '09:00' }],
    ['an empty interval', { from: '09:00', to: '09:00' }],
    ['a time that is not HH:MM', { from: '9:00', to: '12:00' }],
    ['an end past the end of the day', { from: '09:00', to: '24:01' }],
    ['an hour past 24', { from: '09:00', to: '25:00' }],
    ['a start at 24:00, which no clock shows', { from: '24:00', to: '24:00' }],
  ])('refuses %s', (_, interval) => {
    spec
      .given([])
      .when(setSchedule({ weeklyHours: { ...noHours, tue: [interval] } }))
      .thenFails('invalid-interval');
  });

  it('refuses overlapping intervals within a day', () => {
    const tue = [
      { from: '13:00', to: '15:00' },
      { from: '09:00', to: '13:30' },
    ];
    spec.given([]).when(setSchedule({ weeklyHours: { ...noHours, tue } })).thenFails('overlapping-intervals');
  });

  it('accepts intervals that touch', () => {
    const tue = [
      { from: '09:00', to: '12:00' },
      { from: '12:00', to: '13:00' },
    ];
    spec
      .given([])
      .when(setSchedule({ weeklyHours: { ...noHours, tue } }))
      .then([scheduleSet({ weeklyHours: { ...noHours, tue } })]);
  });

  it('accepts an interval that ends at 24:00, the end of the day', () => {
    const nightShift = { ...noHours, mon: [{ from: '20:00', to: '24:00' }], tue: [{ from: '00:00', to: '02:00' }] };
    spec
      .given([])
      .when(setSchedule({ weeklyHours: nightShift }))
      .then([scheduleSet({ weeklyHours: nightShift })]);
  });

  it('refuses an interval overlapping one that ends at 24:00', () => {
    const tue = [
      { from: '23:30', to: '23:45' },
      { from: '20:00', to: '24:00' },
    ];
    spec.given([]).when(setSchedule({ weeklyHours: { ...noHours, tue } })).thenFails('overlapping-intervals');
  });

  it('refuses a day off that is not a date', () => {
    spec.given([]).when(setSchedule({ daysOff: ['2026-02-30'] })).thenFails('invalid-day-off');
  });

  it("refuses another doctor's schedule on this stream", () => {
    spec.given([scheduleSet()]).when(setSchedule({ doctorId: 'doctor-2' })).thenFails('doctor-mismatch');
  });

  it('refuses hours that would leave a booked appointment outside them', () => {
    const later = { ...weeklyHours, mon: [{ from: '10:00', to: '12:30' }] };
    spec
      .given([scheduleSet(), slotBooked('a-1', mon0900, mon0930), slotBooked('a-2', mon1000, '2026-03-09T09:30:00.000Z')])
      .when(setSchedule({ weeklyHours: later }))
      .thenFails('schedule-conflict');
  });

  it('names the affected appointments in the conflict, and only those', () => {
    const state = fold(doctorScheduleDecider, [
      scheduleSet(),
      slotBooked('a-2', mon0930, mon1000),
      slotBooked('a-1', mon0900, mon0930),
      slotBooked('a-3', mon1000, '2026-03-09T09:30:00.000Z'),
    ]);
    const later = { ...weeklyHours, mon: [{ from: '10:00', to: '12:30' }] };
    let refusal: unknown;
    try {
      doctorScheduleDecider.decide(setSchedule({ weeklyHours: later }), state);
    } catch (error) {
      refusal = error;
    }
    expect(refusal).toBeInstanceOf(ScheduleConflictError);
    expect(refusal).toMatchObject({ code: 'schedule-conflict', affectedAppointmentIds: ['a-1', 'a-2'] });
  });

  it('sets the hours when the affected appointments are acknowledged, and lists them', () => {
    const later = { ...weeklyHours, mon: [{ from: '10:00', to: '12:30' }] };
    spec
      .given([scheduleSet(), slotBooked('a-1', mon0900, mon0930)])
      .when(setSchedule({ weeklyHours: later, acknowledgedAffected: ['a-1', 'a-unrelated'] }))
      .then([scheduleSet({ weeklyHours: later, affectedAppointmentIds: ['a-1'] })]);
  });

  it('refuses when only some affected appointments are acknowledged', () => {
    spec
      .given([scheduleSet(), slotBooked('a-1', mon0900, mon0930), slotBooked('a-2', mon1000, '2026-03-09T09:30:00.000Z')])
      .when(setSchedule({ weeklyHours: { ...weeklyHours, mon: [] }, acknowledgedAffected: ['a-1'] }))
      .thenFails('schedule-conflict');
  });

  it('counts a new day off on a booked day as a conflict', () => {
    spec
      .given([scheduleSet(), slotBooked('a-1', mon0900, mon0930)])
      .when(setSchedule({ daysOff: ['2026-03-09', '2026-04-06'] }))
      .thenFails('schedule-conflict');
  });

  it('counts a new slot length as a conflict for every booking it reshapes', () => {
    spec
      .given([scheduleSet(), slotBooked('a-1', mon0900, mon0930)])
      .when(setSchedule({ slotMinutes: 60 }))
      .thenFails('schedule-conflict');
  });

  it('counts a new time zone as a conflict when it moves a booking off the hours', () => {
    spec
      .given([scheduleSet(), slotBooked('a-1', mon0900, mon0930)])
      .when(setSchedule({ timeZone: 'Europe/London' }))
      .thenFails('schedule-conflict');
  });

  it('does not count bookings that still fit the new hours', () => {
    const later = { ...weeklyHours, mon: [{ from: '09:00', to: '10:00' }] };
    spec
      .given([scheduleSet(), slotBooked('a-1', mon0900, mon0930)])
      .when(setSchedule({ weeklyHours: later }))
      .then([scheduleSet({ weeklyHours: later })]);
  });

  it('does not count bookings whose slot has already ended', () => {
    const after = '2026-03-09T09:00:00.000Z';
    spec
      .given([scheduleSet(), slotBooked('a-1', mon0900, mon0930)])
      .when(setSchedule({ weeklyHours: noHours, now: after }))
      .then([scheduleSet({ weeklyHours: noHours, setAt: after })]);
  });

  it('keeps acknowledged bookings held, so nothing can be booked over them', () => {
    // 09:00–10:00 on the new hourly grid would overlap a-1's 09:30–10:00 from the old grid.
    const hourly = { ...weeklyHours, mon: [{ from: '09:00', to: '12:00' }] };
    spec
      .given([
        scheduleSet(),
        slotBooked('a-1', mon0930, mon1000),
        scheduleSet({ slotMinutes: 60, weeklyHours: hourly, affectedAppointmentIds: ['a-1'] }),
      ])
      .when(bookSlot('a-2', mon0900))
      .thenFails('slot-taken');
  });
});

describe('the SetSchedule request schema', () => {
  const body = {
    doctorId,
    timeZone: 'Europe/Berlin',
    slotMinutes: 30,
    weeklyHours: { mon: [{ from: '09:00', to: '12:30' }] },
    now,
  };

  it('fills weekdays left out and the lists left out with nothing', () => {
    const parsed = setScheduleSchema.parse({ type: 'SetSchedule', data: body });
    expect(parsed.data.weeklyHours).toEqual({ ...noHours, mon: [{ from: '09:00', to: '12:30' }] });
    expect(parsed.data.daysOff).toEqual([]);
    expect(parsed.data.acknowledgedAffected).toEqual([]);
  });

  it.each([
    ['an unknown time zone', { timeZone: 'Europe/Atlantis' }],
    ['a slot length out of range', { slotMinutes: 5 }],
    ['a malformed time', { weeklyHours: { mon: [{ from: '9am', to: '12:30' }] } }],
    ['overlapping intervals', { weeklyHours: { mon: [{ from: '09:00', to: '12:30' }, { from: '12:00', to: '13:00' }] } }],
    ['an interval ending before it starts', { weeklyHours: { mon: [{ from: '12:00', to: '11:00' }] } }],
    ['an end past 24:00', { weeklyHours: { mon: [{ from: '20:00', to: '24:01' }] } }],
    ['an end at 25:00', { weeklyHours: { mon: [{ from: '20:00', to: '25:00' }] } }],
    ['a start at 24:00', { weeklyHours: { mon: [{ from: '24:00', to: '24:00' }] } }],
  ])('rejects %s, naming each path once', (_, change) => {
    const parsed = setScheduleSchema.safeParse({ type: 'SetSchedule', data: { ...body, ...change } });
    expect(parsed.success).toBe(false);
    const paths = (parsed.error?.issues ?? []).map((issue) => issue.path.join('.'));
    expect(paths.length).toBeGreaterThan(0);
    expect(new Set(paths).size).toBe(paths.length);
  });

  it('accepts an interval ending at 24:00', () => {
    const change = { weeklyHours: { mon: [{ from: '20:00', to: '24:00' }] } };
    expect(setScheduleSchema.safeParse({ type: 'SetSchedule', data: { ...body, ...change } }).success).toBe(true);
  });
});

describe('BookSlot', () => {
  it('needs a schedule', () => {
    spec.given([]).when(bookSlot('a-1', mon0900)).thenFails('not-found');
  });

  it('books a free slot on the grid, for the slot length', () => {
    spec.given([scheduleSet()]).when(bookSlot('a-1', mon0900)).then([slotBooked('a-1', mon0900, mon0930)]);
  });

  it('keys the slot by its UTC start whatever offset the request used', () => {
    spec
      .given([scheduleSet()])
      .when(bookSlot('a-1', '2026-03-09T09:00:00+01:00', '2026-03-02T09:00:00+01:00'))
      .then([slotBooked('a-1', mon0900, mon0930)]);
  });

  it('books the last slot of an interval, which ends exactly at its end', () => {
    spec
      .given([scheduleSet()])
      .when(bookSlot('a-1', '2026-03-09T11:00:00.000Z'))
      .then([slotBooked('a-1', '2026-03-09T11:00:00.000Z', '2026-03-09T11:30:00.000Z')]);
  });

  it('changes nothing when the appointment already holds that slot', () => {
    spec.given([scheduleSet(), slotBooked('a-1', mon0900, mon0930)]).when(bookSlot('a-1', '2026-03-09T09:00:00+01:00')).then([]);
  });

  it('refuses a second slot for the same appointment', () => {
    spec.given([scheduleSet(), slotBooked('a-1', mon0900, mon0930)]).when(bookSlot('a-1', mon1000)).thenFails('already-booked');
  });

  it('refuses a slot another appointment holds', () => {
    spec.given([scheduleSet(), slotBooked('a-1', mon0900, mon0930)]).when(bookSlot('a-2', mon0900)).thenFails('slot-taken');
  });

  // Tuesday 3 March, 00:30 in Berlin is 23:30Z on Monday: slots booked under an earlier grid
  // overlap the new grid's across the UTC day line, in either direction.
  const earlyTuesday = (slotMinutes: number, from: string) => scheduleSet({ slotMinutes, weeklyHours: { ...noHours, tue: [{ from, to: '04:00' }] } });

  it('refuses a slot overlapping one booked under an earlier grid that began the UTC day before', () => {
    spec
      .given([earlyTuesday(60, '00:30'), slotBooked('a-1', '2026-03-02T23:30:00.000Z', '2026-03-03T00:30:00.000Z'), earlyTuesday(30, '00:00')])
      .when(bookSlot('a-2', '2026-03-03T00:00:00.000Z'))
      .thenFails('slot-taken');
  });

  it('refuses a slot running into the next UTC day over one booked there under an earlier grid', () => {
    spec
      .given([earlyTuesday(30, '00:00'), slotBooked('a-1', '2026-03-03T00:00:00.000Z', '2026-03-03T00:30:00.000Z'), earlyTuesday(60, '00:30')])
      .when(bookSlot('a-2', '2026-03-02T23:30:00.000Z'))
      .thenFails('slot-taken');
  });

  it('books a slot again once it was released', () => {
    spec
      .given([
        scheduleSet(),
        slotBooked('a-1', mon0900, mon0930),
        { type: 'SlotReleased', data: { doctorId, appointmentId: 'a-1', start: mon0900, end: mon0930 } },
      ])
      .when(bookSlot('a-2', mon0900))
      .then([slotBooked('a-2', mon0900, mon0930)]);
  });

  it.each([
    ['a start between grid points', '2026-03-09T08:15:00.000Z'],
    ['a start with seconds', '2026-03-09T08:00:30.000Z'],
    ['the second interval off its own grid', '2026-03-09T13:10:00.000Z'],
  ])('refuses %s as off-grid', (_, start) => {
    spec.given([scheduleSet()]).when(bookSlot('a-1', start)).thenFails('off-grid');
  });

  it.each([
    ['before the first interval', '2026-03-09T07:30:00.000Z'],
    ['in the lunch break', '2026-03-09T12:00:00.000Z'],
    ['after the last interval', '2026-03-09T16:00:00.000Z'],
    ['a slot that would end after the interval', '2026-03-09T11:15:00.000Z'],
    ['a weekday without hours', '2026-03-07T09:00:00.000Z'],
  ])('refuses a slot %s as outside working hours', (_, start) => {
    spec.given([scheduleSet()]).when(bookSlot('a-1', start)).thenFails('outside-working-hours');
  });

  it('refuses a slot on a day off', () => {
    // Easter Monday, 09:00 CEST.
    spec.given([scheduleSet()]).when(bookSlot('a-1', '2026-04-06T07:00:00.000Z')).thenFails('day-off');
  });

  it('refuses a slot that has started or passed', () => {
    spec.given([scheduleSet()]).when(bookSlot('a-1', mon0900, mon0900)).thenFails('slot-in-past');
    spec.given([scheduleSet()]).when(bookSlot('a-1', mon0900, '2026-03-10T00:00:00.000Z')).thenFails('slot-in-past');
  });

  it('books a slot that starts a minute from now', () => {
    spec
      .given([scheduleSet()])
      .when(bookSlot('a-1', mon0900, '2026-03-09T07:59:00.000Z'))
      .then([slotBooked('a-1', mon0900, mon0930, '2026-03-09T07:59:00.000Z')]);
  });

  // `now` is Monday 2 March 2026, 08:00Z; 09:00 in Berlin is 08:00Z all winter.
  it('books a slot 364 days ahead', () => {
    spec.given([scheduleSet()]).when(bookSlot('a-1', '2027-03-01T08:00:00.000Z')).then([slotBooked('a-1', '2027-03-01T08:00:00.000Z', '2027-03-01T08:30:00.000Z')]);
  });

  it('books a slot exactly 365 days ahead, the furthest one may', () => {
    spec.given([scheduleSet()]).when(bookSlot('a-1', '2027-03-02T08:00:00.000Z')).then([slotBooked('a-1', '2027-03-02T08:00:00.000Z', '2027-03-02T08:30:00.000Z')]);
  });

  it('refuses a slot further than 365 days ahead', () => {
    spec.given([scheduleSet()]).when(bookSlot('a-1', '2027-03-02T08:30:00.000Z')).thenFails('slot-too-far-ahead');
    spec.given([scheduleSet()]).when(bookSlot('a-1', '2027-03-03T08:00:00.000Z')).thenFails('slot-too-far-ahead');
  });
});

describe('BookSlot across daylight saving (Europe/Berlin, last Sunday of March 2026)', () => {
  it('reads working hours in local time: 09:00 is 08:00Z in winter and 07:00Z in summer', () => {
    // Saturday 28 March is on CET, Monday 30 March on CEST.
    const withSaturday = scheduleSet({ weeklyHours: { ...weeklyHours, sat: weekday } });
    spec
      .given([withSaturday])
      .when(bookSlot('a-1', '2026-03-28T08:00:00.000Z'))
      .then([slotBooked('a-1', '2026-03-28T08:00:00.000Z', '2026-03-28T08:30:00.000Z')]);
    spec
      .given([withSaturday])
      .when(bookSlot('a-1', '2026-03-30T07:00:00.000Z'))
      .then([slotBooked('a-1', '2026-03-30T07:00:00.000Z', '2026-03-30T07:30:00.000Z')]);
    spec.given([withSaturday]).when(bookSlot('a-1', '2026-03-30T06:30:00.000Z')).thenFails('outside-working-hours');
    spec.given([withSaturday]).when(bookSlot('a-1', '2026-03-28T07:30:00.000Z')).thenFails('outside-working-hours');
  });

  it('knows the summer offset when the request uses it', () => {
    spec
      .given([scheduleSet()])
      .when(bookSlot('a-1', '2026-03-30T09:00:00+02:00'))
      .then([slotBooked('a-1', '2026-03-30T07:00:00.000Z', '2026-03-30T07:30:00.000Z')]);
  });

  // On 29 March clocks jump from 02:00 CET (01:00Z) to 03:00 CEST: 02:00–03:00 never happens.
  const nightShift = (slotMinutes: number) =>
    scheduleSet({ slotMinutes, weeklyHours: { ...noHours, sun: [{ from: '01:00', to: '04:00' }] } });

  it('offers the slot that ends the moment the clocks jump, and the first one after', () => {
    spec
      .given([nightShift(30)])
      .when(bookSlot('a-1', '2026-03-29T00:30:00.000Z'))
      .then([slotBooked('a-1', '2026-03-29T00:30:00.000Z', '2026-03-29T01:00:00.000Z')]);
    // 03:00 CEST, the next wall time that exists on the grid.
    spec
      .given([nightShift(30)])
      .when(bookSlot('a-1', '2026-03-29T01:00:00.000Z'))
      .then([slotBooked('a-1', '2026-03-29T01:00:00.000Z', '2026-03-29T01:30:00.000Z')]);
  });

  it('has no slot at 02:30 wall time, which does not exist: that request means 03:30 CEST', () => {
    // `02:30+01:00` parses as 01:30Z, which Berlin shows as 03:30 CEST: a real grid slot.
    spec
      .given([nightShift(30)])
      .when(bookSlot('a-1', '2026-03-29T02:30:00+01:00'))
      .then([slotBooked('a-1', '2026-03-29T01:30:00.000Z', '2026-03-29T02:00:00.000Z')]);
  });

  it('refuses a slot that would span the jump, so every slot lasts its full length', () => {
    // 01:00 CET + 90 min is 03:30 CEST: the wall clock says 150 minutes.
    spec.given([nightShift(90)]).when(bookSlot('a-1', '2026-03-29T00:00:00.000Z')).thenFails('off-grid');
  });

  it('keeps the last slot inside the hours in real time after the jump', () => {
    // 03:00 CEST + 90 min is 04:30, after the 04:00 end.
    spec.given([nightShift(90)]).when(bookSlot('a-1', '2026-03-29T01:00:00.000Z')).thenFails('outside-working-hours');
  });
});

describe('BookSlot when clocks go back (Europe/Berlin, last Sunday of October 2026)', () => {
  // On 25 October clocks go from 03:00 CEST (01:00Z) back to 02:00 CET: 02:00–03:00 happens twice.
  const nightShift = scheduleSet({ slotMinutes: 60, weeklyHours: { ...noHours, sun: [{ from: '01:00', to: '04:00' }] } });

  it('offers the first 02:00', () => {
    spec
      .given([nightShift])
      .when(bookSlot('a-1', '2026-10-25T02:00:00+02:00'))
      .then([slotBooked('a-1', '2026-10-25T00:00:00.000Z', '2026-10-25T01:00:00.000Z')]);
  });

  it('refuses the second 02:00, so one wall time never makes two slots', () => {
    spec.given([nightShift]).when(bookSlot('a-1', '2026-10-25T02:00:00+01:00')).thenFails('off-grid');
  });

  it('offers 03:00 CET after the repeated hour', () => {
    spec
      .given([nightShift])
      .when(bookSlot('a-1', '2026-10-25T02:00:00.000Z'))
      .then([slotBooked('a-1', '2026-10-25T02:00:00.000Z', '2026-10-25T03:00:00.000Z')]);
  });
});

describe('BookSlot in working hours that end at midnight', () => {
  // Berlin on CET: Monday 9 March 23:30 is 22:30Z; Tuesday's hours go on from its midnight.
  const evening = [{ from: '20:00', to: '24:00' }];
  const earlyHours = [{ from: '00:00', to: '02:00' }];
  const nightShift = (slotMinutes: number, timeZone = 'Europe/Berlin', days: 'mon-tue' | 'sat-sun' = 'mon-tue') =>
    scheduleSet({
      timeZone,
      slotMinutes,
      weeklyHours: days === 'mon-tue' ? { ...noHours, mon: evening, tue: earlyHours } : { ...noHours, sat: evening, sun: earlyHours },
    });

  it('books the last slot of the day, which ends at midnight, and the first of the next day', () => {
    spec
      .given([nightShift(30)])
      .when(bookSlot('a-1', '2026-03-09T22:30:00.000Z'))
      .then([slotBooked('a-1', '2026-03-09T22:30:00.000Z', '2026-03-09T23:00:00.000Z')]);
    spec
      .given([nightShift(30), slotBooked('a-1', '2026-03-09T22:30:00.000Z', '2026-03-09T23:00:00.000Z')])
      .when(bookSlot('a-2', '2026-03-09T23:00:00.000Z'))
      .then([slotBooked('a-2', '2026-03-09T23:00:00.000Z', '2026-03-09T23:30:00.000Z')]);
  });

  it('refuses a slot that would run past midnight into the next day, though that day has hours from 00:00', () => {
    // 45-minute slots from 20:00: 23:00 ends at 23:45; 23:45 would end at 00:30 on Tuesday.
    spec
      .given([nightShift(45)])
      .when(bookSlot('a-1', '2026-03-09T22:00:00.000Z'))
      .then([slotBooked('a-1', '2026-03-09T22:00:00.000Z', '2026-03-09T22:45:00.000Z')]);
    spec.given([nightShift(45)]).when(bookSlot('a-1', '2026-03-09T22:45:00.000Z')).thenFails('outside-working-hours');
    spec
      .given([nightShift(60)])
      .when(bookSlot('a-1', '2026-03-09T22:00:00.000Z'))
      .then([slotBooked('a-1', '2026-03-09T22:00:00.000Z', '2026-03-09T23:00:00.000Z')]);
  });

  // Beirut's clocks change at midnight: on 29 March 2026 from 00:00 EET (28 March 22:00Z) to
  // 01:00 EEST, on 25 October from 00:00 EEST (24 October 21:00Z) back to 23:00 EET.
  it('offers the slot that ends when the clocks spring forward at midnight, and the first that exists after', () => {
    spec
      .given([nightShift(30, 'Asia/Beirut', 'sat-sun')])
      .when(bookSlot('a-1', '2026-03-28T21:30:00.000Z'))
      .then([slotBooked('a-1', '2026-03-28T21:30:00.000Z', '2026-03-28T22:00:00.000Z')]);
    // 01:00 EEST on Sunday: 00:00 and 00:30 never happen that night.
    spec
      .given([nightShift(30, 'Asia/Beirut', 'sat-sun')])
      .when(bookSlot('a-1', '2026-03-28T22:00:00.000Z'))
      .then([slotBooked('a-1', '2026-03-28T22:00:00.000Z', '2026-03-28T22:30:00.000Z')]);
  });

  it('offers the first 23:30 when the clocks go back at midnight, and refuses the second', () => {
    spec
      .given([nightShift(30, 'Asia/Beirut', 'sat-sun')])
      .when(bookSlot('a-1', '2026-10-24T20:30:00.000Z'))
      .then([slotBooked('a-1', '2026-10-24T20:30:00.000Z', '2026-10-24T21:00:00.000Z')]);
    spec.given([nightShift(30, 'Asia/Beirut', 'sat-sun')]).when(bookSlot('a-1', '2026-10-24T21:30:00.000Z')).thenFails('off-grid');
  });
});

describe('ReleaseSlot', () => {
  const release = (appointmentId: string) => ({ type: 'ReleaseSlot' as const, data: { appointmentId } });

  it("frees the appointment's slot", () => {
    spec
      .given([scheduleSet(), slotBooked('a-1', mon0900, mon0930)])
      .when(release('a-1'))
      .then([{ type: 'SlotReleased', data: { doctorId, appointmentId: 'a-1', start: mon0900, end: mon0930 } }]);
  });

  it('changes nothing when the appointment holds no slot', () => {
    spec.given([scheduleSet(), slotBooked('a-1', mon0900, mon0930)]).when(release('a-2')).then([]);
  });

  it('changes nothing when the slot was already released', () => {
    spec
      .given([
        scheduleSet(),
        slotBooked('a-1', mon0900, mon0930),
        { type: 'SlotReleased', data: { doctorId, appointmentId: 'a-1', start: mon0900, end: mon0930 } },
      ])
      .when(release('a-1'))
      .then([]);
  });

  it('changes nothing when there is no schedule', () => {
    spec.given([]).when(release('a-1')).then([]);
  });
});

describe('HoldSlotForMove', () => {
  const booked = [scheduleSet(), slotBooked('a-1', mon0900, mon0930)];
  const held = [...booked, slotMoveHeld('a-1', [mon0900, mon0930], [mon1000, mon1030])];

  it('holds the new slot and keeps the old one, in one event', () => {
    spec.given(booked).when(holdSlot('a-1', mon1000)).then([slotMoveHeld('a-1', [mon0900, mon0930], [mon1000, mon1030])]);
  });

  it('holds a slot 364 days ahead', () => {
    spec.given(booked).when(holdSlot('a-1', '2027-03-01T08:00:00.000Z')).then([slotMoveHeld('a-1', [mon0900, mon0930], ['2027-03-01T08:00:00.000Z', '2027-03-01T08:30:00.000Z'])]);
  });

  it('holds the very next slot', () => {
    spec.given(booked).when(holdSlot('a-1', mon0930)).then([slotMoveHeld('a-1', [mon0900, mon0930], [mon0930, mon1000])]);
  });

  it('keeps the old slot from others while the move is under way: a reschedule refused later cannot leave it taken', () => {
    spec.given(held).when(bookSlot('a-2', mon0900)).thenFails('slot-taken');
  });

  it('keeps the held slot from others too', () => {
    spec.given(held).when(bookSlot('a-2', mon1000)).thenFails('slot-taken');
    spec.given([...booked, slotBooked('a-3', mon0930, mon1000), slotMoveHeld('a-1', [mon0900, mon0930], [mon1000, mon1030])]).when(holdSlot('a-3', mon1000, now, mon0930)).thenFails('slot-taken');
  });

  it('leaves the appointment its slot, and shows the hold apart', () => {
    const state = fold(doctorScheduleDecider, held);
    expect(slotOf(state, 'a-1')).toEqual({ appointmentId: 'a-1', start: mon0900, end: mon0930 });
    expect(slotHoldOf(state, 'a-1')).toEqual({ appointmentId: 'a-1', start: mon1000, end: mon1030, heldForMove: true, heldAt: now });
  });

  it('changes nothing when retried: the hold is already there, wherever the mover saw the slot', () => {
    spec.given(held).when(holdSlot('a-1', mon1000)).then([]);
    spec.given(held).when(holdSlot('a-1', mon1000, now, mon0930)).then([]);
  });

  it('changes nothing when retried after the move completed: the slot is already there', () => {
    spec.given([...held, slotMoveCompleted('a-1', [mon0900, mon0930], [mon1000, mon1030])]).when(holdSlot('a-1', mon1000)).then([]);
  });

  it('changes nothing when the appointment already holds the new slot', () => {
    spec.given(booked).when(holdSlot('a-1', '2026-03-09T09:00:00+01:00')).then([]);
  });

  it('refuses another move while one of the same appointment is under way, elsewhere', () => {
    spec.given(held).when(holdSlot('a-1', mon0930)).thenFails('slot-moved-meanwhile');
  });

  it('refuses to move a slot that is no longer where the mover saw it: another move got there first', () => {
    spec
      .given([...booked, slotMoved('a-1', [mon0900, mon0930], [mon0930, mon1000])])
      .when(holdSlot('a-1', mon1000, now, mon0900))
      .thenFails('slot-moved-meanwhile');
  });

  it('needs a schedule', () => {
    spec.given([]).when(holdSlot('a-1', mon1000)).thenFails('not-found');
  });

  it('needs the appointment to hold a slot', () => {
    spec.given(booked).when(holdSlot('a-2', mon1000)).thenFails('not-found');
  });

  it('refuses a slot another appointment holds, and holds nothing', () => {
    spec
      .given([...booked, slotBooked('a-2', mon1000, mon1030)])
      .when(holdSlot('a-1', mon1000))
      .thenFails('slot-taken');
  });

  it.each([
    ['off-grid', '2026-03-09T08:45:00.000Z'],
    ['outside-working-hours', '2026-03-09T05:00:00.000Z'],
    ['day-off', '2026-04-06T07:00:00.000Z'],
    ['slot-in-past', '2026-03-01T08:00:00.000Z'],
    ['slot-too-far-ahead', '2027-03-03T08:00:00.000Z'],
  ])('refuses a new slot that breaks the %s rule', (code, newStart) => {
    spec.given(booked).when(holdSlot('a-1', newStart)).thenFails(code);
  });
});

describe('CompleteSlotMove', () => {
  const booked = [scheduleSet(), slotBooked('a-1', mon0900, mon0930)];
  const held = [...booked, slotMoveHeld('a-1', [mon0900, mon0930], [mon1000, mon1030])];
  const completed = [...held, slotMoveCompleted('a-1', [mon0900, mon0930], [mon1000, mon1030])];

  it('makes the hold the slot and frees the old one', () => {
    spec.given(held).when(completeMove('a-1', mon1000)).then([slotMoveCompleted('a-1', [mon0900, mon0930], [mon1000, mon1030])]);
  });

  it('leaves the old slot free for others, and the new one the appointment\'s, afterwards', () => {
    spec.given(completed).when(bookSlot('a-2', mon0900)).then([slotBooked('a-2', mon0900, mon0930)]);
    spec.given(completed).when(bookSlot('a-2', mon1000)).thenFails('slot-taken');
    const state = fold(doctorScheduleDecider, completed);
    expect(slotOf(state, 'a-1')).toEqual({ appointmentId: 'a-1', start: mon1000, end: mon1030 });
    expect(slotHoldOf(state, 'a-1')).toBeUndefined();
  });

  it('changes nothing when retried: the slot is already there and nothing is held', () => {
    spec.given(completed).when(completeMove('a-1', mon1000)).then([]);
  });

  it('completes on a withdrawn schedule: the appointment moved onto time held before the withdrawal', () => {
    const withdrawn: ScheduleWithdrawn = { type: 'ScheduleWithdrawn', data: { doctorId, withdrawnAt: now } };
    spec.given([...held, withdrawn]).when(completeMove('a-1', mon1000)).then([slotMoveCompleted('a-1', [mon0900, mon0930], [mon1000, mon1030])]);
  });

  it('needs a hold at that time: a dropped hold, or one elsewhere, is not found', () => {
    spec.given(booked).when(completeMove('a-1', mon1000)).thenFails('not-found');
    spec.given(held).when(completeMove('a-1', mon0930)).thenFails('not-found');
    spec.given([...held, slotMoveDropped('a-1', [mon1000, mon1030])]).when(completeMove('a-1', mon1000)).thenFails('not-found');
    spec.given([]).when(completeMove('a-1', mon1000)).thenFails('not-found');
  });

  describe('naming the hold by when it was held', () => {
    const later = '2026-03-02T08:05:00.000Z';
    // The hold at 10:00 dropped, and 10:00 held again for another try of the move.
    const heldAgain = [...held, slotMoveDropped('a-1', [mon1000, mon1030]), slotMoveHeld('a-1', [mon0900, mon0930], [mon1000, mon1030], later)];

    it('completes that hold', () => {
      spec.given(heldAgain).when(completeMove('a-1', mon1000, later, later)).then([slotMoveCompleted('a-1', [mon0900, mon0930], [mon1000, mon1030], later)]);
    });

    it('finds no other: a newer hold at the same time is not the one named, and is left to the move it is for', () => {
      spec.given(heldAgain).when(completeMove('a-1', mon1000, later, now)).thenFails('not-found');
    });

    it('changes nothing when retried after it completed', () => {
      spec.given([...heldAgain, slotMoveCompleted('a-1', [mon0900, mon0930], [mon1000, mon1030], later)]).when(completeMove('a-1', mon1000, later, later)).then([]);
    });
  });
});

describe('DropSlotHold', () => {
  const booked = [scheduleSet(), slotBooked('a-1', mon0900, mon0930)];
  const held = [...booked, slotMoveHeld('a-1', [mon0900, mon0930], [mon1000, mon1030])];

  it('frees the hold and keeps the slot', () => {
    spec.given(held).when(dropHold('a-1', mon1000)).then([slotMoveDropped('a-1', [mon1000, mon1030])]);
    const state = fold(doctorScheduleDecider, [...held, slotMoveDropped('a-1', [mon1000, mon1030])]);
    expect(slotOf(state, 'a-1')).toEqual({ appointmentId: 'a-1', start: mon0900, end: mon0930 });
    expect(slotHoldOf(state, 'a-1')).toBeUndefined();
  });

  it('leaves the held time free for others, and the old slot the appointment\'s, afterwards', () => {
    const dropped = [...held, slotMoveDropped('a-1', [mon1000, mon1030])];
    spec.given(dropped).when(bookSlot('a-2', mon1000)).then([slotBooked('a-2', mon1000, mon1030)]);
    spec.given(dropped).when(bookSlot('a-2', mon0900)).thenFails('slot-taken');
  });

  it('changes nothing when there is no hold at that time: retried, never held, held elsewhere, or no schedule', () => {
    spec.given([...held, slotMoveDropped('a-1', [mon1000, mon1030])]).when(dropHold('a-1', mon1000)).then([]);
    spec.given(booked).when(dropHold('a-1', mon1000)).then([]);
    spec.given(held).when(dropHold('a-1', mon0930)).then([]);
    spec.given(held).when(dropHold('a-2', mon1000)).then([]);
    spec.given([]).when(dropHold('a-1', mon1000)).then([]);
  });

  it('named by when it was held, leaves a newer hold at the same time alone: the one named is gone already', () => {
    const later = '2026-03-02T08:05:00.000Z';
    const heldAgain = [...held, slotMoveDropped('a-1', [mon1000, mon1030]), slotMoveHeld('a-1', [mon0900, mon0930], [mon1000, mon1030], later)];
    spec.given(heldAgain).when(dropHold('a-1', mon1000, now)).then([]);
    spec.given(heldAgain).when(dropHold('a-1', mon1000, later)).then([slotMoveDropped('a-1', [mon1000, mon1030])]);
    spec.given(held).when(dropHold('a-1', mon1000, now)).then([slotMoveDropped('a-1', [mon1000, mon1030])]);
    const state = fold(doctorScheduleDecider, heldAgain);
    expect(slotHoldOf(state, 'a-1')).toEqual({ appointmentId: 'a-1', start: mon1000, end: mon1030, heldForMove: true, heldAt: later });
  });

  it('is never refused for the schedule: withdrawn, or changed so that the hold is off its grid', () => {
    const withdrawn: ScheduleWithdrawn = { type: 'ScheduleWithdrawn', data: { doctorId, withdrawnAt: now } };
    spec.given([...held, withdrawn]).when(dropHold('a-1', mon1000)).then([slotMoveDropped('a-1', [mon1000, mon1030])]);
    spec
      .given([...held, scheduleSet({ slotMinutes: 60, affectedAppointmentIds: ['a-1'] })])
      .when(dropHold('a-1', mon1000))
      .then([slotMoveDropped('a-1', [mon1000, mon1030])]);
  });
});

describe('a move held', () => {
  const held = [scheduleSet(), slotBooked('a-1', mon0900, mon0930), slotMoveHeld('a-1', [mon0900, mon0930], [mon1000, mon1030])];

  it('is freed with the slot when the appointment is released', () => {
    spec.given(held).when({ type: 'ReleaseSlot', data: { appointmentId: 'a-1' } }).then([
      { type: 'SlotReleased', data: { doctorId, appointmentId: 'a-1', start: mon0900, end: mon0930 } },
      slotMoveDropped('a-1', [mon1000, mon1030]),
    ]);
    const released = fold(doctorScheduleDecider, [
      ...held,
      { type: 'SlotReleased', data: { doctorId, appointmentId: 'a-1', start: mon0900, end: mon0930 } },
      slotMoveDropped('a-1', [mon1000, mon1030]),
    ]);
    expect(released.status === 'active' && bookings(released.booked)).toEqual([]);
  });

  it('counts for a schedule change as a booking does, naming its appointment once', () => {
    spec.given(held).when(setSchedule({ slotMinutes: 60 })).thenFails('schedule-conflict');
    spec
      .given(held)
      .when(setSchedule({ slotMinutes: 60, acknowledgedAffected: ['a-1'] }))
      .then([scheduleSet({ slotMinutes: 60, affectedAppointmentIds: ['a-1'] })]);
  });

  it('keeps a slot from landing on it, the appointment\'s own restored slot included', () => {
    const restore: RestoreSlot = { type: 'RestoreSlot', data: { appointmentId: 'a-1', from: mon0900, start: mon1000, end: mon1030, now } };
    spec.given(held).when(restore).thenFails('slot-taken');
  });

  it('is forgotten with its day once long past, as slots are', () => {
    const later = '2026-03-20T08:00:00.000Z';
    const state = fold(doctorScheduleDecider, [...held, slotBooked('a-2', '2026-03-23T08:00:00.000Z', '2026-03-23T08:30:00.000Z', later)]);
    expect(state.status === 'active' && bookings(state.booked).map((entry) => entry.appointmentId)).toEqual(['a-2']);
    spec.given([...held, slotBooked('a-2', '2026-03-23T08:00:00.000Z', '2026-03-23T08:30:00.000Z', later)]).when(dropHold('a-1', mon1000)).then([]);
  });
});

describe('RestoreSlot', () => {
  const mon1100 = '2026-03-09T10:00:00.000Z';
  const restoreSlot = (appointmentId: string, from: string, [start, end]: Span, at = now): RestoreSlot => ({
    type: 'RestoreSlot',
    data: { appointmentId, from, start, end, now: at },
  });
  const slotRestored = (appointmentId: string, [previousStart, previousEnd]: Span, [start, end]: Span, at = now): SlotRestored => ({
    type: 'SlotRestored',
    data: { doctorId, appointmentId, previousStart, previousEnd, start, end, restoredAt: at },
  });
  // Booked at 09:30 on the half-hour grid, kept (acknowledged) when slots became an hour long,
  // then moved to 10:00–11:00 by a reschedule that failed after moving it.
  const keptThenMoved = [
    scheduleSet(),
    slotBooked('a-1', mon0930, mon1000),
    scheduleSet({ slotMinutes: 60, affectedAppointmentIds: ['a-1'] }),
    slotMoved('a-1', [mon0930, mon1000], [mon1000, mon1100]),
  ];

  it('puts the slot back exactly where it was, though the schedule in force no longer offers it', () => {
    spec
      .given(keptThenMoved)
      .when(restoreSlot('a-1', mon1000, [mon0930, mon1000]))
      .then([slotRestored('a-1', [mon1000, mon1100], [mon0930, mon1000])]);
  });

  it('holds the restored time against others, and frees the one it left', () => {
    const restored = [...keptThenMoved, slotRestored('a-1', [mon1000, mon1100], [mon0930, mon1000])];
    spec.given(restored).when(bookSlot('a-2', mon0900)).thenFails('slot-taken');
    spec.given(restored).when(bookSlot('a-2', mon1000)).then([slotBooked('a-2', mon1000, mon1100)]);
  });

  it('puts the slot back into the past: the appointment has begun there', () => {
    const later = '2026-03-09T08:45:00.000Z';
    spec
      .given([scheduleSet(), slotBooked('a-1', mon0900, mon0930), slotMoved('a-1', [mon0900, mon0930], [mon1000, mon1030])])
      .when(restoreSlot('a-1', mon1000, [mon0900, mon0930], later))
      .then([slotRestored('a-1', [mon1000, mon1030], [mon0900, mon0930], later)]);
  });

  it('writes times in UTC whatever offset the command used', () => {
    spec
      .given(keptThenMoved)
      .when(restoreSlot('a-1', '2026-03-09T10:00:00+01:00', ['2026-03-09T09:30:00+01:00', '2026-03-09T10:00:00+01:00'], '2026-03-02T09:00:00+01:00'))
      .then([slotRestored('a-1', [mon1000, mon1100], [mon0930, mon1000])]);
  });

  it('refuses a time another appointment took meanwhile, and keeps the slot where it is', () => {
    const taken = [scheduleSet(), slotBooked('a-1', mon0900, mon0930), slotMoved('a-1', [mon0900, mon0930], [mon1000, mon1030]), slotBooked('a-2', mon0900, mon0930)];
    spec.given(taken).when(restoreSlot('a-1', mon1000, [mon0900, mon0930])).thenFails('slot-taken');
  });

  it('refuses a time that only partly overlaps another appointment', () => {
    spec
      .given([...keptThenMoved, slotBooked('a-2', mon0900, mon0930)])
      .when(restoreSlot('a-1', mon1000, ['2026-03-09T08:15:00.000Z', '2026-03-09T08:45:00.000Z']))
      .thenFails('slot-taken');
  });

  it('changes nothing when the slot is already there, wherever the restorer saw it', () => {
    spec.given([scheduleSet(), slotBooked('a-1', mon0900, mon0930)]).when(restoreSlot('a-1', mon1000, [mon0900, mon0930])).then([]);
  });

  it('sets the end back too when only the end differs', () => {
    spec
      .given(keptThenMoved)
      .when(restoreSlot('a-1', mon1000, [mon1000, mon1030]))
      .then([slotRestored('a-1', [mon1000, mon1100], [mon1000, mon1030])]);
  });

  it('refuses to restore a slot that is no longer where the restorer saw it: another change got there first', () => {
    spec.given(keptThenMoved).when(restoreSlot('a-1', mon0900, [mon0930, mon1000])).thenFails('slot-moved-meanwhile');
  });

  it('needs a schedule, and the appointment to hold a slot', () => {
    spec.given([]).when(restoreSlot('a-1', mon1000, [mon0930, mon1000])).thenFails('not-found');
    spec.given(keptThenMoved).when(restoreSlot('a-2', mon1000, [mon0930, mon1000])).thenFails('not-found');
  });

  it.each([
    ['ends before it starts', [mon1000, mon0930]],
    ['lasts longer than any slot', [mon0900, '2026-03-09T11:00:00.000Z']],
  ] as const)('refuses a time that %s', (_, span) => {
    spec.given(keptThenMoved).when(restoreSlot('a-1', mon1000, [...span])).thenFails('invalid-time-range');
  });
});

describe('WithdrawSchedule', () => {
  const later = '2026-03-05T10:00:00.000Z';
  const withdraw = (at = later): WithdrawSchedule => ({ type: 'WithdrawSchedule', data: { doctorId, now: at } });
  const scheduleWithdrawn = (at = later): ScheduleWithdrawn => ({ type: 'ScheduleWithdrawn', data: { doctorId, withdrawnAt: at } });
  const release = (appointmentId: string) => ({ type: 'ReleaseSlot' as const, data: { appointmentId } });
  const booked = [scheduleSet(), slotBooked('a-1', mon0900, mon0930)];
  const withdrawn = [...booked, scheduleWithdrawn()];

  it('withdraws a published schedule, recording when in UTC', () => {
    spec.given([scheduleSet()]).when(withdraw('2026-03-05T11:00:00+01:00')).then([scheduleWithdrawn()]);
  });

  it('changes nothing when it was withdrawn already', () => {
    spec.given(withdrawn).when(withdraw()).then([]);
  });

  it('withdraws a schedule never published, so that none ever will be', () => {
    spec.given([]).when(withdraw()).then([scheduleWithdrawn()]);
  });

  // A first publication that raced the erasure conflicts on the withdrawal and, decided again, meets these.
  describe('given a withdrawal before any schedule', () => {
    const withdrawnUnpublished = [scheduleWithdrawn()];

    it('refuses a schedule, whoever publishes', () => {
      spec.given(withdrawnUnpublished).when(setSchedule()).thenFails('schedule-withdrawn');
    });

    it('refuses a booking: there is no schedule to book', () => {
      spec.given(withdrawnUnpublished).when(bookSlot('a-1', mon0900)).thenFails('not-found');
    });

    it('changes nothing when withdrawn again, or released', () => {
      spec.given(withdrawnUnpublished).when(withdraw()).then([]);
      spec.given(withdrawnUnpublished).when(release('a-1')).then([]);
    });

    it('holds no schedule and no bookings', () => {
      expect(fold(doctorScheduleDecider, withdrawnUnpublished)).toEqual({ status: 'unset', withdrawn: true });
    });
  });

  it('refuses every booking from then on, even of a free slot on the grid', () => {
    spec.given(withdrawn).when(bookSlot('a-2', mon1000)).thenFails('schedule-withdrawn');
  });

  it('changes nothing for a retried booking of the slot its appointment took before', () => {
    spec.given(withdrawn).when(bookSlot('a-1', mon0900)).then([]);
  });

  it('refuses to hold a slot for a move onto it', () => {
    spec.given(withdrawn).when(holdSlot('a-1', mon1000)).thenFails('schedule-withdrawn');
  });

  it('refuses to set it again, whoever publishes', () => {
    spec.given(withdrawn).when(setSchedule({ slotMinutes: 20 })).thenFails('schedule-withdrawn');
    spec.given(withdrawn).when(setSchedule()).thenFails('schedule-withdrawn');
  });

  it('still releases the slot an appointment holds, once', () => {
    const released = { type: 'SlotReleased' as const, data: { doctorId, appointmentId: 'a-1', start: mon0900, end: mon0930 } };
    spec.given(withdrawn).when(release('a-1')).then([released]);
    spec.given([...withdrawn, released]).when(release('a-1')).then([]);
  });

  it('still restores a slot whose appointment did not follow its move', () => {
    const moved = [...booked, slotMoved('a-1', [mon0900, mon0930], [mon1000, '2026-03-09T09:30:00.000Z']), scheduleWithdrawn()];
    const restore: RestoreSlot = { type: 'RestoreSlot', data: { appointmentId: 'a-1', from: mon1000, start: mon0900, end: mon0930, now } };
    spec
      .given(moved)
      .when(restore)
      .then([
        {
          type: 'SlotRestored',
          data: { doctorId, appointmentId: 'a-1', previousStart: mon1000, previousEnd: '2026-03-09T09:30:00.000Z', start: mon0900, end: mon0930, restoredAt: now },
        },
      ]);
  });

  it('keeps what is booked, the slots it held, in the state', () => {
    const state = fold(doctorScheduleDecider, withdrawn);
    expect(state).toMatchObject({ status: 'withdrawn', doctorId });
    expect(state.status === 'withdrawn' && bookings(state.booked)).toEqual([{ appointmentId: 'a-1', start: mon0900, end: mon0930 }]);
  });
});

describe('a long stream', () => {
  // A year of one booking per working day, each made a week ahead.
  function aYearOfBookings(): DoctorScheduleEvent[] {
    const events: DoctorScheduleEvent[] = [scheduleSet()];
    for (let day = 0; day < 365; day++) {
      const bookedAt = new Date(Date.parse('2026-03-02T06:00:00Z') + day * 86_400_000);
      const start = new Date(bookedAt.getTime() + 7 * 86_400_000 + 3 * 3_600_000).toISOString();
      const end = new Date(Date.parse(start) + 30 * 60_000).toISOString();
      events.push(slotBooked(`a-${day}`, start, end, bookedAt.toISOString()));
    }
    return events;
  }

  it('keeps only the slots that have not long ended, so folding stays cheap', () => {
    const state = fold(doctorScheduleDecider, aYearOfBookings());
    const held = state.status === 'active' ? bookings(state.booked) : [];
    // The week booked ahead plus the few days of margin before the last booking.
    expect(held.length).toBeLessThanOrEqual(11);
    expect(held.map((slot) => slot.appointmentId)).toContain('a-364');
  });

  it('folds a hundred thousand events in well under a few seconds', () => {
    // Sixteen bookings a day, two months ahead, one in ten released: about a thousand live slots.
    const events: DoctorScheduleEvent[] = [scheduleSet()];
    const first = Date.parse('2026-03-02T06:00:00Z');
    for (let i = 0; i < 100_000; i++) {
      const day = Math.floor(i / 16);
      const bookedAt = new Date(first + day * 86_400_000 + (i % 16) * 60_000).toISOString();
      const start = new Date(first + (day + 60) * 86_400_000 + (i % 16) * 1_800_000).toISOString();
      const end = new Date(Date.parse(start) + 1_800_000).toISOString();
      events.push(slotBooked(`a-${i}`, start, end, bookedAt));
      if (i % 10 === 0) events.push({ type: 'SlotReleased', data: { doctorId, appointmentId: `a-${i}`, start, end } });
    }
    const startedAt = performance.now();
    const state = fold(doctorScheduleDecider, events);
    // About 0.3 s on one core; the bound only catches a fold that copies every booking per event.
    expect(performance.now() - startedAt).toBeLessThan(5_000);
    expect(state.status === 'active' && bookings(state.booked).length).toBeLessThan(1_100);
  });

  it('forgets a slot long past: releasing it changes nothing, moving it is not found', () => {
    const events = aYearOfBookings();
    spec.given(events).when({ type: 'ReleaseSlot', data: { appointmentId: 'a-1' } }).then([]);
    spec.given(events).when(holdSlot('a-1', '2027-06-07T07:00:00.000Z', '2027-03-01T00:00:00.000Z')).thenFails('not-found');
  });
});
