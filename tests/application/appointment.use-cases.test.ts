import { beforeEach, describe, expect, it, vi } from 'vitest';
import { comparePositions } from '../../src/application/ports/position.js';
import type { CommandSide } from '../../src/application/command-handlers.js';
import {
  bookAppointment,
  cancelAppointment,
  completeAppointment,
  markNoShow,
  rescheduleAppointment,
} from '../../src/application/appointments/appointment.use-cases.js';
import { HoldExpiryProcess } from '../../src/application/process-managers/hold-expiry.process.js';
import { setSchedule } from '../../src/application/schedules/schedule.use-cases.js';
import { VersionMismatchError } from '../../src/application/command-handling/errors.js';
import { deterministicUuid } from '../../src/application/ids.js';
import { bookings, slotOf } from '../../src/domain/doctor-schedule/doctor-schedule.decider.js';
import { registerUser } from '../projections/support/scenarios.js';
import { memoryVault } from '../support/personal-data.js';
import { reservationOf } from '../../src/domain/patient-agenda/patient-agenda.decider.js';
import { admin, as, createTestSide, doctor, eventTypes, everyMorning, fakeClock, InterruptibleStore, otherDoctor, patient, streamEvents, whereIsAppointment } from '../support/command-side.js';

const nine = '2030-02-04T09:00:00.000Z';
const nineThirty = '2030-02-04T09:30:00.000Z';
const ten = '2030-02-04T10:00:00.000Z';
const otherPatient = { id: 'patient-2', roles: ['PATIENT' as const] };

describe('appointment use cases', () => {
  let store: InterruptibleStore;
  let clock: ReturnType<typeof fakeClock>;
  let side: CommandSide;
  /**
   * Another process on the same events. One process runs commands on a stream one at a time, so
   * a command that lands while one of `side`'s appends is held back comes from another process.
   */
  let otherProcess: CommandSide;

  beforeEach(async () => {
    store = new InterruptibleStore();
    clock = fakeClock('2030-01-10T10:00:00Z');
    // One key store, as processes on one database share.
    const vault = memoryVault();
    side = createTestSide(store, clock, 15, vault);
    otherProcess = createTestSide(store, clock, 15, vault);
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

  it('records the appointment and the patient time as long as the slot the schedule booked, when the doctor changed the slot length meanwhile', async () => {
    const schedule = `doctorSchedule-${doctor.id}`;
    let release = () => {};
    const reached = store.pause((streamId) => streamId === schedule, new Promise<void>((resolve) => (release = resolve)));
    const booking = bookAppointment(side, { doctorId: doctor.id, start: nine, reason: 'check-up' }, as(patient));
    await reached;
    await setSchedule(otherProcess, doctor.id, { ...everyMorning, slotMinutes: 60 }, as(doctor));
    release();
    const booked = await booking;

    const lasts = { start: nine, end: ten };
    expect(slotOf((await side.handlers.doctorSchedule.read(schedule)).state, booked.id)).toMatchObject(lasts);
    expect((await side.handlers.appointment.read(booked.streamId)).state).toMatchObject(lasts);
    expect(reservationOf((await side.handlers.patientAgenda.read(`patientAgenda-${patient.id}`)).state, booked.id)).toMatchObject(lasts);
  });

  it("given the patient is busy with another doctor then, refuses the booking before taking the slot: nothing is appended to the doctor's schedule", async () => {
    await bookAppointment(side, { doctorId: doctor.id, start: ten, reason: 'check-up' }, as(patient));
    await setSchedule(side, otherDoctor.id, { ...everyMorning, slotMinutes: 15 }, as(otherDoctor));
    const schedule = `doctorSchedule-${otherDoctor.id}`;
    const before = await eventTypes(store, schedule);

    const quarterPastTen = '2030-02-04T10:15:00.000Z';
    const refused = bookAppointment(side, { doctorId: otherDoctor.id, start: quarterPastTen, reason: 'second opinion' }, as(patient));

    await expect(refused).rejects.toMatchObject({ code: 'patient-overlap' });
    expect(await eventTypes(store, schedule)).toEqual(before);
    expect(await eventTypes(store, `patientAgenda-${patient.id}`)).toEqual(['TimeReserved']);
  });

  it('gives the slot back when the patient became busy with another doctor at that time after the booking read their agenda', async () => {
    const schedule = `doctorSchedule-${otherDoctor.id}`;
    let release = () => {};
    const reached = store.pause((streamId) => streamId === schedule, new Promise<void>((resolve) => (release = resolve)));
    const second = bookAppointment(side, { doctorId: otherDoctor.id, start: nine, reason: 'second opinion' }, as(patient));
    await reached;
    await bookAppointment(otherProcess, { doctorId: doctor.id, start: nine, reason: 'check-up' }, as(patient));
    release();

    await expect(second).rejects.toMatchObject({ code: 'patient-overlap' });
    expect(await eventTypes(store, schedule)).toEqual(['ScheduleSet', 'SlotBooked', 'SlotReleased']);
  });

  it('refuses a doctor without a schedule as not found', async () => {
    await expect(bookAppointment(side, { doctorId: 'nobody', start: nine, reason: 'x' }, as(patient))).rejects.toMatchObject({ code: 'not-found' });
  });

  it('only lets the doctor (or an admin) set a schedule', async () => {
    await expect(setSchedule(side, doctor.id, everyMorning, as(otherDoctor))).rejects.toMatchObject({ code: 'forbidden' });
  });

  it("lets an admin publish a schedule only for a registered doctor: anyone else's id would become bookable as one", async () => {
    const newDoctor = { id: 'doctor-new', roles: ['DOCTOR' as const] };
    await expect(setSchedule(side, newDoctor.id, everyMorning, as(admin))).rejects.toMatchObject({ code: 'unknown-doctor' });
    await registerUser(side, patient, 'Pat');
    await expect(setSchedule(side, patient.id, everyMorning, as(admin))).rejects.toMatchObject({ code: 'unknown-doctor' });
    expect(await eventTypes(store, `doctorSchedule-${patient.id}`)).toEqual([]);
    await registerUser(side, newDoctor, 'Dr New');
    await expect(setSchedule(side, newDoctor.id, everyMorning, as(admin))).resolves.toMatchObject({ id: newDoctor.id });
  });

  it("does not let an admin publish a schedule under their own id unless they are a doctor too: it would make the admin bookable as one", async () => {
    await expect(setSchedule(side, admin.id, everyMorning, as(admin))).rejects.toMatchObject({ code: 'unknown-doctor' });
    expect(await eventTypes(store, `doctorSchedule-${admin.id}`)).toEqual([]);

    const adminDoctor = { id: 'admin-doctor', roles: ['ADMIN' as const, 'DOCTOR' as const] };
    await expect(setSchedule(side, adminDoctor.id, everyMorning, as(adminDoctor))).resolves.toMatchObject({ id: adminDoctor.id });
  });

  it('refuses a patient who is also a doctor booking their own slot (own-schedule), and holds nothing for it', async () => {
    const both = { id: 'patient-and-doctor', roles: ['PATIENT' as const, 'DOCTOR' as const] };
    await setSchedule(side, both.id, everyMorning, as(both));

    await expect(bookAppointment(side, { doctorId: both.id, start: nine, reason: 'check-up' }, as(both))).rejects.toMatchObject({ code: 'own-schedule' });

    expect(await eventTypes(store, `doctorSchedule-${both.id}`)).toEqual(['ScheduleSet']);
    expect(await eventTypes(store, `patientAgenda-${both.id}`)).toEqual([]);
  });

  it('rescheduling moves slot and patient time together', async () => {
    const booked = await bookAppointment(side, { doctorId: doctor.id, start: nine, reason: 'check-up' }, as(patient));
    await rescheduleAppointment(side, booked.id, { start: nineThirty }, as(patient));

    expect(await eventTypes(store, `doctorSchedule-${doctor.id}`)).toEqual(['ScheduleSet', 'SlotBooked', 'SlotMoveHeld', 'SlotMoveCompleted']);
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
    expect(await sweep.sweep()).toEqual({ progressed: 0, failed: 0 });
    clock.advance(2_000);
    await sweep.sweep();

    expect(await eventTypes(store, `doctorSchedule-${doctor.id}`)).toEqual(['ScheduleSet', 'SlotBooked', 'SlotReleased']);
    expect(await eventTypes(store, `patientAgenda-${patient.id}`)).toEqual(['TimeReserved', 'TimeReleased']);
  });

  /** Where the appointment, its doctor's slot and its patient's time each say it is. */
  const whereIs = (appointmentId: string) => whereIsAppointment(side, appointmentId, { doctorId: doctor.id, patientId: patient.id });

  describe('rescheduling', () => {
    it('refused for a stale If-Match, moves nothing', async () => {
      const booked = await bookAppointment(side, { doctorId: doctor.id, start: nine, reason: 'check-up' }, as(patient));

      await expect(rescheduleAppointment(side, booked.id, { start: nineThirty }, { ...as(patient), expectedVersion: booked.version + 1 })).rejects.toBeInstanceOf(
        VersionMismatchError,
      );
      expect(await whereIs(booked.id)).toEqual({ appointment: nine, slot: nine, time: nine });
      expect(await eventTypes(store, `doctorSchedule-${doctor.id}`)).toEqual(['ScheduleSet', 'SlotBooked']);
    });

    it('twice at once, to different times: the later one lands last, and slot, time and appointment agree', async () => {
      const booked = await bookAppointment(side, { doctorId: doctor.id, start: nine, reason: 'check-up' }, as(patient));
      let resume = () => {};
      // The first reschedule has moved the slot and the time, and waits before its appointment append.
      store.pause((streamId) => streamId === booked.streamId, new Promise<void>((resolve) => (resume = resolve)));
      const first = rescheduleAppointment(side, booked.id, { start: nineThirty }, as(patient));
      await vi.waitFor(async () => expect((await whereIs(booked.id)).time).toBe(nineThirty));
      const second = rescheduleAppointment(otherProcess, booked.id, { start: ten }, as(doctor));
      await new Promise((resolve) => setTimeout(resolve, 30));
      resume();
      await Promise.all([first, second]);

      expect(await whereIs(booked.id)).toEqual({ appointment: ten, slot: ten, time: ten });
      // The times the first left behind are free for others.
      await expect(bookAppointment(side, { doctorId: doctor.id, start: nineThirty, reason: 'x' }, as(otherPatient))).resolves.toBeDefined();
    });

    it('refused because the patient is busy then, moves nothing: the old slot is never free for someone else', async () => {
      const booked = await bookAppointment(side, { doctorId: doctor.id, start: nine, reason: 'check-up' }, as(patient));
      await bookAppointment(side, { doctorId: otherDoctor.id, start: nineThirty, reason: 'second opinion' }, as(patient));

      await expect(rescheduleAppointment(side, booked.id, { start: nineThirty }, as(patient))).rejects.toMatchObject({ code: 'patient-overlap' });

      expect(await eventTypes(store, `doctorSchedule-${doctor.id}`)).toEqual(['ScheduleSet', 'SlotBooked']);
      expect(await whereIs(booked.id)).toEqual({ appointment: nine, slot: nine, time: nine });
    });

    it("refused because the patient is busy then, tells a doctor nothing of the patient's appointment with another doctor", async () => {
      const booked = await bookAppointment(side, { doctorId: doctor.id, start: nine, reason: 'check-up' }, as(patient));
      const elsewhere = await bookAppointment(side, { doctorId: otherDoctor.id, start: nineThirty, reason: 'second opinion' }, as(patient));

      const refusal: unknown = await rescheduleAppointment(side, booked.id, { start: nineThirty }, as(doctor)).catch((error: unknown) => error);

      expect(refusal).toMatchObject({ code: 'patient-overlap' });
      expect(String(refusal)).not.toContain(elsewhere.id);
      expect(String(refusal)).not.toContain('09:30');
    });

    it("given a reschedule to the next day waits to move the patient's time, when another patient books the old time with the doctor and the patient books the new time with another doctor, then the doctor never holds two appointments at one time", async () => {
      const booked = await bookAppointment(side, { doctorId: doctor.id, start: nine, reason: 'check-up' }, as(patient));
      const nextDay = '2030-02-05T09:00:00.000Z';
      let resume = () => {};
      const paused = store.pause((streamId) => streamId === `patientAgenda-${patient.id}`, new Promise<void>((resolve) => (resume = resolve)));
      const rescheduling = rescheduleAppointment(side, booked.id, { start: nextDay }, as(patient));
      await paused;
      const other = await bookAppointment(otherProcess, { doctorId: doctor.id, start: nine, reason: 'x' }, as(otherPatient)).catch(() => undefined);
      await bookAppointment(otherProcess, { doctorId: otherDoctor.id, start: nextDay, reason: 'second opinion' }, as(patient));
      resume();

      await expect(rescheduling).rejects.toMatchObject({ code: 'patient-overlap' });
      const rescheduled = await whereIs(booked.id);
      expect(rescheduled.slot).toBe(rescheduled.appointment);
      const otherAt = other && (await whereIsAppointment(side, other.id, { doctorId: doctor.id, patientId: otherPatient.id }));
      expect(otherAt?.appointment).not.toBe(rescheduled.appointment);
    });

    it("retried after another patient took the new slot while the patient's time moved, moves the time again though the first try moved it back", async () => {
      const booked = await bookAppointment(side, { doctorId: doctor.id, start: nine, reason: 'check-up' }, as(patient));
      const retried = as(patient, 'move-to-nine-thirty');
      let resume = () => {};
      // The reschedule has moved the patient's time; its HoldSlotForMove waits while another patient books the doctor at the new time.
      const paused = store.pause((streamId) => streamId === `doctorSchedule-${doctor.id}`, new Promise<void>((resolve) => (resume = resolve)));
      const first = rescheduleAppointment(side, booked.id, { start: nineThirty }, retried);
      await paused;
      const taken = await bookAppointment(otherProcess, { doctorId: doctor.id, start: nineThirty, reason: 'x' }, as(otherPatient));
      resume();
      await expect(first).rejects.toMatchObject({ code: 'slot-taken' });
      expect(await eventTypes(store, `patientAgenda-${patient.id}`)).toEqual(['TimeReserved', 'TimeMoved', 'TimeMoved']);
      expect(await whereIs(booked.id)).toEqual({ appointment: nine, slot: nine, time: nine });
      await cancelAppointment(side, taken.id, { reason: 'not needed' }, as(otherPatient));

      await rescheduleAppointment(side, booked.id, { start: nineThirty }, retried);

      expect(await whereIs(booked.id)).toEqual({ appointment: nineThirty, slot: nineThirty, time: nineThirty });
    });

    it('refused after the slot moved, as the slot had grown longer than the patient is free, puts the slot back exactly where the appointment is, though the schedule change no longer offers that slot', async () => {
      const booked = await bookAppointment(side, { doctorId: doctor.id, start: nineThirty, reason: 'check-up' }, as(patient));
      const half = '2030-02-04T10:30:00.000Z';
      let resume = () => {};
      // The reschedule has moved the patient's time to 10:00–10:30; its HoldSlotForMove waits while the
      // doctor makes slots an hour long (the appointment at 09:30 acknowledged, though not cancelled
      // yet: that request died after setting the schedule) and the patient books another doctor at 10:30.
      const paused = store.pause((streamId) => streamId === `doctorSchedule-${doctor.id}`, new Promise<void>((resolve) => (resume = resolve)));
      const refused = rescheduleAppointment(side, booked.id, { start: ten }, as(patient));
      await paused;
      store.interrupt((streamId) => streamId === booked.streamId);
      await expect(setSchedule(otherProcess, doctor.id, { ...everyMorning, slotMinutes: 60, acknowledgedAffected: [booked.id] }, as(doctor))).rejects.toThrow('died');
      const elsewhere = await bookAppointment(otherProcess, { doctorId: otherDoctor.id, start: half, reason: 'second opinion' }, as(patient));
      resume();
      await expect(refused).rejects.toMatchObject({ code: 'patient-overlap' });

      expect(await whereIs(booked.id)).toEqual({ appointment: nineThirty, slot: nineThirty, time: nineThirty });
      const schedule = (await side.handlers.doctorSchedule.read(`doctorSchedule-${doctor.id}`)).state;
      expect(slotOf(schedule, booked.id)).toEqual({ appointmentId: booked.id, start: nineThirty, end: ten });
      const agenda = (await side.handlers.patientAgenda.read(`patientAgenda-${patient.id}`)).state;
      expect(reservationOf(agenda, booked.id)).toEqual({ start: nineThirty, end: ten });
      // 09:00–10:00 overlaps the appointment: nobody else may book it.
      await expect(bookAppointment(side, { doctorId: doctor.id, start: nine, reason: 'x' }, as(otherPatient))).rejects.toMatchObject({ code: 'slot-taken' });
      // And the appointment can still be moved once the patient is free.
      await cancelAppointment(side, elsewhere.id, { reason: 'one is enough' }, as(patient));
      await rescheduleAppointment(side, booked.id, { start: ten }, as(patient));
      expect(await whereIs(booked.id)).toEqual({ appointment: ten, slot: ten, time: ten });
    });

    it('refused after the slot was held, when someone tries to book the old slot meanwhile, keeps it the appointment\'s: the other booking is refused, and there is no double booking to report', async () => {
      const booked = await bookAppointment(side, { doctorId: doctor.id, start: nineThirty, reason: 'check-up' }, as(patient));
      const reported: string[] = [];
      const reporting: CommandSide = { ...side, onError: (_error, what) => reported.push(what) };
      let resumeSlot = () => {};
      let resumeRestore = () => {};
      // As above, the slot grows to an hour while it waits to move (the request that acknowledged
      // the appointment dying before cancelling it), and the patient books 10:30 elsewhere.
      const slotHeld = store.pause((streamId) => streamId === `doctorSchedule-${doctor.id}`, new Promise<void>((resolve) => (resumeSlot = resolve)));
      const refused = rescheduleAppointment(reporting, booked.id, { start: ten }, as(patient));
      await slotHeld;
      store.interrupt((streamId) => streamId === booked.streamId);
      await expect(setSchedule(otherProcess, doctor.id, { ...everyMorning, slotMinutes: 60, acknowledgedAffected: [booked.id] }, as(doctor))).rejects.toThrow('died');
      await bookAppointment(otherProcess, { doctorId: otherDoctor.id, start: '2030-02-04T10:30:00.000Z', reason: 'second opinion' }, as(patient));
      // The hold, decided again on the new schedule, goes through, for 10:00–11:00, keeping 09:30;
      // the patient's time cannot follow it there, and the hold's drop waits while another patient
      // tries 09:00–10:00. (Before holds, the slot moved there and 09:30 was free for them.)
      let appends = 0;
      const dropHeld = store.pause((streamId) => streamId === `doctorSchedule-${doctor.id}` && ++appends === 2, new Promise<void>((resolve) => (resumeRestore = resolve)));
      resumeSlot();
      await dropHeld;
      await expect(bookAppointment(otherProcess, { doctorId: doctor.id, start: nine, reason: 'x' }, as(otherPatient))).rejects.toMatchObject({ code: 'slot-taken' });
      resumeRestore();

      await expect(refused).rejects.toMatchObject({ code: 'patient-overlap' });
      expect(await whereIs(booked.id)).toEqual({ appointment: nineThirty, slot: nineThirty, time: nineThirty });
      expect(reported).toEqual([]);
    });

    it("refused at the appointment's own append after the slot step (another change of it landed: a stale If-Match), while another patient books the old slot in between, never leaves two appointments at the doctor's time", async () => {
      const booked = await bookAppointment(side, { doctorId: doctor.id, start: nine, reason: 'check-up' }, as(patient));
      const reported: string[] = [];
      let otherBooking: Promise<unknown> = Promise.resolve();
      // The reschedule's own append: meanwhile another patient books nine with the doctor, and
      // another change of the appointment lands, which the request's If-Match then finds.
      const appointments = side.handlers.appointment;
      const refusing: CommandSide = {
        ...side,
        onError: (_error, what) => reported.push(what),
        handlers: {
          ...side.handlers,
          appointment: {
            ...appointments,
            handle: async (streamId, command, options) => {
              if (typeof command === 'function' || command.type !== 'RescheduleAppointment') return appointments.handle(streamId, command, options);
              otherBooking = bookAppointment(otherProcess, { doctorId: doctor.id, start: nine, reason: 'x' }, as(otherPatient)).then(
                (other) => other,
                (error: unknown) => error,
              );
              await otherBooking;
              throw new VersionMismatchError(streamId, options.expectedVersion ?? booked.version, booked.version + 1);
            },
          },
        },
      };

      await expect(rescheduleAppointment(refusing, booked.id, { start: ten }, { ...as(patient), expectedVersion: booked.version })).rejects.toBeInstanceOf(
        VersionMismatchError,
      );

      expect(await otherBooking).toMatchObject({ code: 'slot-taken' });
      expect(await whereIs(booked.id)).toEqual({ appointment: nine, slot: nine, time: nine });
      const { state } = await side.handlers.doctorSchedule.read(`doctorSchedule-${doctor.id}`);
      const taken = state.status === 'unset' ? [] : bookings(state.booked);
      expect(taken).toEqual([{ appointmentId: booked.id, start: nine, end: nineThirty }]);
      expect(reported).toEqual([]);
      // Ten, where the refused reschedule would have gone, is free again.
      await expect(bookAppointment(side, { doctorId: doctor.id, start: ten, reason: 'x' }, as(otherPatient))).resolves.toBeDefined();
    });

    it("retried with the same key after dying between the appointment's move and the slot's, completes the move before answering: the old slot is free at once, and the appointment can move again", async () => {
      const booked = await bookAppointment(side, { doctorId: doctor.id, start: nine, reason: 'check-up' }, as(patient));
      const retried = as(patient, 'died-before-the-slot-followed');
      let appends = 0;
      store.interrupt((streamId) => streamId === `doctorSchedule-${doctor.id}` && ++appends === 2);
      await expect(rescheduleAppointment(side, booked.id, { start: nineThirty }, retried)).rejects.toThrow('died');
      expect(await whereIs(booked.id)).toEqual({ appointment: nineThirty, slot: nine, time: nineThirty });

      const answer = await rescheduleAppointment(side, booked.id, { start: nineThirty }, retried);

      expect(answer.version).toBe(booked.version + 1);
      expect(await whereIs(booked.id)).toEqual({ appointment: nineThirty, slot: nineThirty, time: nineThirty });
      await expect(bookAppointment(side, { doctorId: doctor.id, start: nine, reason: 'x' }, as(otherPatient))).resolves.toBeDefined();
      await rescheduleAppointment(side, booked.id, { start: ten }, as(patient));
      expect(await whereIs(booked.id)).toEqual({ appointment: ten, slot: ten, time: ten });
    });

    it('without If-Match, retries from a fresh read when another change of the appointment lands after its read: it moves on from where that one put it', async () => {
      const booked = await bookAppointment(side, { doctorId: doctor.id, start: nine, reason: 'check-up' }, as(patient));
      let resume = () => {};
      // The patient's reschedule to ten has read the appointment and waits to move the patient's time.
      const paused = store.pause((streamId) => streamId === `patientAgenda-${patient.id}`, new Promise<void>((resolve) => (resume = resolve)));
      const byPatient = rescheduleAppointment(side, booked.id, { start: ten }, as(patient));
      await paused;
      // Meanwhile the appointment changes without moving (a fact only for its history), as the process's giving up does.
      await otherProcess.handlers.appointment.handle(booked.streamId, { type: 'GiveUpReschedule', data: { appointmentId: booked.id, to: nineThirty, now: clock.now().toISOString() } }, as(admin));
      resume();
      await byPatient;

      expect(await whereIs(booked.id)).toEqual({ appointment: ten, slot: ten, time: ten });
      expect(await eventTypes(store, booked.streamId)).toEqual(['AppointmentScheduled', 'RescheduleGivenUp', 'AppointmentRescheduled']);
    });

    describe('by the patient with If-Match and by the doctor, to the same time at once', () => {
      /** Holds the next append to the appointment's stream back until the returned function is called. */
      function holdAppointmentAppend(streamId: string): { reached: Promise<void>; resume: () => void } {
        let resume = () => {};
        const reached = store.pause((each) => each === streamId, new Promise<void>((resolve) => (resume = resolve)));
        return { reached, resume };
      }

      it("given the patient's request moved the slot and the time, when the doctor's records the appointment first, then the patient's 412 leaves them with the appointment, and nobody else can book that time", async () => {
        const booked = await bookAppointment(side, { doctorId: doctor.id, start: nine, reason: 'check-up' }, as(patient));
        const patients = holdAppointmentAppend(booked.streamId);
        const byPatient = rescheduleAppointment(side, booked.id, { start: ten }, { ...as(patient), expectedVersion: booked.version });
        await patients.reached;

        await rescheduleAppointment(otherProcess, booked.id, { start: ten }, as(doctor));
        patients.resume();

        await expect(byPatient).rejects.toBeInstanceOf(VersionMismatchError);
        expect(await whereIs(booked.id)).toEqual({ appointment: ten, slot: ten, time: ten });
        await expect(bookAppointment(side, { doctorId: doctor.id, start: ten, reason: 'x' }, as(otherPatient))).rejects.toMatchObject({ code: 'slot-taken' });
      });

      it("given the doctor's request moved the slot and the time and the patient's found them moved, when the doctor's records the appointment first, then the patient's 412 moves nothing back", async () => {
        const booked = await bookAppointment(side, { doctorId: doctor.id, start: nine, reason: 'check-up' }, as(patient));
        const doctors = holdAppointmentAppend(booked.streamId);
        const byDoctor = rescheduleAppointment(side, booked.id, { start: ten }, as(doctor));
        await doctors.reached;
        const patients = holdAppointmentAppend(booked.streamId);
        const byPatient = rescheduleAppointment(otherProcess, booked.id, { start: ten }, { ...as(patient), expectedVersion: booked.version });
        await patients.reached;

        doctors.resume();
        await byDoctor;
        patients.resume();

        await expect(byPatient).rejects.toBeInstanceOf(VersionMismatchError);
        expect(await whereIs(booked.id)).toEqual({ appointment: ten, slot: ten, time: ten });
        expect(await eventTypes(store, `doctorSchedule-${doctor.id}`)).toEqual(['ScheduleSet', 'SlotBooked', 'SlotMoveHeld', 'SlotMoveCompleted']);
        await expect(bookAppointment(side, { doctorId: doctor.id, start: ten, reason: 'x' }, as(otherPatient))).rejects.toMatchObject({ code: 'slot-taken' });
      });

      it("given the patient's request was refused after moving the time and found the appointment still at nine, when the doctor's records it at ten before the time goes back, then the time follows the appointment to ten", async () => {
        const booked = await bookAppointment(side, { doctorId: doctor.id, start: nine, reason: 'check-up' }, as(patient));
        let resumeSlot = () => {};
        // The patient's request has moved the time; its HoldSlotForMove waits while another patient books the doctor at ten.
        const slotHeld = store.pause((each) => each === `doctorSchedule-${doctor.id}`, new Promise<void>((resolve) => (resumeSlot = resolve)));
        const byPatient = rescheduleAppointment(side, booked.id, { start: ten }, as(patient));
        await slotHeld;
        const taken = await bookAppointment(otherProcess, { doctorId: doctor.id, start: ten, reason: 'x' }, as(otherPatient));
        let resumeUndo = () => {};
        // Refused, it moves the time back, and that append waits.
        const undoHeld = store.pause((each) => each === `patientAgenda-${patient.id}`, new Promise<void>((resolve) => (resumeUndo = resolve)));
        resumeSlot();
        await undoHeld;

        // Meanwhile ten is free again, and the doctor's reschedule there goes through.
        await cancelAppointment(otherProcess, taken.id, { reason: 'not needed' }, as(otherPatient));
        await rescheduleAppointment(otherProcess, booked.id, { start: ten }, as(doctor));
        resumeUndo();

        await expect(byPatient).rejects.toMatchObject({ code: 'slot-taken' });
        expect(await whereIs(booked.id)).toEqual({ appointment: ten, slot: ten, time: ten });
        await expect(bookAppointment(side, { doctorId: doctor.id, start: ten, reason: 'x' }, as(otherPatient))).rejects.toMatchObject({ code: 'slot-taken' });
        // Nine, where the appointment was, is free again.
        await expect(bookAppointment(side, { doctorId: doctor.id, start: nine, reason: 'x' }, as(otherPatient))).resolves.toBeDefined();
      });
    });
  });

  describe('booking retried after the first attempt died before the appointment', () => {
    const retried = as(patient, 'died-before-the-appointment');
    const appointmentId = deterministicUuid('appointment', retried.commandId);

    /**
     * The first attempt takes the slot (and the time, unless it dies before reserving it) and
     * dies; the orphan sweep gives the id up and frees what it held.
     */
    async function diedAndSwept(diedBefore: 'appointment-' | 'patientAgenda-' = 'appointment-'): Promise<void> {
      store.interrupt((streamId) => streamId.startsWith(diedBefore));
      await expect(bookAppointment(side, { doctorId: doctor.id, start: nine, reason: 'check-up' }, retried)).rejects.toThrow('died');
      const sweep = new HoldExpiryProcess({ eventStore: store, side, orphanSlotGraceMs: 60_000 });
      for await (const event of store.readAll()) sweep.observe(event);
      clock.advance(61_000);
      await sweep.sweep();
      expect(await whereIs(appointmentId)).toEqual({ appointment: undefined, slot: undefined, time: undefined });
    }

    it('is refused once the sweep gave the id up with its slot and time (appointment-abandoned), and takes nothing again', async () => {
      await diedAndSwept();

      await expect(bookAppointment(side, { doctorId: doctor.id, start: nine, reason: 'check-up' }, retried)).rejects.toMatchObject({ code: 'appointment-abandoned' });
      expect(await whereIs(appointmentId)).toEqual({ appointment: undefined, slot: undefined, time: undefined });
      // The slot is free for anyone, the same patient booking anew included.
      const anew = await bookAppointment(side, { doctorId: doctor.id, start: nine, reason: 'check-up' }, as(patient, 'booking anew'));
      expect(await whereIs(anew.id)).toEqual({ appointment: nine, slot: nine, time: nine });
    });

    it("is refused, and reserves no patient time, when the first attempt died before reserving it: nothing would give that time back", async () => {
      await diedAndSwept('patientAgenda-');

      await expect(bookAppointment(side, { doctorId: doctor.id, start: nine, reason: 'check-up' }, retried)).rejects.toMatchObject({ code: 'appointment-abandoned' });

      expect(await whereIs(appointmentId)).toEqual({ appointment: undefined, slot: undefined, time: undefined });
      expect(await eventTypes(store, `patientAgenda-${patient.id}`)).toEqual([]);
      // The patient's time at nine is theirs to book again, with this doctor or another.
      await expect(bookAppointment(side, { doctorId: otherDoctor.id, start: nine, reason: 'check-up' }, as(patient, 'booking anew'))).resolves.toBeDefined();
    });

    it("gives the slot back at once when the first attempt died holding it and the patient booked that time with another doctor since: the retry's refusal leaves nothing to the sweep", async () => {
      store.interrupt((streamId) => streamId.startsWith('patientAgenda-'));
      await expect(bookAppointment(side, { doctorId: doctor.id, start: nine, reason: 'check-up' }, retried)).rejects.toThrow('died');
      await bookAppointment(side, { doctorId: otherDoctor.id, start: nine, reason: 'second opinion' }, as(patient, 'booked elsewhere'));

      const retry = bookAppointment(side, { doctorId: doctor.id, start: nine, reason: 'check-up' }, retried);

      await expect(retry).rejects.toMatchObject({ code: 'patient-overlap' });
      expect(await eventTypes(store, `doctorSchedule-${doctor.id}`)).toEqual(['ScheduleSet', 'SlotBooked', 'SlotReleased']);
    });

    it('gives the patient time back when the sweep gave the id up while the retry was reserving it, and the appointment was then refused', async () => {
      store.interrupt((streamId) => streamId.startsWith('patientAgenda-'));
      await expect(bookAppointment(side, { doctorId: doctor.id, start: nine, reason: 'check-up' }, retried)).rejects.toThrow('died');
      const sweep = new HoldExpiryProcess({ eventStore: store, side: otherProcess, orphanSlotGraceMs: 60_000 });
      for await (const event of store.readAll()) sweep.observe(event);
      let resume = () => {};
      // The retry found the id still free and is about to reserve the time when the sweep comes.
      const reserving = store.pause((streamId) => streamId === `patientAgenda-${patient.id}`, new Promise<void>((resolve) => (resume = resolve)));
      const retry = bookAppointment(side, { doctorId: doctor.id, start: nine, reason: 'check-up' }, retried);
      await reserving;
      clock.advance(61_000);
      await sweep.sweep();
      resume();

      await expect(retry).rejects.toMatchObject({ code: 'appointment-abandoned' });
      expect(await whereIs(appointmentId)).toEqual({ appointment: undefined, slot: undefined, time: undefined });
      expect(await eventTypes(store, `patientAgenda-${patient.id}`)).toEqual(['TimeReserved', 'TimeReleased']);
      await expect(bookAppointment(side, { doctorId: otherDoctor.id, start: nine, reason: 'check-up' }, as(patient, 'booking anew'))).resolves.toBeDefined();
    });

    it('keeps the slot and time of an appointment the retry made before the sweep came: the sweep gives up only an id with no appointment', async () => {
      store.interrupt((streamId) => streamId.startsWith('appointment-'));
      await expect(bookAppointment(side, { doctorId: doctor.id, start: nine, reason: 'check-up' }, retried)).rejects.toThrow('died');
      const sweep = new HoldExpiryProcess({ eventStore: store, side, orphanSlotGraceMs: 60_000 });
      for await (const event of store.readAll()) sweep.observe(event);
      await bookAppointment(side, { doctorId: doctor.id, start: nine, reason: 'check-up' }, retried);
      clock.advance(61_000);
      await sweep.sweep();

      expect(await whereIs(appointmentId)).toEqual({ appointment: nine, slot: nine, time: nine });
      expect(await eventTypes(store, `appointment-${appointmentId}`)).toEqual(['AppointmentScheduled']);
    });
  });

  describe('over before its end', () => {
    const twenty = '2030-02-04T09:20:00.000Z';

    /** An hour with the doctor from nine; at twenty past nine, the doctor records how it went. */
    async function bookedForAnHour() {
      await setSchedule(side, doctor.id, { ...everyMorning, slotMinutes: 60 }, as(doctor));
      const booked = await bookAppointment(side, { doctorId: doctor.id, start: nine, reason: 'check-up' }, as(patient));
      clock.advance(Date.parse(twenty) - clock.now().getTime());
      return booked;
    }

    it("marked a no-show, gives the patient's time back: they may see another doctor in what was left of its hour", async () => {
      const booked = await bookedForAnHour();
      clock.advance(60_000);

      const missed = await markNoShow(side, booked.id, as(doctor));

      expect(await eventTypes(store, `patientAgenda-${patient.id}`)).toEqual(['TimeReserved', 'TimeReleased']);
      expect(missed.position).toEqual((await streamEvents(store, `patientAgenda-${patient.id}`)).at(-1)?.position);
      await expect(bookAppointment(side, { doctorId: otherDoctor.id, start: nineThirty, reason: 'second opinion' }, as(patient))).resolves.toBeDefined();
    });

    it("completed, gives the patient's time back, and a retry of the completion finds nothing more to give", async () => {
      const booked = await bookedForAnHour();
      const completing = as(doctor);

      await completeAppointment(side, booked.id, { notes: 'fine' }, completing);
      await completeAppointment(side, booked.id, { notes: 'fine' }, completing);

      expect(await eventTypes(store, `patientAgenda-${patient.id}`)).toEqual(['TimeReserved', 'TimeReleased']);
      await expect(bookAppointment(side, { doctorId: otherDoctor.id, start: nineThirty, reason: 'second opinion' }, as(patient))).resolves.toBeDefined();
      // The doctor's slot stays the visit's: nobody could book a time already begun anyway.
      expect(slotOf((await side.handlers.doctorSchedule.read(`doctorSchedule-${doctor.id}`)).state, booked.id)).toMatchObject({ start: nine, end: ten });
    });
  });

  it('cancelling answers with the position of its last step, so a reader waiting on it sees the slot and the time free', async () => {
    const booked = await bookAppointment(side, { doctorId: doctor.id, start: nine, reason: 'check-up' }, as(patient));
    const cancelled = await cancelAppointment(side, booked.id, { reason: 'feeling better' }, as(patient));

    const released = [(await streamEvents(store, `patientAgenda-${patient.id}`)).at(-1), (await streamEvents(store, `doctorSchedule-${doctor.id}`)).at(-1)];
    expect(released.map((event) => event?.type)).toEqual(['TimeReleased', 'SlotReleased']);
    const last = released.map((event) => event?.position).reduce((a, b) => (a && b && comparePositions(a, b) > 0 ? a : b));
    expect(cancelled.position).toEqual(last);
    expect(cancelled.streamId).toBe(booked.streamId);
  });
});
