import { describe, expect, it } from 'vitest';
import type {
  CancelAppointment,
  CompleteAppointment,
  MarkAppointmentNoShow,
  RescheduleAppointment,
  ScheduleAppointment,
} from '../../src/domain/appointment/appointment.commands.js';
import { appointmentDecider, appointmentStreamId } from '../../src/domain/appointment/appointment.decider.js';
import {
  appointmentCancelledSchema,
  appointmentCompletedSchema,
  appointmentScheduledSchema,
  type AppointmentCancelled,
  type AppointmentCompleted,
  type AppointmentEvent,
  type AppointmentMarkedNoShow,
  type AppointmentRescheduled,
  type AppointmentScheduled,
} from '../../src/domain/appointment/appointment.events.js';
import type { Actor } from '../../src/domain/shared/actor.js';
import { isPersonal } from '../../src/domain/shared/personal-data.js';
import { deciderSpec } from '../support/decider-spec.js';

const spec = deciderSpec(appointmentDecider);

const appointmentId = 'appt-1';
const patient: Actor = { id: 'patient-1', roles: ['PATIENT'] };
const doctor: Actor = { id: 'doctor-1', roles: ['DOCTOR'] };
const admin: Actor = { id: 'admin-1', roles: ['ADMIN'] };
const otherPatient: Actor = { id: 'patient-2', roles: ['PATIENT'] };
const otherDoctor: Actor = { id: 'doctor-2', roles: ['DOCTOR'] };

const start = '2026-06-10T08:00:00.000Z';
const end = '2026-06-10T08:30:00.000Z';
const later = '2026-06-11T14:00:00.000Z';
const laterEnd = '2026-06-11T14:30:00.000Z';
const now = '2026-06-01T10:00:00.000Z';

const minutesAfter = (instant: string, minutes: number) => new Date(Date.parse(instant) + minutes * 60_000).toISOString();

const schedule = (data: Partial<ScheduleAppointment['data']> = {}): ScheduleAppointment => ({
  type: 'ScheduleAppointment',
  data: { appointmentId, patientId: patient.id, doctorId: doctor.id, start, end, reason: 'Persistent cough', actor: patient, now, ...data },
});
const scheduled = (data: Partial<AppointmentScheduled['data']> = {}): AppointmentScheduled => ({
  type: 'AppointmentScheduled',
  data: { appointmentId, patientId: patient.id, doctorId: doctor.id, start, end, reason: 'Persistent cough', scheduledBy: 'patient', scheduledAt: now, ...data },
});
const reschedule = (actor: Actor, newStart = later, newEnd = laterEnd, at = now): RescheduleAppointment => ({
  type: 'RescheduleAppointment',
  data: { appointmentId, newStart, newEnd, actor, now: at },
});
const rescheduled = (data: Partial<AppointmentRescheduled['data']> = {}): AppointmentRescheduled => ({
  type: 'AppointmentRescheduled',
  data: { appointmentId, previousStart: start, previousEnd: end, start: later, end: laterEnd, rescheduledBy: 'patient', rescheduledAt: now, ...data },
});
const complete = (actor: Actor, at: string): CompleteAppointment => ({
  type: 'CompleteAppointment',
  data: { appointmentId, notes: 'Bronchitis; rest and fluids', actor, now: at },
});
const completed = (at: string): AppointmentCompleted => ({
  type: 'AppointmentCompleted',
  data: { appointmentId, notes: 'Bronchitis; rest and fluids', completedAt: at },
});
const cancel = (actor: Actor, at = now): CancelAppointment => ({
  type: 'CancelAppointment',
  data: { appointmentId, reason: 'Feeling better', actor, now: at },
});
const cancelled = (data: Partial<AppointmentCancelled['data']> = {}): AppointmentCancelled => ({
  type: 'AppointmentCancelled',
  data: { appointmentId, reason: 'Feeling better', cancelledBy: 'patient', lateCancellation: false, cancelledAt: now, ...data },
});
const markNoShow = (actor: Actor, at: string): MarkAppointmentNoShow => ({ type: 'MarkAppointmentNoShow', data: { appointmentId, actor, now: at } });
const markedNoShow = (at: string): AppointmentMarkedNoShow => ({ type: 'AppointmentMarkedNoShow', data: { appointmentId, markedAt: at } });

const afterStart = minutesAfter(start, 20);
const terminal: [string, AppointmentEvent[]][] = [
  ['completed', [scheduled(), completed(afterStart)]],
  ['cancelled', [scheduled(), cancelled()]],
  ['no-show', [scheduled(), markedNoShow(afterStart)]],
];

describe('Appointment stream and schemas', () => {
  it('is named appointment-<id>', () => {
    expect(appointmentStreamId('a-3')).toBe('appointment-a-3');
  });

  it('marks the reason for visit, clinical notes and cancellation reason as personal data', () => {
    expect(isPersonal(appointmentScheduledSchema.shape.data.shape.reason)).toBe(true);
    expect(isPersonal(appointmentCompletedSchema.shape.data.shape.notes)).toBe(true);
    expect(isPersonal(appointmentCancelledSchema.shape.data.shape.reason)).toBe(true);
    expect(isPersonal(appointmentScheduledSchema.shape.data.shape.patientId)).toBe(false);
  });
});

describe('ScheduleAppointment', () => {
  it('schedules the appointment for its patient', () => {
    spec.given([]).when(schedule()).then([scheduled()]);
  });

  it('schedules on behalf of a patient when an admin asks', () => {
    spec.given([]).when(schedule({ actor: admin })).then([scheduled({ scheduledBy: 'admin' })]);
  });

  it('writes times in UTC whatever offset the command used', () => {
    spec
      .given([])
      .when(schedule({ start: '2026-06-10T10:00:00+02:00', end: '2026-06-10T10:30:00+02:00', now: '2026-06-01T12:00:00+02:00' }))
      .then([scheduled()]);
  });

  it.each([
    ['the doctor', doctor],
    ['another patient', otherPatient],
  ])('forbids %s to book it for the patient', (_, actor) => {
    spec.given([]).when(schedule({ actor })).thenFails('forbidden');
  });

  it('refuses a patient who is also a doctor booking their own schedule: nobody could complete it', () => {
    const both: Actor = { id: 'patient-and-doctor', roles: ['PATIENT', 'DOCTOR'] };
    spec.given([]).when(schedule({ actor: both, patientId: both.id, doctorId: both.id })).thenFails('own-schedule');
  });

  it('refuses an admin booking a doctor with themselves', () => {
    spec.given([]).when(schedule({ actor: admin, patientId: doctor.id })).thenFails('own-schedule');
  });

  it('refuses a time that ends before it starts', () => {
    spec.given([]).when(schedule({ start: end, end: start })).thenFails('invalid-time-range');
  });

  it('refuses a start that is not in the future', () => {
    spec.given([]).when(schedule({ now: start })).thenFails('slot-in-past');
  });

  it('schedules a start 364 days ahead, and refuses one 366 days ahead', () => {
    const yearOn = (days: number) => ({ start: minutesAfter(now, days * 24 * 60), end: minutesAfter(now, days * 24 * 60 + 30) });
    spec.given([]).when(schedule(yearOn(364))).then([scheduled(yearOn(364))]);
    spec.given([]).when(schedule(yearOn(366))).thenFails('slot-too-far-ahead');
  });

  it('changes nothing when the same appointment is scheduled again', () => {
    spec.given([scheduled()]).when(schedule()).then([]);
  });

  it('refuses to schedule an existing appointment differently', () => {
    spec.given([scheduled()]).when(schedule({ start: later, end: laterEnd })).thenFails('illegal-transition');
    spec.given([scheduled(), cancelled()]).when(schedule({ doctorId: otherDoctor.id })).thenFails('illegal-transition');
  });
});

describe('RescheduleAppointment', () => {
  it.each([
    ['patient', patient],
    ['doctor', doctor],
    ['admin', admin],
  ] as const)('moves it to the new time when the %s asks', (party, actor) => {
    spec.given([scheduled()]).when(reschedule(actor)).then([rescheduled({ rescheduledBy: party })]);
  });

  it('moves it again, any number of times', () => {
    const third = '2026-06-12T09:00:00.000Z';
    const thirdEnd = '2026-06-12T09:30:00.000Z';
    spec
      .given([scheduled(), rescheduled()])
      .when(reschedule(doctor, third, thirdEnd))
      .then([rescheduled({ previousStart: later, previousEnd: laterEnd, start: third, end: thirdEnd, rescheduledBy: 'doctor' })]);
  });

  it('changes nothing when it is already at that time', () => {
    spec.given([scheduled()]).when(reschedule(patient, '2026-06-10T10:00:00+02:00', end)).then([]);
  });

  it.each([
    ['another patient', otherPatient],
    ['another doctor', otherDoctor],
  ])('forbids %s', (_, actor) => {
    spec.given([scheduled()]).when(reschedule(actor)).thenFails('forbidden');
  });

  it('needs the appointment to exist', () => {
    spec.given([]).when(reschedule(patient)).thenFails('not-found');
  });

  it.each(terminal)('refuses to reschedule a %s appointment', (_, history) => {
    spec.given(history).when(reschedule(patient)).thenFails('illegal-transition');
  });

  it('refuses a new time that is not in the future', () => {
    spec.given([scheduled()]).when(reschedule(patient, later, laterEnd, later)).thenFails('slot-in-past');
  });

  it('moves to a time 364 days ahead, and refuses one 366 days ahead', () => {
    const yearOn = (days: number) => [minutesAfter(now, days * 24 * 60), minutesAfter(now, days * 24 * 60 + 30)] as const;
    const [start364, end364] = yearOn(364);
    spec.given([scheduled()]).when(reschedule(patient, start364, end364)).then([rescheduled({ start: start364, end: end364 })]);
    spec.given([scheduled()]).when(reschedule(patient, ...yearOn(366))).thenFails('slot-too-far-ahead');
  });

  it('refuses to move an appointment that has begun, whoever asks', () => {
    for (const actor of [patient, doctor, admin]) {
      spec.given([scheduled()]).when(reschedule(actor, later, laterEnd, start)).thenFails('appointment-started');
      spec.given([scheduled()]).when(reschedule(actor, later, laterEnd, minutesAfter(start, 20))).thenFails('appointment-started');
    }
  });

  it('refuses a new time that ends before it starts', () => {
    spec.given([scheduled()]).when(reschedule(patient, laterEnd, later)).thenFails('invalid-time-range');
  });
});

describe('CompleteAppointment', () => {
  it('is recorded by the doctor at the start', () => {
    spec.given([scheduled()]).when(complete(doctor, start)).then([completed(start)]);
  });

  it('is recorded by the doctor after the start, also of a rescheduled appointment', () => {
    spec.given([scheduled(), rescheduled()]).when(complete(doctor, minutesAfter(later, 25))).then([completed(minutesAfter(later, 25))]);
  });

  it('is too early before the start', () => {
    spec.given([scheduled()]).when(complete(doctor, minutesAfter(start, -1))).thenFails('too-early');
  });

  it('is too early before the new start of a rescheduled appointment', () => {
    spec.given([scheduled(), rescheduled()]).when(complete(doctor, afterStart)).thenFails('too-early');
  });

  it.each([
    ['the patient', patient],
    ['an admin', admin],
    ['another doctor', otherDoctor],
  ])('is forbidden to %s', (_, actor) => {
    spec.given([scheduled()]).when(complete(actor, afterStart)).thenFails('forbidden');
  });

  it('needs the appointment to exist', () => {
    spec.given([]).when(complete(doctor, afterStart)).thenFails('not-found');
  });

  it.each(terminal)('refuses to complete a %s appointment', (_, history) => {
    spec.given(history).when(complete(doctor, afterStart)).thenFails('illegal-transition');
  });
});

describe('CancelAppointment', () => {
  it('is not late when the patient cancels 24 hours or more before the start', () => {
    spec.given([scheduled()]).when(cancel(patient)).then([cancelled()]);
    const dayBefore = minutesAfter(start, -24 * 60);
    spec.given([scheduled()]).when(cancel(patient, dayBefore)).then([cancelled({ cancelledAt: dayBefore })]);
  });

  it('is late when the patient cancels less than 24 hours before the start', () => {
    const justUnder = minutesAfter(start, -24 * 60 + 1);
    spec.given([scheduled()]).when(cancel(patient, justUnder)).then([cancelled({ lateCancellation: true, cancelledAt: justUnder })]);
  });

  it('is late when the patient cancels just before the start', () => {
    const justBefore = minutesAfter(start, -1);
    spec.given([scheduled()]).when(cancel(patient, justBefore)).then([cancelled({ lateCancellation: true, cancelledAt: justBefore })]);
  });

  it('is refused to the patient once it has begun: the doctor says whether it was held or missed', () => {
    for (const at of [start, afterStart, minutesAfter(end, 3 * 24 * 60)]) {
      spec.given([scheduled()]).when(cancel(patient, at)).thenFails('appointment-started');
    }
    spec.given([scheduled(), rescheduled()]).when(cancel(patient, later)).thenFails('appointment-started');
  });

  it('is refused to an admin cancelling their own appointment once it has begun: they are its patient', () => {
    const patientAdmin: Actor = { id: patient.id, roles: ['PATIENT', 'ADMIN'] };
    spec.given([scheduled()]).when(cancel(patientAdmin, afterStart)).thenFails('appointment-started');
  });

  it.each([
    ['doctor', doctor],
    ['admin', admin],
  ] as const)('is still allowed to the %s once it has begun, and not late', (party, actor) => {
    spec.given([scheduled()]).when(cancel(actor, afterStart)).then([cancelled({ cancelledBy: party, cancelledAt: afterStart })]);
    spec.given([scheduled()]).when(cancel(actor, start)).then([cancelled({ cancelledBy: party, cancelledAt: start })]);
  });

  it('measures the start from the new time of a rescheduled appointment', () => {
    // After the original start, but more than a day before the new one.
    spec.given([scheduled(), rescheduled()]).when(cancel(patient, afterStart)).then([cancelled({ cancelledAt: afterStart })]);
  });

  it('measures lateness from the new start of a rescheduled appointment', () => {
    // 20 hours before the original start, but more than 24 hours before the new one.
    const at = minutesAfter(start, -20 * 60);
    spec.given([scheduled(), rescheduled()]).when(cancel(patient, at)).then([cancelled({ cancelledAt: at })]);
  });

  it.each([
    ['doctor', doctor],
    ['admin', admin],
  ] as const)('is never late when the %s cancels', (party, actor) => {
    const hourBefore = minutesAfter(start, -60);
    spec.given([scheduled()]).when(cancel(actor, hourBefore)).then([cancelled({ cancelledBy: party, cancelledAt: hourBefore })]);
  });

  it('is the patient cancelling when an admin cancels their own appointment', () => {
    const patientAdmin: Actor = { id: patient.id, roles: ['PATIENT', 'ADMIN'] };
    const hourBefore = minutesAfter(start, -60);
    spec.given([scheduled()]).when(cancel(patientAdmin, hourBefore)).then([cancelled({ lateCancellation: true, cancelledAt: hourBefore })]);
  });

  it.each([
    ['patient', patient],
    ['doctor', doctor],
    ['admin', admin],
  ] as const)('changes nothing when the %s who cancelled it cancels again: a retry', (party, actor) => {
    spec.given([scheduled(), cancelled({ cancelledBy: party })]).when(cancel(actor)).then([]);
  });

  it('changes nothing when another admin repeats an admin\'s cancellation: one capacity', () => {
    spec.given([scheduled(), cancelled({ cancelledBy: 'admin' })]).when(cancel({ id: 'admin-2', roles: ['ADMIN'] })).then([]);
  });

  it('changes nothing when the patient repeats their cancellation after the start', () => {
    spec.given([scheduled(), cancelled()]).when(cancel(patient, afterStart)).then([]);
  });

  it.each([
    ['patient', 'doctor', doctor],
    ['patient', 'admin', admin],
    ['doctor', 'patient', patient],
    ['doctor', 'admin', admin],
    ['admin', 'patient', patient],
    ['admin', 'doctor', doctor],
  ] as const)('refuses the %s\'s cancellation to the %s as already cancelled', (cancelledBy, _, actor) => {
    spec.given([scheduled(), cancelled({ cancelledBy })]).when(cancel(actor)).thenFails('already-cancelled');
  });

  it('names who cancelled it when refusing another party', () => {
    const refusal = (cancelledBy: AppointmentCancelled['data']['cancelledBy'], actor: Actor) => () => {
      const state = [scheduled(), cancelled({ cancelledBy })].reduce(appointmentDecider.evolve, appointmentDecider.initialState);
      return appointmentDecider.decide(cancel(actor), state);
    };
    expect(refusal('patient', doctor)).toThrow('the appointment was cancelled by its patient');
    expect(refusal('doctor', patient)).toThrow('the appointment was cancelled by its doctor');
    expect(refusal('admin', doctor)).toThrow('the appointment was cancelled by an admin');
  });

  it('refuses the patient after the start as already cancelled, not as started, when the doctor cancelled it', () => {
    spec.given([scheduled(), cancelled({ cancelledBy: 'doctor' })]).when(cancel(patient, afterStart)).thenFails('already-cancelled');
  });

  it('judges the capacity as a new cancellation would: an admin who is the patient retries as the patient', () => {
    const patientAdmin: Actor = { id: patient.id, roles: ['PATIENT', 'ADMIN'] };
    spec.given([scheduled(), cancelled()]).when(cancel(patientAdmin, afterStart)).then([]);
    spec.given([scheduled(), cancelled({ cancelledBy: 'admin' })]).when(cancel(patientAdmin)).thenFails('already-cancelled');
  });

  it.each([
    ['another patient', otherPatient],
    ['another doctor', otherDoctor],
  ])('is forbidden to %s', (_, actor) => {
    spec.given([scheduled()]).when(cancel(actor)).thenFails('forbidden');
  });

  it('is forbidden to strangers even once cancelled', () => {
    spec.given([scheduled(), cancelled()]).when(cancel(otherPatient)).thenFails('forbidden');
  });

  it('needs the appointment to exist', () => {
    spec.given([]).when(cancel(patient)).thenFails('not-found');
  });

  it.each(terminal.filter(([name]) => name !== 'cancelled'))('refuses to cancel a %s appointment', (_, history) => {
    spec.given(history).when(cancel(patient)).thenFails('illegal-transition');
  });
});

describe('MarkAppointmentNoShow', () => {
  it('is recorded by the doctor more than 15 minutes after the start', () => {
    const at = minutesAfter(start, 16);
    spec.given([scheduled()]).when(markNoShow(doctor, at)).then([markedNoShow(at)]);
  });

  it('is too early at 15 minutes after the start or sooner', () => {
    spec.given([scheduled()]).when(markNoShow(doctor, minutesAfter(start, 15))).thenFails('too-early');
    spec.given([scheduled()]).when(markNoShow(doctor, minutesAfter(start, -5))).thenFails('too-early');
  });

  it('counts from the new start of a rescheduled appointment', () => {
    spec.given([scheduled(), rescheduled()]).when(markNoShow(doctor, afterStart)).thenFails('too-early');
  });

  it.each([
    ['the patient', patient],
    ['an admin', admin],
    ['another doctor', otherDoctor],
  ])('is forbidden to %s', (_, actor) => {
    spec.given([scheduled()]).when(markNoShow(actor, afterStart)).thenFails('forbidden');
  });

  it('changes nothing when it was already recorded', () => {
    spec.given([scheduled(), markedNoShow(afterStart)]).when(markNoShow(doctor, minutesAfter(start, 60))).then([]);
  });

  it('needs the appointment to exist', () => {
    spec.given([]).when(markNoShow(doctor, afterStart)).thenFails('not-found');
  });

  it.each(terminal.filter(([name]) => name !== 'no-show'))('refuses a %s appointment', (_, history) => {
    spec.given(history).when(markNoShow(doctor, afterStart)).thenFails('illegal-transition');
  });
});

describe('AbandonAppointment', () => {
  const abandon = { type: 'AbandonAppointment', data: { appointmentId, now } } as const;
  const abandoned = { type: 'AppointmentAbandoned', data: { appointmentId, abandonedAt: now } } as const;

  it('given no appointment, gives its id up', () => {
    spec.given([]).when(abandon).then([abandoned]);
  });

  it('given an appointment made meanwhile, changes nothing: it keeps its slot', () => {
    spec.given([scheduled()]).when(abandon).then([]);
  });

  it('given the id given up, refuses to make the appointment after all (the request is to book again)', () => {
    spec.given([abandoned]).when(schedule()).thenFails('appointment-abandoned');
    spec.given([abandoned]).when(abandon).then([]);
  });

  it('given the id given up, knows no appointment to act on', () => {
    spec.given([abandoned]).when(cancel(patient)).thenFails('not-found');
  });
});

describe('GiveUpReschedule', () => {
  const giveUp = (to = later) => ({ type: 'GiveUpReschedule', data: { appointmentId, to, now } }) as const;
  const givenUp = (to = later) => ({ type: 'RescheduleGivenUp', data: { appointmentId, to, givenUpAt: now } }) as const;

  it('given an open appointment elsewhere, records the reschedule given up, and changes nothing else', () => {
    spec.given([scheduled()]).when(giveUp()).then([givenUp()]);
    spec.given([scheduled(), rescheduled()]).when(giveUp(start)).then([givenUp(start)]);
    const state = (events: AppointmentEvent[]) => events.reduce(appointmentDecider.evolve, appointmentDecider.initialState);
    expect(state([scheduled(), givenUp()])).toEqual(state([scheduled()]));
  });

  it('writes the time in UTC whatever offset the command used', () => {
    spec.given([scheduled()]).when(giveUp('2026-06-11T16:00:00+02:00')).then([givenUp(later)]);
  });

  it('refuses once the appointment is where the reschedule was going: it landed, and its slot is to follow it', () => {
    spec.given([scheduled(), rescheduled()]).when(giveUp(later)).thenFails('reschedule-landed');
  });

  it('changes nothing on an appointment that never moves again', () => {
    for (const [, history] of terminal) spec.given(history).when(giveUp()).then([]);
  });

  it('needs the appointment to exist', () => {
    spec.given([]).when(giveUp()).thenFails('not-found');
  });

  it('still lets the appointment be rescheduled there: a retry of the request is a reschedule like any other', () => {
    spec.given([scheduled(), givenUp()]).when(reschedule(patient)).then([rescheduled()]);
  });
});

describe('the state', () => {
  it('keeps who, when and whether late for a cancellation, and no personal text', () => {
    const state = [scheduled(), rescheduled(), cancelled({ lateCancellation: true })].reduce(appointmentDecider.evolve, appointmentDecider.initialState);
    expect(state).toEqual({
      status: 'cancelled',
      appointmentId,
      patientId: patient.id,
      doctorId: doctor.id,
      start: later,
      end: laterEnd,
      cancelledBy: 'patient',
      lateCancellation: true,
      cancelledAt: now,
    });
  });
});
