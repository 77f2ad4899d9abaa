import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { bookAppointment, cancelAppointment, completeAppointment, markNoShow, rescheduleAppointment } from '../../src/application/appointments/appointment.use-cases.js';
import { setSchedule } from '../../src/application/schedules/schedule.use-cases.js';
import { appointmentsProjection } from '../../src/projections/appointments/appointments.projection.js';
import { appointmentFor, appointmentsOf, findAppointment, type AppointmentView } from '../../src/projections/appointments/appointments.queries.js';
import { as, doctor, everyMorning, otherDoctor, patient } from '../support/command-side.js';
import { startReadModels, type ReadModelHarness } from './support/read-models.harness.js';

/** The page order: when made, latest first, then id, also latest first. */
const madeNewestFirst = (items: readonly AppointmentView[]) =>
  [...items].sort((x, y) => y.scheduledAt.localeCompare(x.scheduledAt) || (x.id < y.id ? 1 : x.id > y.id ? -1 : 0));

describe('appointments read model', () => {
  let h: ReadModelHarness;
  const view = async (id: string, viewer = { id: patient.id, admin: false }) => {
    const row = await findAppointment(h.db, id);
    return row && appointmentFor(viewer, row);
  };

  beforeAll(async () => {
    h = await startReadModels([appointmentsProjection]);
    await setSchedule(h.side, doctor.id, everyMorning, as(doctor));
    await setSchedule(h.side, otherDoctor.id, everyMorning, as(otherDoctor));
  });
  afterAll(() => h.close());

  it('given AppointmentScheduled, AppointmentRescheduled and AppointmentCompleted, then the row follows, notes only for the parties', async () => {
    const { id } = await bookAppointment(h.side, { doctorId: doctor.id, start: '2030-01-14T09:00:00Z', reason: 'back pain' }, as(patient));
    await rescheduleAppointment(h.side, id, { start: '2030-01-14T10:00:00Z' }, as(patient));
    await h.settle();
    expect(await view(id)).toMatchObject({ status: 'rescheduled', start: '2030-01-14T10:00:00.000Z', end: '2030-01-14T10:30:00.000Z', reason: 'back pain', scheduledBy: 'patient' });
    h.clock.advance(4 * 86_400_000);
    await completeAppointment(h.side, id, { notes: 'rest, ibuprofen' }, as(doctor));
    await h.settle();
    expect(await view(id)).toMatchObject({ status: 'completed', notes: 'rest, ibuprofen' });
    expect(await view(id, { id: doctor.id, admin: false })).toMatchObject({ notes: 'rest, ibuprofen', reason: 'back pain' });
    expect(await view(id, { id: 'admin-1', admin: true })).toMatchObject({ status: 'completed', notes: null, reason: null });
    expect(await view(id, { id: otherDoctor.id, admin: false })).toBeUndefined();
    h.clock.advance(-4 * 86_400_000);
  });

  it('given AppointmentCancelled and AppointmentMarkedNoShow, then cancelled (late or not) and noShow', async () => {
    const a = await bookAppointment(h.side, { doctorId: otherDoctor.id, start: '2030-01-15T09:00:00Z', reason: 'flu' }, as(patient));
    await cancelAppointment(h.side, a.id, { reason: 'better' }, as(patient));
    const b = await bookAppointment(h.side, { doctorId: otherDoctor.id, start: '2030-01-16T09:00:00Z', reason: 'flu again' }, as(patient));
    h.clock.advance(6 * 86_400_000 + 3_600_000);
    await markNoShow(h.side, b.id, as(otherDoctor));
    h.clock.advance(-(6 * 86_400_000 + 3_600_000));
    await h.settle();
    expect(await view(a.id)).toMatchObject({ status: 'cancelled', cancelledBy: 'patient', lateCancellation: false, cancellationReason: 'better' });
    expect(await view(a.id, { id: otherDoctor.id, admin: false })).toMatchObject({ cancellationReason: 'better' });
    expect(await view(a.id, { id: 'admin-1', admin: true })).toMatchObject({ status: 'cancelled', cancellationReason: null });
    expect(await view(b.id)).toMatchObject({ status: 'noShow', cancellationReason: null });
  });

  it('given a schedule change that acknowledged an appointment, then the appointment shows cancelled by the doctor, saying why', async () => {
    const someone = { id: 'patient-4', roles: ['PATIENT' as const] };
    const { id } = await bookAppointment(h.side, { doctorId: doctor.id, start: '2030-01-21T09:00:00Z', reason: 'follow-up' }, as(someone));
    await setSchedule(h.side, doctor.id, { ...everyMorning, daysOff: ['2030-01-21'], acknowledgedAffected: [id] }, as(doctor));
    await h.settle();
    expect(await view(id, { id: someone.id, admin: false })).toMatchObject({
      status: 'cancelled',
      cancelledBy: 'doctor',
      cancellationReason: "The doctor's schedule changed: 2030-01-21 is a day off",
    });
  });

  it('pages a patient\'s and a doctor\'s appointments most recently made first, made at the same instant by id', async () => {
    const mine = await appointmentsOf(h.db, { userId: patient.id, asPatient: true, asDoctor: false }, { limit: 100 });
    expect(mine.items.map((a) => a.start).sort()).toEqual(['2030-01-14T10:00:00.000Z', '2030-01-15T09:00:00.000Z', '2030-01-16T09:00:00.000Z']);
    expect(mine.items).toEqual(madeNewestFirst(mine.items));
    const first = await appointmentsOf(h.db, { userId: patient.id, asPatient: true, asDoctor: false }, { limit: 2 });
    const rest = await appointmentsOf(h.db, { userId: patient.id, asPatient: true, asDoctor: false }, { limit: 2, after: first.next ?? undefined });
    expect([...first.items, ...rest.items]).toEqual(mine.items);
    const doctors = await appointmentsOf(h.db, { userId: otherDoctor.id, asPatient: false, asDoctor: true }, { limit: 100 });
    expect(doctors.items.map((a) => a.reason).sort()).toEqual(['flu', 'flu again']);
    expect(doctors.items).toEqual(madeNewestFirst(doctors.items));
    expect((await appointmentsOf(h.db, { userId: otherDoctor.id, asPatient: true, asDoctor: false }, { limit: 100 })).items).toEqual([]);
  });

  it('given RescheduleGivenUp, then only the version moves on: the one a client sends back as If-Match', async () => {
    const someone = { id: 'patient-3', roles: ['PATIENT' as const] };
    const { id, streamId, version } = await bookAppointment(h.side, { doctorId: doctor.id, start: '2030-01-17T09:00:00Z', reason: 'rash' }, as(someone));
    await h.settle();
    const before = await view(id, { id: someone.id, admin: false });
    const giveUp = { type: 'GiveUpReschedule' as const, data: { appointmentId: id, to: '2030-01-17T10:00:00Z', now: h.clock.now().toISOString() } };
    await h.side.handlers.appointment.handle(streamId, giveUp, { ...as({ id: 'system:hold-expiry', roles: [] }), expectedVersion: version });
    await h.settle();
    expect(await view(id, { id: someone.id, admin: false })).toEqual({ ...before, version: version + 1 });
  });

  it('a replayed batch changes nothing', async () => {
    const before = await h.rows('appointments', 'appointments');
    await h.replay(appointmentsProjection);
    expect(await h.rows('appointments', 'appointments')).toEqual(before);
  });
});
