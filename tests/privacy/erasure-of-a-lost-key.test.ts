import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { bookAppointment } from '../../src/application/appointments/appointment.use-cases.js';
import type { RecordedEvent } from '../../src/application/ports/event-store.js';
import { eraseSubject } from '../../src/application/privacy/erase-subject.use-case.js';
import { PersonalDataVault } from '../../src/application/privacy/personal-data-vault.js';
import { RevealingEventStore } from '../../src/application/privacy/revealing-event-store.js';
import { setSchedule } from '../../src/application/schedules/schedule.use-cases.js';
import { erasedPlaceholder } from '../../src/domain/shared/personal-data.js';
import { streamIdOf } from '../../src/domain/user/user.decider.js';
import { PgRecordsOutsideTheLog } from '../../src/infrastructure/privacy/pg-records-outside-the-log.js';
import { PgSubjectKeyStore } from '../../src/infrastructure/privacy/pg-subject-key-store.js';
import { createHarness, type Harness } from '../projections/support/runtime-harness.js';
import { registerUser } from '../projections/support/scenarios.js';
import { admin, as, createTestSide, doctor, eventTypes, everyMorning, fakeClock, patient } from '../support/command-side.js';
import { pgVault } from '../support/personal-data.js';

/**
 * A person whose key row was lost cannot have their fields revealed; erasing them is what settles
 * it (the tombstone), so erasure must not need to reveal them first.
 */
describe('erasing a person whose key row is missing', () => {
  let h: Harness;
  let appointmentStream: string;
  const clock = fakeClock('2030-01-01T08:00:00Z');

  beforeAll(async () => {
    h = await createHarness();
    // Given a registered patient with an appointment, sealed with their key
    const side = createTestSide(h.store, clock, 15, pgVault(h.pool));
    await registerUser(side, doctor, 'Dr Ada');
    await registerUser(side, patient, 'Pat');
    await setSchedule(side, doctor.id, everyMorning, as(doctor));
    const booked = await bookAppointment(side, { doctorId: doctor.id, start: '2030-01-14T09:00:00Z', reason: 'back pain' }, as(patient));
    appointmentStream = `appointment-${booked.id}`;
    // and the owner deleting their key row
    await h.pool.query('DELETE FROM subject_keys WHERE subject_id = $1', [patient.id]);
  });
  afterAll(() => h.close());

  const eventsOf = async (streamId: string): Promise<RecordedEvent[]> => {
    const read = await new RevealingEventStore(h.store, pgVault(h.pool)).readStream(streamId);
    const events: RecordedEvent[] = [];
    if (read.status === 'found') for await (const event of read.events) events.push(event);
    return events;
  };

  it('succeeds in a process that never held the key, and leaves the person erased, reading [erased]', async () => {
    // When an admin erases them from a process started afresh (nothing of the key in memory)
    const vault = pgVault(h.pool);
    const restarted = createTestSide(h.store, clock, 15, vault);
    await eraseSubject({ side: restarted, vault, outsideTheLog: new PgRecordsOutsideTheLog(h.pool) }, patient.id, as(admin));

    // Then the person is erased, and what was sealed for them reads [erased]
    const { state } = await restarted.handlers.user.read(streamIdOf(patient.id));
    expect(state).toMatchObject({ status: 'registered', erased: true });
    const userEvents = await eventsOf(streamIdOf(patient.id));
    expect(userEvents.map((event) => event.type)).toEqual(['UserRegistered', 'SubjectErased']);
    expect(userEvents[0]?.data).toMatchObject({ name: erasedPlaceholder, email: erasedPlaceholder });
    const [scheduled] = await eventsOf(appointmentStream);
    expect(scheduled?.data).toMatchObject({ patientId: patient.id, reason: erasedPlaceholder });
  });
});

/**
 * A key row that does not unwrap (wrapped by another master key, or damaged) leaves the person's
 * fields unreadable; erasure is the remedy, so it must shred such a key without opening it.
 */
describe('erasing a person whose key row cannot be unwrapped', () => {
  let h: Harness;
  const clock = fakeClock('2030-01-01T08:00:00Z');

  beforeAll(async () => {
    h = await createHarness();
    // Given a patient whose key was wrapped by a master key this service does not hold
    const otherMaster = new PersonalDataVault(new PgSubjectKeyStore(h.pool, Buffer.alloc(32, 0x11)));
    await registerUser(createTestSide(h.store, clock, 15, otherMaster), patient, 'Pat');
  });
  afterAll(() => h.close());

  it('records SubjectErased and leaves their key row a tombstone', async () => {
    // When an admin erases them from a process under this service's master key
    const vault = pgVault(h.pool);
    const side = createTestSide(h.store, clock, 15, vault);
    await eraseSubject({ side, vault, outsideTheLog: new PgRecordsOutsideTheLog(h.pool) }, patient.id, as(admin));

    // Then the erasure is recorded, and nothing of the key is left
    expect(await eventTypes(h.store, streamIdOf(patient.id))).toEqual(['UserRegistered', 'SubjectErased']);
    const { rows } = await h.pool.query<{ wrapped_key: Buffer | null }>('SELECT wrapped_key FROM subject_keys WHERE subject_id = $1', [patient.id]);
    expect(rows).toEqual([{ wrapped_key: null }]);
  });
});
