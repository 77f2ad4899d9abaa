import { beforeEach, describe, expect, it } from 'vitest';
import type { CommandSide } from '../../src/application/command-handlers.js';
import { bookAppointment, cancelAppointment, rescheduleAppointment } from '../../src/application/appointments/appointment.use-cases.js';
import { HoldExpiryProcess } from '../../src/application/process-managers/hold-expiry.process.js';
import type { Position } from '../../src/application/ports/event-store.js';
import type { PersonalDataVault } from '../../src/application/privacy/personal-data-vault.js';
import { setSchedule } from '../../src/application/schedules/schedule.use-cases.js';
import type { WeeklySchedule } from '../../src/domain/doctor-schedule/weekly-schedule.js';
import { as, createTestSide, doctor, everyEventId, everyMorning, eventTypes, fakeClock, followAndSweep, InterruptibleStore, patient, streamEvents, whereIsAppointment } from '../support/command-side.js';
import { memoryVault } from '../support/personal-data.js';

const mondayNine = '2030-02-04T09:00:00.000Z';
const tuesdayNine = '2030-02-05T09:00:00.000Z';
const graceMs = 60_000;
/** Every morning but Mondays. */
const mondaysOff: WeeklySchedule = { ...everyMorning, weeklyHours: { ...everyMorning.weeklyHours, mon: [] } };

describe('a schedule change that acknowledges booked appointments', () => {
  let store: InterruptibleStore;
  let clock: ReturnType<typeof fakeClock>;
  let vault: PersonalDataVault;
  let side: CommandSide;
  let appointmentId: string;
  let appointmentStream: string;

  beforeEach(async () => {
    store = new InterruptibleStore();
    clock = fakeClock('2030-01-10T10:00:00Z');
    vault = memoryVault();
    side = createTestSide(store, clock, 15, vault);
    await setSchedule(side, doctor.id, everyMorning, as(doctor));
    ({ id: appointmentId, streamId: appointmentStream } = await bookAppointment(side, { doctorId: doctor.id, start: mondayNine, reason: 'check-up' }, as(patient)));
  });

  const whereIs = () => whereIsAppointment(side, appointmentId, { doctorId: doctor.id, patientId: patient.id });

  /** The appointment's events as its parties read them (the cancellation's reason is sealed in the store). */
  const appointmentEvents = async () => vault.reveal(await streamEvents(store, appointmentStream));

  /** A hold-expiry process following the log from the start: each turn reads what it gained, then sweeps. */
  function startProcess() {
    const errors: unknown[] = [];
    const process = new HoldExpiryProcess({ eventStore: store, side, orphanSlotGraceMs: graceMs, onError: (error) => errors.push(error) });
    const turn = followAndSweep(store, process);
    return { process, turn, errors };
  }

  /** The appointment was cancelled once, by its doctor, saying why; its slot and its patient's time are free. */
  async function expectCancelledForTheScheduleChange(): Promise<void> {
    const cancellations = (await appointmentEvents()).filter((event) => event.type === 'AppointmentCancelled');
    expect(cancellations).toHaveLength(1);
    expect(cancellations[0]?.data).toMatchObject({ cancelledBy: 'doctor', lateCancellation: false });
    expect(cancellations[0]?.data.reason).toMatch(/^The doctor's schedule changed: .*outside working hours/);
    expect(await whereIs()).toEqual({ appointment: mondayNine, slot: undefined, time: undefined });
    expect((await side.handlers.appointment.read(appointmentStream)).state.status).toBe('cancelled');
  }

  it('given an appointment on Monday 09:00, when the doctor makes Mondays a day off, then the change is refused until the appointment is acknowledged', async () => {
    await expect(setSchedule(side, doctor.id, mondaysOff, as(doctor))).rejects.toMatchObject({ code: 'schedule-conflict', details: { affectedAppointmentIds: [appointmentId] } });

    expect(await eventTypes(store, appointmentStream)).toEqual(['AppointmentScheduled']);
  });

  it('given an appointment on Monday 09:00, when the doctor makes Mondays a day off acknowledging it, then the doctor cancels it saying why, its slot and its patient\'s time go back, and a later change needs no acknowledgement', async () => {
    const changed = await setSchedule(side, doctor.id, { ...mondaysOff, acknowledgedAffected: [appointmentId] }, as(doctor));

    await expectCancelledForTheScheduleChange();
    // The answer's position is the last step's, so a read with it sees the cancellation too.
    const positions: Position[] = [];
    for await (const event of store.readAll()) positions.push(event.position);
    expect(changed.position).toEqual(positions.at(-1));
    await expect(setSchedule(side, doctor.id, { ...mondaysOff, specialty: 'Cardiology' }, as(doctor))).resolves.toMatchObject({ streamId: `doctorSchedule-${doctor.id}` });
  });

  it('given the change\'s request died after the schedule was changed, when its client retries it with the same key, then the retry cancels the appointment, and a further retry appends nothing', async () => {
    const request = as(doctor);
    const change = { ...mondaysOff, acknowledgedAffected: [appointmentId] };
    store.interrupt((streamId) => streamId === appointmentStream);
    await expect(setSchedule(side, doctor.id, change, request)).rejects.toThrow('died');
    expect(await eventTypes(store, `doctorSchedule-${doctor.id}`)).toEqual(['ScheduleSet', 'SlotBooked', 'ScheduleSet']);
    expect(await eventTypes(store, appointmentStream)).toEqual(['AppointmentScheduled']);

    await setSchedule(side, doctor.id, change, request);

    await expectCancelledForTheScheduleChange();
    const before = await everyEventId(store);
    await setSchedule(side, doctor.id, change, request);
    expect(await everyEventId(store)).toEqual(before);
  });

  it('given the change\'s request died after cancelling the appointment and before giving back its time, when its client retries it, then the retry gives back the time and the slot', async () => {
    const request = as(doctor);
    const change = { ...mondaysOff, acknowledgedAffected: [appointmentId] };
    store.interrupt((streamId) => streamId === `patientAgenda-${patient.id}`);
    await expect(setSchedule(side, doctor.id, change, request)).rejects.toThrow('died');
    expect(await whereIs()).toEqual({ appointment: mondayNine, slot: mondayNine, time: mondayNine });

    await setSchedule(side, doctor.id, change, request);

    await expectCancelledForTheScheduleChange();
  });

  it('given the change\'s request died after the schedule was changed and nobody retries it, then the hold-expiry process cancels the appointment once the grace period is over, and a replay appends nothing', async () => {
    store.interrupt((streamId) => streamId === appointmentStream);
    await expect(setSchedule(side, doctor.id, { ...mondaysOff, acknowledgedAffected: [appointmentId] }, as(doctor))).rejects.toThrow('died');
    const { process, turn, errors } = startProcess();
    expect(await turn()).toEqual({ progressed: 0, failed: 0 });
    expect(await eventTypes(store, appointmentStream)).toEqual(['AppointmentScheduled']);

    clock.advance(graceMs);
    await turn();

    expect(errors).toEqual([]);
    await expectCancelledForTheScheduleChange();
    await turn();
    expect(process.pending).toEqual({ holds: 0, slots: 0, times: 0, cancellations: 0, moves: 0, calendars: 0 });
    const before = await everyEventId(store);
    clock.advance(graceMs);
    await startProcess().turn();
    expect(await everyEventId(store)).toEqual(before);
  });

  it('given the change\'s request died and the patient cancelled the appointment meanwhile, then neither the retry nor the hold-expiry process cancels it again: nothing is appended', async () => {
    const request = as(doctor);
    const change = { ...mondaysOff, acknowledgedAffected: [appointmentId] };
    store.interrupt((streamId) => streamId === appointmentStream);
    await expect(setSchedule(side, doctor.id, change, request)).rejects.toThrow('died');
    await cancelAppointment(side, appointmentId, { reason: 'feeling better' }, as(patient));
    const before = await everyEventId(store);

    await setSchedule(side, doctor.id, change, request);
    clock.advance(graceMs);
    const { process, turn, errors } = startProcess();
    await turn();

    expect(errors).toEqual([]);
    expect(await everyEventId(store)).toEqual(before);
    expect((await appointmentEvents()).map((event) => [event.type, event.data.cancelledBy])).toEqual([
      ['AppointmentScheduled', undefined],
      ['AppointmentCancelled', 'patient'],
    ]);
    expect(process.pending.cancellations).toBe(0);
  });

  it('given the patient cancelled before a release and the process died, when the change is retried, then the appointment stays cancelled by the patient', async () => {
    const request = as(doctor);
    const change = { ...mondaysOff, acknowledgedAffected: [appointmentId] };
    store.interrupt((streamId) => streamId === appointmentStream);
    await expect(setSchedule(side, doctor.id, change, request)).rejects.toThrow('died');
    // The patient's cancellation dies before giving back their time and the slot.
    store.interrupt((streamId) => streamId === `patientAgenda-${patient.id}`);
    await expect(cancelAppointment(side, appointmentId, { reason: 'feeling better' }, as(patient))).rejects.toThrow('died');
    const before = await everyEventId(store);

    await setSchedule(side, doctor.id, change, request);

    expect(await everyEventId(store)).toEqual(before);
    expect((await side.handlers.appointment.read(appointmentStream)).state).toMatchObject({ status: 'cancelled', cancelledBy: 'patient' });
  });

  it('given a change acknowledging the appointment, when the doctor changes the schedule again pinned to the version it answered, then the change is accepted', async () => {
    const changed = await setSchedule(side, doctor.id, { ...mondaysOff, acknowledgedAffected: [appointmentId] }, as(doctor));

    const next = setSchedule(side, doctor.id, { ...mondaysOff, specialty: 'Cardiology' }, { ...as(doctor), expectedVersion: changed.version });

    await expect(next).resolves.toMatchObject({ version: changed.version + 1 });
  });

  describe('whose request died before cancelling it, while the patient moved it to Tuesday 09:00, which the new week offers, in a request that died after moving the appointment and before its slot followed', () => {
    /** The change, acknowledging the appointment (whose id the outer `beforeEach` gives it). */
    const change = () => ({ ...mondaysOff, acknowledgedAffected: [appointmentId] });
    let request: ReturnType<typeof as>;

    beforeEach(async () => {
      request = as(doctor);
      store.interrupt((streamId) => streamId === appointmentStream);
      await expect(setSchedule(side, doctor.id, change(), request)).rejects.toThrow('died');
      let appointmentMoved = false;
      store.interrupt((streamId) => {
        if (streamId === appointmentStream) appointmentMoved = true;
        return appointmentMoved && streamId === `doctorSchedule-${doctor.id}`;
      });
      await expect(rescheduleAppointment(side, appointmentId, { start: tuesdayNine }, as(patient))).rejects.toThrow('died');
      // The old slot is still held, and the time the move held on Tuesday beside it.
      expect(await whereIs()).toEqual({ appointment: tuesdayNine, slot: mondayNine, time: tuesdayNine });
    });

    async function expectLeftOnTuesday(): Promise<void> {
      expect((await appointmentEvents()).map((event) => event.type)).toEqual(['AppointmentScheduled', 'AppointmentRescheduled']);
      expect((await side.handlers.appointment.read(appointmentStream)).state).toMatchObject({ status: 'rescheduled', start: tuesdayNine });
    }

    it('when the change is retried with the same key, then the appointment is left as it is, on Tuesday', async () => {
      await setSchedule(side, doctor.id, change(), request);

      await expectLeftOnTuesday();
    });

    it('when nobody retries either, then the hold-expiry process, once the grace period is over, brings the slot to Tuesday and leaves the appointment there', async () => {
      const { process, turn, errors } = startProcess();
      await turn();

      clock.advance(graceMs);
      await turn();

      expect(errors).toEqual([]);
      await expectLeftOnTuesday();
      expect(await whereIs()).toEqual({ appointment: tuesdayNine, slot: tuesdayNine, time: tuesdayNine });
      await turn();
      expect(process.pending).toEqual({ holds: 0, slots: 0, times: 0, cancellations: 0, moves: 0, calendars: 0 });
    });
  });
});
