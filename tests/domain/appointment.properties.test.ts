import { fc, test } from '@fast-check/vitest';
import { expect } from 'vitest';
import type { AppointmentCommand } from '../../src/domain/appointment/appointment.commands.js';
import { appointmentDecider, isMade, type AppointmentState } from '../../src/domain/appointment/appointment.decider.js';
import { appointmentEventSchema, type AppointmentEvent } from '../../src/domain/appointment/appointment.events.js';
import type { Actor } from '../../src/domain/shared/actor.js';
import { DomainError } from '../../src/domain/shared/domain-error.js';

const appointmentId = 'appt-p';
const patient: Actor = { id: 'patient-p', roles: ['PATIENT'] };
const doctor: Actor = { id: 'doctor-p', roles: ['DOCTOR'] };
const admin: Actor = { id: 'admin-p', roles: ['ADMIN'] };
const stranger: Actor = { id: 'someone', roles: ['PATIENT', 'DOCTOR'] };
const actor = fc.constantFrom(patient, doctor, admin, stranger);
const minute = 60_000;
const startMs = Date.parse('2026-06-01T08:00:00Z');

const quartersPerDay = 96;
const yearMs = 365 * 24 * 60 * minute;
/** A slot some time from now, sometimes already begun, now and then about a year ahead (on either side of the bound), on the quarter hour. */
const slotFrom = fc.record({
  quarters: fc.oneof(
    { weight: 5, arbitrary: fc.integer({ min: -4, max: 12 }) },
    { weight: 5, arbitrary: fc.integer({ min: -4, max: 400 }) },
    { weight: 1, arbitrary: fc.integer({ min: 364 * quartersPerDay, max: 366 * quartersPerDay }) },
  ),
  length: fc.constantFrom(15, 30, 60),
});

const iso = (ms: number) => new Date(ms).toISOString();
const scheduleBy = (actor: fc.Arbitrary<Actor>) =>
  fc.record({ actor, slot: slotFrom }).map(({ actor, slot }) => (now: number): AppointmentCommand => {
    const start = Math.floor(now / (15 * minute)) * 15 * minute + slot.quarters * 15 * minute;
    return {
      type: 'ScheduleAppointment',
      data: { appointmentId, patientId: patient.id, doctorId: doctor.id, start: iso(start), end: iso(start + slot.length * minute), reason: 'Check-up', actor, now: iso(now) },
    };
  });
// Completion and no-show are the doctor's: mostly ask the doctor, so that their time rules get exercised.
const mostlyDoctor = fc.oneof({ weight: 3, arbitrary: fc.constant(doctor) }, { weight: 1, arbitrary: actor });
const reschedule = fc.record({ actor, slot: slotFrom }).map(({ actor, slot }) => (now: number): AppointmentCommand => {
  const start = Math.floor(now / (15 * minute)) * 15 * minute + slot.quarters * 15 * minute;
  return { type: 'RescheduleAppointment', data: { appointmentId, newStart: iso(start), newEnd: iso(start + slot.length * minute), actor, now: iso(now) } };
});
const complete = mostlyDoctor.map((actor) => (now: number): AppointmentCommand => ({ type: 'CompleteAppointment', data: { appointmentId, notes: 'Fine', actor, now: iso(now) } }));
const cancel = actor.map((actor) => (now: number): AppointmentCommand => ({ type: 'CancelAppointment', data: { appointmentId, reason: 'Busy', actor, now: iso(now) } }));
const markNoShow = mostlyDoctor.map((actor) => (now: number): AppointmentCommand => ({ type: 'MarkAppointmentNoShow', data: { appointmentId, actor, now: iso(now) } }));
// The expiry process giving up the id of an appointment whose request died before making it.
const abandon = fc.constant((now: number): AppointmentCommand => ({ type: 'AbandonAppointment', data: { appointmentId, now: iso(now) } }));
// The expiry process giving up a reschedule whose request seemed dead: sometimes to where the appointment already is.
const giveUp = slotFrom.map((slot) => (now: number, state: AppointmentState): AppointmentCommand => {
  const start = Math.floor(now / (15 * minute)) * 15 * minute + slot.quarters * 15 * minute;
  const to = slot.length === 15 && isMade(state) ? state.start : iso(start);
  return { type: 'GiveUpReschedule', data: { appointmentId, to, now: iso(now) } };
});
const build = fc.oneof(
  { weight: 1, arbitrary: scheduleBy(actor) },
  { weight: 1, arbitrary: abandon },
  { weight: 1, arbitrary: giveUp },
  { weight: 3, arbitrary: reschedule },
  { weight: 2, arbitrary: complete },
  { weight: 1, arbitrary: cancel },
  { weight: 2, arbitrary: markNoShow },
);

/**
 * When the next command happens: later on the clock, or (so that the rules' boundaries get
 * crossed) at a moment near the appointment's current start, such as exactly 24 hours before.
 */
const when = fc.oneof(
  fc.record({ minutesLater: fc.integer({ min: 0, max: 3 * 24 * 60 }) }),
  fc.record({ nearStart: fc.oneof(fc.constantFrom(-1441, -1440, -1439, -1, 0, 1, 15, 16), fc.integer({ min: -1600, max: 90 })) }),
);
// Most runs start with a booking that can succeed, so that the later commands have something to act on.
const steps = fc
  .tuple(fc.record({ when, build: scheduleBy(fc.constantFrom(patient, admin)) }), fc.array(fc.record({ when, build }), { minLength: 3, maxLength: 30 }))
  .map(([first, rest]) => [first, ...rest]);
type Step = { when: { minutesLater: number } | { nearStart: number }; build: (now: number, state: AppointmentState) => AppointmentCommand };

type Outcome = { command: AppointmentCommand; before: AppointmentState; events: AppointmentEvent[] | DomainError; after: AppointmentState; now: number };

/** Decides each step (the command built for its `now`); a refused command leaves the state as it was. */
function run(plan: Step[]): Outcome[] {
  let state = appointmentDecider.initialState;
  let clock = startMs;
  return plan.map(({ when, build }) => {
    if ('minutesLater' in when) clock += when.minutesLater * minute;
    else if (isMade(state)) clock = Date.parse(state.start) + when.nearStart * minute;
    const command = build(clock, state);
    const before = state;
    let events: AppointmentEvent[];
    try {
      events = appointmentDecider.decide(command, state);
    } catch (error) {
      if (error instanceof DomainError) return { command, before, events: error, after: state, now: clock };
      throw error;
    }
    for (const event of events) state = appointmentDecider.evolve(state, event);
    return { command, before, events, after: state, now: clock };
  });
}

// Given up is as final as done: nothing is ever made under that id.
const rank: Record<AppointmentState['status'], number> = { none: 0, scheduled: 1, rescheduled: 2, completed: 3, cancelled: 3, noShow: 3, abandoned: 3 };
const isTerminal = (state: AppointmentState) => rank[state.status] === 3;

test.prop([steps])('states only move forward, and terminal states are terminal', (plan) => {
  for (const { before, after } of run(plan)) {
    expect(rank[after.status]).toBeGreaterThanOrEqual(rank[before.status]);
    if (isTerminal(before)) expect(after).toEqual(before);
  }
});

test.prop([steps])('only the right person acts, and only at the right time, for a time at most a year ahead', (plan) => {
  for (const { command, before, events, now } of run(plan)) {
    if (!Array.isArray(events)) continue;
    if (command.type === 'AbandonAppointment') {
      // Only an appointment not made yet is given up.
      expect(events.length === 0 || before.status === 'none').toBe(true);
      continue;
    }
    if (command.type === 'GiveUpReschedule') {
      // Only a reschedule of an open appointment, to elsewhere than where it is.
      expect(events.length === 0 || ((before.status === 'scheduled' || before.status === 'rescheduled') && before.start !== command.data.to)).toBe(true);
      continue;
    }
    const { actor } = command.data;
    for (const event of events) {
      if (!isMade(before)) {
        expect(before.status).toBe('none');
        expect(event.type).toBe('AppointmentScheduled');
        expect([patient.id, admin.id]).toContain(actor.id);
        if (event.type === 'AppointmentScheduled') expect(Date.parse(event.data.start) - now).toBeLessThanOrEqual(yearMs);
        continue;
      }
      const start = Date.parse(before.start);
      switch (event.type) {
        case 'AppointmentCompleted':
          expect(actor.id).toBe(doctor.id);
          expect(now).toBeGreaterThanOrEqual(start);
          break;
        case 'AppointmentMarkedNoShow':
          expect(actor.id).toBe(doctor.id);
          expect(now).toBeGreaterThan(start + 15 * minute);
          break;
        case 'AppointmentCancelled':
          expect(actor.id).not.toBe(stranger.id);
          // Once it has begun, its patient may no longer cancel it: only the doctor says whether it was held.
          if (actor.id === patient.id) expect(now).toBeLessThan(start);
          expect(event.data.lateCancellation).toBe(actor.id === patient.id && start - now < 24 * 60 * minute);
          break;
        case 'AppointmentRescheduled':
          expect(actor.id).not.toBe(stranger.id);
          expect(Date.parse(event.data.start)).toBeGreaterThan(now);
          expect(Date.parse(event.data.start) - now).toBeLessThanOrEqual(yearMs);
          break;
        case 'AppointmentScheduled':
          throw new Error('scheduled twice');
      }
    }
  }
});

test.prop([steps])('a stranger is always refused as forbidden, whatever the state', (plan) => {
  for (const { command, before, events } of run(plan)) {
    if (command.type === 'AbandonAppointment' || command.type === 'GiveUpReschedule' || command.data.actor.id !== stranger.id || (!isMade(before) && command.type !== 'ScheduleAppointment')) continue;
    expect(events instanceof DomainError && events.code).toBe('forbidden');
  }
});

test.prop([steps])('cancelling, marking a no-show and (re)scheduling again change nothing', (plan) => {
  for (const { command, events, after } of run(plan)) {
    // Giving a reschedule up is a fact each time (the process asks once per held slot, under one command id).
    if (!Array.isArray(events) || command.type === 'CompleteAppointment' || command.type === 'GiveUpReschedule') continue;
    expect(appointmentDecider.decide(command, after)).toEqual([]);
  }
});

test.prop([steps])('giving a reschedule up changes nothing but the version, and is refused once the appointment is where it was going', (plan) => {
  for (const { command, before, events, after } of run(plan)) {
    if (command.type !== 'GiveUpReschedule') continue;
    expect(after).toEqual(before);
    if ((before.status === 'scheduled' || before.status === 'rescheduled') && before.start === command.data.to) {
      expect(events instanceof DomainError && events.code).toBe('reschedule-landed');
    }
  }
});

const partyOf = (actor: Actor) => (actor === patient ? 'patient' : actor === doctor ? 'doctor' : actor === admin ? 'admin' : null);

test.prop([fc.constantFrom(patient, doctor, admin), actor, fc.integer({ min: 1, max: 400 }), fc.integer({ min: 0, max: 800 })])(
  'given a cancelled appointment, when cancelled again at any time, then the party that cancelled it changes nothing, another is refused as already cancelled',
  (first, second, quartersAhead, quartersLater) => {
    const start = startMs + quartersAhead * 15 * minute;
    const cancel = (actor: Actor, now: number): AppointmentCommand => ({ type: 'CancelAppointment', data: { appointmentId, reason: 'Busy', actor, now: iso(now) } });
    const schedule: AppointmentCommand = {
      type: 'ScheduleAppointment',
      data: { appointmentId, patientId: patient.id, doctorId: doctor.id, start: iso(start), end: iso(start + 30 * minute), reason: 'Check-up', actor: patient, now: iso(startMs) },
    };
    const state = [schedule, cancel(first, startMs)].reduce(
      (state, command) => appointmentDecider.decide(command, state).reduce(appointmentDecider.evolve, state),
      appointmentDecider.initialState,
    );
    expect(state.status).toBe('cancelled');
    const again = () => appointmentDecider.decide(cancel(second, startMs + quartersLater * 15 * minute), state);

    const party = partyOf(second);
    if (party === partyOf(first)) expect(again()).toEqual([]);
    else expect(again).toThrowError(expect.objectContaining({ code: party === null ? 'forbidden' : 'already-cancelled' }));
  },
);

test.prop([steps])('every event decide emits survives JSON and its published schema unchanged', (plan) => {
  for (const { events } of run(plan)) {
    if (Array.isArray(events)) for (const event of events) expect(appointmentEventSchema.parse(JSON.parse(JSON.stringify(event)))).toEqual(event);
  }
});
