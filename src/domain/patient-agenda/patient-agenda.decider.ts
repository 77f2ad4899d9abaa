import { assertNever, type Decider } from '../shared/decider.js';
import { DomainError, NotFoundError } from '../shared/domain-error.js';
import { isProperSlot, sameSlot, slotsOverlap, utcInstant, type TimeSlot } from '../shared/time-slot.js';
import type { MoveTime, PatientAgendaCommand, ReleaseTime, ReserveTime } from './patient-agenda.commands.js';
import type { PatientAgendaEvent, TimeMoved, TimeReleased, TimeReserved } from './patient-agenda.events.js';

/**
 * One patient's reserved time across all doctors: the consistency boundary for "a patient never
 * holds two overlapping appointments". Appointments with different doctors live in different
 * schedule streams, so only a stream per patient can see them all at once.
 */
export const patientAgendaStreamId = (patientId: string) => `patientAgenda-${patientId}`;

/**
 * Reservations by appointment id. Past ones are kept: the agenda has no clock to tell them
 * apart, a patient's stream stays small (one entry per appointment not released), and a past
 * reservation can never overlap a future one anyway.
 */
export type Reservations = Readonly<Record<string, TimeSlot>>;

export type PatientAgendaState =
  | { readonly status: 'empty' }
  | { readonly status: 'active'; readonly patientId: string; readonly reservations: Reservations };

export const initialState: PatientAgendaState = { status: 'empty' };

function reserveTime({ data }: ReserveTime, state: PatientAgendaState): PatientAgendaEvent[] {
  const reservations = reservationsOf(state, data.patientId);
  const slot = properSlot(data.start, data.end);
  const existing = reservations[data.appointmentId];
  if (existing && sameSlot(existing, slot)) return [];
  if (existing) {
    throw new DomainError('already-reserved', `appointment ${data.appointmentId} already holds ${existing.start}–${existing.end}; move it instead`);
  }
  assertFree(reservations, slot, data.appointmentId);
  const event: TimeReserved = { type: 'TimeReserved', data: { patientId: data.patientId, appointmentId: data.appointmentId, ...slot } };
  return [event];
}

function releaseTime({ data }: ReleaseTime, state: PatientAgendaState): PatientAgendaEvent[] {
  const existing = reservationsOf(state, data.patientId)[data.appointmentId];
  if (!existing) return [];
  const event: TimeReleased = { type: 'TimeReleased', data: { patientId: data.patientId, appointmentId: data.appointmentId, ...existing } };
  return [event];
}

function moveTime({ data }: MoveTime, state: PatientAgendaState): PatientAgendaEvent[] {
  const reservations = reservationsOf(state, data.patientId);
  const slot = properSlot(data.newStart, data.newEnd);
  const existing = reservations[data.appointmentId];
  if (!existing) throw new NotFoundError(`A reservation for appointment ${data.appointmentId}`);
  if (sameSlot(existing, slot)) return [];
  // Two reschedules of one appointment, each moving "its" time, would leave the time where the
  // first put it and the appointment where the second did: only the time the mover saw moves.
  if (data.from !== undefined && existing.start !== utcInstant(data.from)) {
    throw new DomainError('time-moved-meanwhile', `the time of appointment ${data.appointmentId} is no longer at ${data.from}: another change of it is under way`);
  }
  assertFree(reservations, slot, data.appointmentId);
  const event: TimeMoved = {
    type: 'TimeMoved',
    data: { patientId: data.patientId, appointmentId: data.appointmentId, previousStart: existing.start, previousEnd: existing.end, ...slot },
  };
  return [event];
}

export function decide(command: PatientAgendaCommand, state: PatientAgendaState): PatientAgendaEvent[] {
  switch (command.type) {
    case 'ReserveTime':
      return reserveTime(command, state);
    case 'ReleaseTime':
      return releaseTime(command, state);
    case 'MoveTime':
      return moveTime(command, state);
    default:
      return assertNever(command);
  }
}

/** The time an appointment keeps in this agenda, if it keeps any. */
export function reservationOf(state: PatientAgendaState, appointmentId: string): TimeSlot | undefined {
  return state.status === 'empty' ? undefined : state.reservations[appointmentId];
}

/** The reservations, once the command is known to be for this agenda's patient. */
function reservationsOf(state: PatientAgendaState, patientId: string): Reservations {
  if (state.status === 'empty') return {};
  if (state.patientId !== patientId) throw new DomainError('patient-mismatch', `this agenda belongs to patient ${state.patientId}`);
  return state.reservations;
}

function properSlot(start: string, end: string): TimeSlot {
  const slot = { start: utcInstant(start), end: utcInstant(end) };
  if (!isProperSlot(slot)) throw new DomainError('invalid-time-range', `${start} to ${end} is not a stretch of time`);
  return slot;
}

/**
 * Overlap is of half-open intervals: one appointment may end exactly when the next begins. The
 * refusal names neither the other appointment nor its time: a doctor rescheduling a patient
 * hears it too, and the other appointment may be with another doctor, none of theirs to know.
 */
function assertFree(reservations: Reservations, slot: TimeSlot, appointmentId: string): void {
  const clash = Object.entries(reservations).some(([id, reserved]) => id !== appointmentId && slotsOverlap(reserved, slot));
  if (clash) throw new DomainError('patient-overlap', 'the patient has another appointment overlapping that time');
}

export function evolve(state: PatientAgendaState, event: PatientAgendaEvent): PatientAgendaState {
  const reservations = state.status === 'active' ? state.reservations : {};
  const { patientId, appointmentId } = event.data;
  switch (event.type) {
    case 'TimeReserved':
    case 'TimeMoved':
      return { status: 'active', patientId, reservations: { ...reservations, [appointmentId]: { start: event.data.start, end: event.data.end } } };
    case 'TimeReleased': {
      const { [appointmentId]: _released, ...rest } = reservations;
      return { status: 'active', patientId, reservations: rest };
    }
    default:
      return assertNever(event);
  }
}

export const patientAgendaDecider: Decider<PatientAgendaCommand, PatientAgendaEvent, PatientAgendaState> = {
  initialState,
  decide,
  evolve,
};
