import { beforeEach, describe, expect, it } from 'vitest';
import type { CommandSide } from '../../src/application/command-handlers.js';
import {
  bookAppointment,
  cancelAppointment,
  completeAppointment,
  rescheduleAppointment,
} from '../../src/application/appointments/appointment.use-cases.js';
import { HoldExpiryProcess } from '../../src/application/process-managers/hold-expiry.process.js';
import { setSchedule } from '../../src/application/schedules/schedule.use-cases.js';
import { MemoryEventStore } from '../../src/infrastructure/memory-event-store/memory-event-store.js';
import { as, createTestSide, doctor, eventTypes, everyMorning, fakeClock, otherDoctor, patient } from '../support/command-side.js';

const nine = '2030-02-04T09:00:00.000Z';
const nineThirty = '2030-02-04T09:30:00.000Z';

describe('appointment use cases', () => {
  let store: MemoryEventStore;
  let clock: ReturnType<typeof fakeClock>;
  let side: CommandSide;

  beforeEach(async () => {
    store = new MemoryEventStore();
    clock = fakeClock('2030-01-10T10:00:00Z');
    side = createTestSide(store, clock);
    await setSchedule(side, doctor.id, everyMorning, as(doctor));
    await setSchedule(side, otherDoctor.id, everyMorning, as(otherDoctor));
  });

  it('takes the slot, the patient time and records the appointment, ending at the slot length', async () => {
    const booked = await bookAppointment(side, { doctorId: doctor.id, start: nine, reason: 'check-up' }, as(patient));

    expect(await eventTypes(store, `doctorSchedule-${doctor.id}`)).toEqual(['ScheduleSet', 'SlotBooked']);
    expect(await eventTypes(store, `patientAgenda-${patient.id}`)).toEqual(['TimeReserved']);
    const { state } = await side.handlers.appointment.read(booked.streamId);
    expect(state).toMatchObject({ status: 'scheduled', start: nine, end: nineThirty, doctorId: doctor.id });
  });

  it('gives the slot back when the patient is busy with another doctor at that time', async () => {
    await bookAppointment(side, { doctorId: doctor.id, start: nine, reason: 'check-up' }, as(patient));
    await expect(bookAppointment(side, { doctorId: otherDoctor.id, start: nine, reason: 'second opinion' }, as(patient))).rejects.toMatchObject({
      code: 'patient-overlap',
    });
    expect(await eventTypes(store, `doctorSchedule-${otherDoctor.id}`)).toEqual(['ScheduleSet', 'SlotBooked', 'SlotReleased']);
  });

  it('refuses a doctor without a schedule as not found', async () => {
    await expect(bookAppointment(side, { doctorId: 'nobody', start: nine, reason: 'x' }, as(patient))).rejects.toMatchObject({ code: 'not-found' });
  });

  it('only lets the doctor (or an admin) set a schedule', async () => {
    await expect(setSchedule(side, doctor.id, everyMorning, as(otherDoctor))).rejects.toMatchObject({ code: 'forbidden' });
  });

  it('rescheduling moves slot and patient time together', async () => {
    const booked = await bookAppointment(side, { doctorId: doctor.id, start: nine, reason: 'check-up' }, as(patient));
    await rescheduleAppointment(side, booked.id, { start: nineThirty }, as(patient));

    expect(await eventTypes(store, `doctorSchedule-${doctor.id}`)).toEqual(['ScheduleSet', 'SlotBooked', 'SlotMoved']);
    expect(await eventTypes(store, `patientAgenda-${patient.id}`)).toEqual(['TimeReserved', 'TimeMoved']);
    // The old slot is free again.
    await expect(bookAppointment(side, { doctorId: doctor.id, start: nine, reason: 'x' }, as({ id: 'patient-2', roles: ['PATIENT'] }))).resolves.toBeDefined();
  });

  it('cancelling frees the slot and the patient time', async () => {
    const booked = await bookAppointment(side, { doctorId: doctor.id, start: nine, reason: 'check-up' }, as(patient));
    await cancelAppointment(side, booked.id, { reason: 'feeling better' }, as(patient));

    expect(await eventTypes(store, `doctorSchedule-${doctor.id}`)).toEqual(['ScheduleSet', 'SlotBooked', 'SlotReleased']);
    expect(await eventTypes(store, `patientAgenda-${patient.id}`)).toEqual(['TimeReserved', 'TimeReleased']);
  });

  it("hides a patient's appointment from another doctor", async () => {
    const booked = await bookAppointment(side, { doctorId: doctor.id, start: nine, reason: 'check-up' }, as(patient));
    await expect(completeAppointment(side, booked.id, { notes: 'fine' }, as(otherDoctor))).rejects.toMatchObject({ code: 'not-found' });
  });

  it('frees a slot and patient time left behind by a request that died before the appointment', async () => {
    await side.handlers.doctorSchedule.handle(
      `doctorSchedule-${doctor.id}`,
      { type: 'BookSlot', data: { appointmentId: 'lost', patientId: patient.id, start: nine, now: clock.now().toISOString() } },
      as(patient),
    );
    await side.handlers.patientAgenda.handle(
      `patientAgenda-${patient.id}`,
      { type: 'ReserveTime', data: { patientId: patient.id, appointmentId: 'lost', start: nine, end: nineThirty } },
      as(patient),
    );
    const sweep = new HoldExpiryProcess({ eventStore: store, side, orphanSlotGraceMs: 60_000 });
    for await (const event of store.readAll()) sweep.observe(event);
    expect(sweep.pending.slots).toBe(1);
    clock.advance(59_000);
    expect(await sweep.sweep()).toBe(0);
    clock.advance(2_000);
    await sweep.sweep();

    expect(await eventTypes(store, `doctorSchedule-${doctor.id}`)).toEqual(['ScheduleSet', 'SlotBooked', 'SlotReleased']);
    expect(await eventTypes(store, `patientAgenda-${patient.id}`)).toEqual(['TimeReserved', 'TimeReleased']);
  });
});
