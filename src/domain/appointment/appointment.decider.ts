import { hasRole, type Actor } from '../shared/actor.js';
import type { Instant } from '../shared/calendar-date.js';
import { isTooFarAhead, maxDaysAhead } from '../shared/booking-horizon.js';
import { assertNever, type Decider } from '../shared/decider.js';
import { DomainError, NotFoundError } from '../shared/domain-error.js';
import { ForbiddenError } from '../shared/forbidden-error.js';
import { isBefore, isProperSlot, minutesBetween, sameSlot, utcInstant, type TimeSlot } from '../shared/time-slot.js';
import type {
  AbandonAppointment,
  AppointmentCommand,
  CancelAppointment,
  CompleteAppointment,
  GiveUpReschedule,
  MarkAppointmentNoShow,
  RescheduleAppointment,
  ScheduleAppointment,
} from './appointment.commands.js';
import type {
  AppointmentAbandoned,
  AppointmentCancelled,
  AppointmentCompleted,
  AppointmentEvent,
  AppointmentMarkedNoShow,
  AppointmentRescheduled,
  AppointmentScheduled,
  Party,
  RescheduleGivenUp,
} from './appointment.events.js';

export const appointmentStreamId = (appointmentId: string) => `appointment-${appointmentId}`;

/** A patient cancelling closer to the start than this is recorded as a late cancellation. */
export const lateCancellationHours = 24;
/** The doctor may call it a no-show only once the patient is this late. */
export const noShowGraceMinutes = 15;

type Booked = {
  readonly appointmentId: string;
  readonly patientId: string;
  readonly doctorId: string;
  readonly start: Instant;
  readonly end: Instant;
};

/** Personal text (reason, notes) stays in the events; the state keeps what rules need. */
export type AppointmentState =
  | { readonly status: 'none' }
  /** Its id given up before it was made (see `AppointmentAbandoned`): as good as none, for ever. */
  | { readonly status: 'abandoned' }
  | (Booked & { readonly status: 'scheduled' | 'rescheduled' })
  | (Booked & { readonly status: 'completed'; readonly completedAt: Instant })
  | (Booked & { readonly status: 'cancelled'; readonly cancelledBy: Party; readonly lateCancellation: boolean; readonly cancelledAt: Instant })
  | (Booked & { readonly status: 'noShow'; readonly markedAt: Instant });

export const initialState: AppointmentState = { status: 'none' };

export type MadeAppointment = Exclude<AppointmentState, { status: 'none' | 'abandoned' }>;
type Open = Extract<AppointmentState, { status: 'scheduled' | 'rescheduled' }>;

function scheduleAppointment({ data }: ScheduleAppointment, state: AppointmentState): AppointmentEvent[] {
  const scheduledBy = requireParty(data.actor, data, ['patient', 'admin'], 'book an appointment for this patient');
  // Nobody could complete it: the patient would be acting as the doctor, which `requireParty` never reads them as.
  if (data.patientId === data.doctorId) throw new DomainError('own-schedule', 'a doctor cannot book an appointment with themselves');
  const slot = properSlot(data.start, data.end);
  if (state.status === 'abandoned') {
    throw new DomainError('appointment-abandoned', `appointment ${data.appointmentId} was given up after its request failed; book again`);
  }
  if (state.status !== 'none') {
    const same = state.patientId === data.patientId && state.doctorId === data.doctorId && sameSlot(state, slot);
    if (same) return [];
    throw new DomainError('illegal-transition', `appointment ${data.appointmentId} already exists`);
  }
  assertBookableStart(slot.start, data.now);
  const { appointmentId, patientId, doctorId, reason } = data;
  const event: AppointmentScheduled = {
    type: 'AppointmentScheduled',
    data: { appointmentId, patientId, doctorId, ...slot, reason, scheduledBy, scheduledAt: utcInstant(data.now) },
  };
  return [event];
}

function rescheduleAppointment({ data }: RescheduleAppointment, state: AppointmentState): AppointmentEvent[] {
  const existing = requireMade(state);
  const rescheduledBy = requireParty(data.actor, existing, ['patient', 'doctor', 'admin'], 'reschedule this appointment');
  const open = requireOpen(existing, 'rescheduled');
  const slot = properSlot(data.newStart, data.newEnd);
  if (sameSlot(open, slot)) return [];
  assertBookableStart(slot.start, data.now);
  // Once it has begun it is held, missed or cancelled: moving it then would take the visit from
  // the doctor's record, or the no-show from the patient's.
  if (!isBefore(data.now, open.start)) throw new DomainError('appointment-started', `the appointment began at ${open.start}`);
  const event: AppointmentRescheduled = {
    type: 'AppointmentRescheduled',
    data: {
      appointmentId: open.appointmentId,
      previousStart: open.start,
      previousEnd: open.end,
      ...slot,
      rescheduledBy,
      rescheduledAt: utcInstant(data.now),
    },
  };
  return [event];
}

function completeAppointment({ data }: CompleteAppointment, state: AppointmentState): AppointmentEvent[] {
  const existing = requireMade(state);
  requireParty(data.actor, existing, ['doctor'], 'complete this appointment');
  // Notes are not repeated silently: a second completion could only mean other notes.
  const open = requireOpen(existing, 'completed');
  if (isBefore(data.now, open.start)) throw new DomainError('too-early', `the appointment starts at ${open.start}`);
  const event: AppointmentCompleted = {
    type: 'AppointmentCompleted',
    data: { appointmentId: open.appointmentId, notes: data.notes, completedAt: utcInstant(data.now) },
  };
  return [event];
}

function cancelAppointment({ data }: CancelAppointment, state: AppointmentState): AppointmentEvent[] {
  const existing = requireMade(state);
  const cancelledBy = requireParty(data.actor, existing, ['patient', 'doctor', 'admin'], 'cancel this appointment');
  if (existing.status === 'cancelled') return repeatCancellation(existing.cancelledBy, cancelledBy);
  const open = requireOpen(existing, 'cancelled');
  // Once it has begun, only the doctor says whether it was held or missed; a patient cancelling
  // then would take the visit from the doctor's record, or the no-show from their own.
  if (cancelledBy === 'patient' && !isBefore(data.now, open.start)) {
    throw new DomainError('appointment-started', `the appointment began at ${open.start}; only its doctor or an admin may cancel it now`);
  }
  const lateCancellation = cancelledBy === 'patient' && minutesBetween(data.now, open.start) < lateCancellationHours * 60;
  const event: AppointmentCancelled = {
    type: 'AppointmentCancelled',
    data: { appointmentId: open.appointmentId, reason: data.reason, cancelledBy, lateCancellation, cancelledAt: utcInstant(data.now) },
  };
  return [event];
}

const partyNames: Record<Party, string> = { patient: 'its patient', doctor: 'its doctor', admin: 'an admin' };

/**
 * The party that cancelled asking again is a retry, answered with the appointment as it is, even
 * after its start. Another party is refused: answered alike, they would believe their own
 * cancellation, with their reason, had happened.
 */
function repeatCancellation(cancelledBy: Party, asking: Party): AppointmentEvent[] {
  if (asking === cancelledBy) return [];
  throw new DomainError('already-cancelled', `the appointment was cancelled by ${partyNames[cancelledBy]}`);
}

function markNoShow({ data }: MarkAppointmentNoShow, state: AppointmentState): AppointmentEvent[] {
  const existing = requireMade(state);
  requireParty(data.actor, existing, ['doctor'], 'mark this appointment as a no-show');
  if (existing.status === 'noShow') return [];
  const open = requireOpen(existing, 'noShow');
  if (minutesBetween(open.start, data.now) <= noShowGraceMinutes) {
    throw new DomainError('too-early', `a no-show can be recorded only after ${noShowGraceMinutes} minutes past ${open.start}`);
  }
  const event: AppointmentMarkedNoShow = { type: 'AppointmentMarkedNoShow', data: { appointmentId: open.appointmentId, markedAt: utcInstant(data.now) } };
  return [event];
}

/** Only an appointment not made yet is given up; one made meanwhile stays, and keeps its slot. */
function abandonAppointment({ data }: AbandonAppointment, state: AppointmentState): AppointmentEvent[] {
  if (state.status !== 'none') return [];
  const event: AppointmentAbandoned = { type: 'AppointmentAbandoned', data: { appointmentId: data.appointmentId, abandonedAt: utcInstant(data.now) } };
  return [event];
}

/**
 * Recorded on an open appointment elsewhere than `to`. One at `to` has moved there: the
 * reschedule landed and is not to be given up (its held slot becomes the appointment's). One
 * completed, cancelled or missed never moves again, so nothing needs fencing.
 */
function giveUpReschedule({ data }: GiveUpReschedule, state: AppointmentState): AppointmentEvent[] {
  const existing = requireMade(state);
  if (existing.status !== 'scheduled' && existing.status !== 'rescheduled') return [];
  const to = utcInstant(data.to);
  if (existing.start === to) throw new DomainError('reschedule-landed', `appointment ${data.appointmentId} was rescheduled to ${to}`);
  const event: RescheduleGivenUp = { type: 'RescheduleGivenUp', data: { appointmentId: existing.appointmentId, to, givenUpAt: utcInstant(data.now) } };
  return [event];
}

export function decide(command: AppointmentCommand, state: AppointmentState): AppointmentEvent[] {
  switch (command.type) {
    case 'ScheduleAppointment':
      return scheduleAppointment(command, state);
    case 'RescheduleAppointment':
      return rescheduleAppointment(command, state);
    case 'CompleteAppointment':
      return completeAppointment(command, state);
    case 'CancelAppointment':
      return cancelAppointment(command, state);
    case 'MarkAppointmentNoShow':
      return markNoShow(command, state);
    case 'AbandonAppointment':
      return abandonAppointment(command, state);
    case 'GiveUpReschedule':
      return giveUpReschedule(command, state);
    default:
      return assertNever(command);
  }
}

function requireMade(state: AppointmentState): MadeAppointment {
  if (!isMade(state)) throw new NotFoundError('This appointment');
  return state;
}

/** Terminal states are terminal: completed, cancelled and no-show appointments never move on. */
function requireOpen(state: MadeAppointment, target: string): Open {
  if (state.status === 'scheduled' || state.status === 'rescheduled') return state;
  throw new DomainError('illegal-transition', `a ${state.status} appointment cannot become ${target}`);
}

/**
 * In whose name the actor acts: their own appointment as patient or as doctor first, else as an
 * admin. So an admin cancelling their own appointment is a patient cancelling, late or not.
 */
function requireParty(actor: Actor, appointment: Pick<Booked, 'patientId' | 'doctorId'>, allowed: readonly Party[], action: string): Party {
  const party: Party | undefined =
    actor.id === appointment.patientId ? 'patient' : actor.id === appointment.doctorId ? 'doctor' : hasRole(actor, 'ADMIN') ? 'admin' : undefined;
  if (party === undefined || !allowed.includes(party)) throw new ForbiddenError(`${actor.id} may not ${action}`);
  return party;
}

function properSlot(start: Instant, end: Instant): TimeSlot {
  const slot = { start: utcInstant(start), end: utcInstant(end) };
  if (!isProperSlot(slot)) throw new DomainError('invalid-time-range', `${start} to ${end} is not a stretch of time`);
  return slot;
}

/** In the future, and no further ahead than a doctor's schedule books (see `maxDaysAhead`). */
function assertBookableStart(start: Instant, now: Instant): void {
  if (!isBefore(now, start)) throw new DomainError('slot-in-past', `${start} is not in the future`);
  if (isTooFarAhead(start, now)) throw new DomainError('slot-too-far-ahead', `${start} is more than ${maxDaysAhead} days ahead`);
}

export function evolve(state: AppointmentState, event: AppointmentEvent): AppointmentState {
  switch (event.type) {
    case 'AppointmentScheduled': {
      const { appointmentId, patientId, doctorId, start, end } = event.data;
      return { status: 'scheduled', appointmentId, patientId, doctorId, start, end };
    }
    case 'AppointmentRescheduled':
      if (!isMade(state)) return state;
      return { ...booked(state), status: 'rescheduled', start: event.data.start, end: event.data.end };
    case 'AppointmentCompleted':
      if (!isMade(state)) return state;
      return { ...booked(state), status: 'completed', completedAt: event.data.completedAt };
    case 'AppointmentCancelled': {
      if (!isMade(state)) return state;
      const { cancelledBy, lateCancellation, cancelledAt } = event.data;
      return { ...booked(state), status: 'cancelled', cancelledBy, lateCancellation, cancelledAt };
    }
    case 'AppointmentMarkedNoShow':
      if (!isMade(state)) return state;
      return { ...booked(state), status: 'noShow', markedAt: event.data.markedAt };
    case 'AppointmentAbandoned':
      return state.status === 'none' ? { status: 'abandoned' } : state;
    case 'RescheduleGivenUp':
      return state;
    default:
      return assertNever(event);
  }
}

/** Made, whatever became of it since: neither not yet made nor given up. */
export function isMade(state: AppointmentState): state is MadeAppointment {
  return state.status !== 'none' && state.status !== 'abandoned';
}

// Copies only the booking, so a state never carries fields of the status it left.
function booked({ appointmentId, patientId, doctorId, start, end }: MadeAppointment): Booked {
  return { appointmentId, patientId, doctorId, start, end };
}

export const appointmentDecider: Decider<AppointmentCommand, AppointmentEvent, AppointmentState> = {
  initialState,
  decide,
  evolve,
};
