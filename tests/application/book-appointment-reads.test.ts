import { beforeEach, describe, expect, it } from 'vitest';
import { bookAppointment, cancelAppointment } from '../../src/application/appointments/appointment.use-cases.js';
import type { CommandSide } from '../../src/application/command-handlers.js';
import type { CommandOptions } from '../../src/application/command-handling/handle-command.js';
import type { ReadStreamOptions, ReadStreamResult } from '../../src/application/ports/event-store.js';
import { setSchedule } from '../../src/application/schedules/schedule.use-cases.js';
import type { Actor } from '../../src/domain/shared/actor.js';
import { MemoryEventStore } from '../../src/infrastructure/memory-event-store/memory-event-store.js';
import { as, createTestSide, doctor, eventTypes, everyMorning, fakeClock, otherDoctor, patient } from '../support/command-side.js';
import { memoryVault } from '../support/personal-data.js';

const nine = '2030-02-04T09:00:00.000Z';
const ten = '2030-02-04T10:00:00.000Z';
const quarterPastTen = '2030-02-04T10:15:00.000Z';

/** A store that notes the stream of every read. */
class RecordingStore extends MemoryEventStore {
  readonly reads: string[] = [];

  override readStream(streamId: string, options?: ReadStreamOptions): Promise<ReadStreamResult> {
    this.reads.push(streamId);
    return super.readStream(streamId, options);
  }
}

/** A request without `Idempotency-Key`, as the HTTP edge builds it. */
const unkeyed = (actor: Actor): CommandOptions => ({ ...as(actor), freshCommandId: true });

describe('booking an appointment, as reads of the store go', () => {
  let store: RecordingStore;
  let side: CommandSide;
  let otherProcess: CommandSide;

  beforeEach(async () => {
    store = new RecordingStore();
    const clock = fakeClock('2030-01-10T10:00:00Z');
    const vault = memoryVault();
    side = createTestSide(store, clock, 15, vault);
    otherProcess = createTestSide(store, clock, 15, vault);
    await setSchedule(side, doctor.id, everyMorning, as(doctor));
    await setSchedule(side, otherDoctor.id, { ...everyMorning, slotMinutes: 15 }, as(otherDoctor));
  });

  it("given the patient booked before in this process, reads only the doctor's schedule for an unkeyed booking, not the patient's agenda", async () => {
    await bookAppointment(side, { doctorId: doctor.id, start: nine, reason: 'check-up' }, unkeyed(patient));
    store.reads.length = 0;

    await bookAppointment(side, { doctorId: otherDoctor.id, start: ten, reason: 'second opinion' }, unkeyed(patient));

    expect(store.reads).toEqual([`doctorSchedule-${otherDoctor.id}`]);
    expect(await eventTypes(store, `patientAgenda-${patient.id}`)).toEqual(['TimeReserved', 'TimeReserved']);
  });

  it('given the patient busy then, as this process knows, refuses before taking the slot: nothing is appended', async () => {
    await bookAppointment(side, { doctorId: doctor.id, start: ten, reason: 'check-up' }, unkeyed(patient));
    const schedule = `doctorSchedule-${otherDoctor.id}`;
    const before = await eventTypes(store, schedule);

    const refused = bookAppointment(side, { doctorId: otherDoctor.id, start: quarterPastTen, reason: 'second opinion' }, unkeyed(patient));

    await expect(refused).rejects.toMatchObject({ code: 'patient-overlap' });
    expect(await eventTypes(store, schedule)).toEqual(before);
    expect(await eventTypes(store, `patientAgenda-${patient.id}`)).toEqual(['TimeReserved']);
  });

  it('given the time freed by another process since this one cached the agenda, books it: a refusal is never decided on the cache alone', async () => {
    const booked = await bookAppointment(side, { doctorId: doctor.id, start: ten, reason: 'check-up' }, unkeyed(patient));
    await cancelAppointment(otherProcess, booked.id, { reason: 'feeling better' }, as(patient));

    const rebooked = bookAppointment(side, { doctorId: otherDoctor.id, start: quarterPastTen, reason: 'second opinion' }, unkeyed(patient));

    await expect(rebooked).resolves.toBeDefined();
    expect(await eventTypes(store, `patientAgenda-${patient.id}`)).toEqual(['TimeReserved', 'TimeReleased', 'TimeReserved']);
  });
});
