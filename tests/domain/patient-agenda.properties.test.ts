import { fc, test } from '@fast-check/vitest';
import { expect } from 'vitest';
import type { PatientAgendaCommand } from '../../src/domain/patient-agenda/patient-agenda.commands.js';
import { patientAgendaDecider, type PatientAgendaState } from '../../src/domain/patient-agenda/patient-agenda.decider.js';
import { patientAgendaEventSchema, type PatientAgendaEvent } from '../../src/domain/patient-agenda/patient-agenda.events.js';
import { fold } from '../../src/domain/shared/decider.js';
import { DomainError } from '../../src/domain/shared/domain-error.js';
import { slotsOverlap, type TimeSlot } from '../../src/domain/shared/time-slot.js';

const patientId = 'patient-p';
const dayMs = Date.parse('2026-05-04T06:00:00Z');
const appointmentId = fc.constantFrom('a1', 'a2', 'a3', 'a4', 'a5');

/** Quarter hours within one morning, sometimes back to front, so that slots collide often. */
const slot = fc
  .record({ quarter: fc.integer({ min: 0, max: 24 }), quarters: fc.oneof({ weight: 9, arbitrary: fc.integer({ min: 1, max: 8 }) }, { weight: 1, arbitrary: fc.constantFrom(0, -2) }) })
  .map(({ quarter, quarters }): TimeSlot => {
    const start = dayMs + quarter * 15 * 60_000;
    return { start: new Date(start).toISOString(), end: new Date(start + quarters * 15 * 60_000).toISOString() };
  });

const command: fc.Arbitrary<PatientAgendaCommand> = fc.oneof(
  { weight: 4, arbitrary: fc.record({ appointmentId, slot }).map(({ appointmentId, slot }): PatientAgendaCommand => ({ type: 'ReserveTime', data: { patientId, appointmentId, ...slot } })) },
  { weight: 2, arbitrary: appointmentId.map((appointmentId): PatientAgendaCommand => ({ type: 'ReleaseTime', data: { patientId, appointmentId } })) },
  {
    weight: 3,
    arbitrary: fc
      .record({ appointmentId, slot })
      .map(({ appointmentId, slot }): PatientAgendaCommand => ({ type: 'MoveTime', data: { patientId, appointmentId, newStart: slot.start, newEnd: slot.end } })),
  },
);

type Outcome = { command: PatientAgendaCommand; before: PatientAgendaState; events: PatientAgendaEvent[] | DomainError; after: PatientAgendaState };

/** Decides each command; a refused command leaves the state as it was. */
function run(commands: PatientAgendaCommand[]): Outcome[] {
  let state = patientAgendaDecider.initialState;
  return commands.map((command) => {
    const before = state;
    let events: PatientAgendaEvent[];
    try {
      events = patientAgendaDecider.decide(command, state);
    } catch (error) {
      if (error instanceof DomainError) return { command, before, events: error, after: state };
      throw error;
    }
    for (const event of events) state = patientAgendaDecider.evolve(state, event);
    return { command, before, events, after: state };
  });
}

const live = (state: PatientAgendaState) => (state.status === 'active' ? Object.entries(state.reservations) : []);

test.prop([fc.array(command, { maxLength: 40 })])('no two reservations of the patient ever overlap', (commands) => {
  for (const { after } of run(commands)) {
    const reservations = live(after);
    for (const [i, [idA, a]] of reservations.entries()) {
      for (const [idB, b] of reservations.slice(i + 1)) expect(slotsOverlap(a, b), `${idA} ${JSON.stringify(a)} vs ${idB} ${JSON.stringify(b)}`).toBe(false);
    }
  }
});

test.prop([fc.array(command, { maxLength: 40 })])('new time is refused exactly when another appointment holds overlapping time', (commands) => {
  for (const { command, before, events } of run(commands)) {
    if (command.type === 'ReleaseTime') continue;
    const wanted = command.type === 'ReserveTime' ? command.data : { start: command.data.newStart, end: command.data.newEnd };
    // Only a reservation for an appointment without time, or a move of one with time, of a proper range.
    const holds = live(before).some(([id]) => id === command.data.appointmentId);
    if (holds !== (command.type === 'MoveTime') || Date.parse(wanted.start) >= Date.parse(wanted.end)) continue;
    const clash = live(before).some(([id, held]) => id !== command.data.appointmentId && slotsOverlap(held, wanted));
    expect(events instanceof DomainError ? events.code : 'granted').toBe(clash ? 'patient-overlap' : 'granted');
  }
});

test.prop([fc.array(command, { maxLength: 40 })])('the same command again changes nothing, and folding the events gives the same state', (commands) => {
  const outcomes = run(commands);
  for (const { command, events, after } of outcomes) if (Array.isArray(events)) expect(patientAgendaDecider.decide(command, after)).toEqual([]);
  const last = outcomes.at(-1);
  const emitted = outcomes.flatMap(({ events }) => (Array.isArray(events) ? events : []));
  if (last) expect(fold(patientAgendaDecider, emitted)).toEqual(last.after);
});

test.prop([fc.array(command, { maxLength: 40 })])('every event decide emits survives JSON and its published schema unchanged', (commands) => {
  for (const { events } of run(commands)) {
    if (Array.isArray(events)) for (const event of events) expect(patientAgendaEventSchema.parse(JSON.parse(JSON.stringify(event)))).toEqual(event);
  }
});
