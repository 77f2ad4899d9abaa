import { randomUUID } from 'node:crypto';
import { sql } from 'kysely';
import { pino } from 'pino';
import { afterAll, beforeAll, describe, expect, it, vi } from 'vitest';
import { bookAppointment } from '../../src/application/appointments/appointment.use-cases.js';
import type { CommandSide } from '../../src/application/command-handlers.js';
import { eraseSubject } from '../../src/application/privacy/erase-subject.use-case.js';
import { setSchedule } from '../../src/application/schedules/schedule.use-cases.js';
import { sleep } from '../../src/application/sleep.js';
import { erasedPlaceholder } from '../../src/domain/shared/personal-data.js';
import { ErasedSubjects } from '../../src/infrastructure/privacy/erased-subjects.js';
import { startProjectorThread } from '../../src/infrastructure/projector-thread.js';
import { appointmentsProjectionName } from '../../src/projections/appointments/appointments.table.js';
import { readSchema } from '../../src/projections/runtime/projection.js';
import type { Actor } from '../../src/domain/shared/actor.js';
import { admin, as, createTestSide, doctor, everyMorning, fakeClock, streamEvents } from '../support/command-side.js';
import { eventually } from '../support/eventually.js';
import { testMasterKeyText } from '../support/personal-data.js';
import { createHarness, type Harness } from '../projections/support/runtime-harness.js';
import { registerUser } from '../projections/support/scenarios.js';

// The `all` role projects on a thread of its own, with a vault (and a cache of keys) of its own.
// A `SubjectErased` passing through its reader stops it using the key; but only the main thread's
// vault heard of erasures from the watcher of tombstones, so until the `SubjectErased` was in the
// log (an erasure under way, or one that stopped after destroying the key) the thread kept
// revealing a destroyed key it held in memory, for up to a minute, into the read models.

describe("the projector thread's vault", () => {
  let harness: Harness;
  let side: CommandSide;
  let thread: { markErased(subjectId: string): void; stop(): Promise<void> };
  let erased: ErasedSubjects;
  const failures: unknown[] = [];

  beforeAll(async () => {
    harness = await createHarness();
    side = createTestSide(harness.store, fakeClock('2030-01-10T10:00:00Z'), 15, harness.vault);
    // What the thread reads from the environment: the test databases' master key, and quiet.
    vi.stubEnv('MASTER_KEY', testMasterKeyText);
    vi.stubEnv('LOG_LEVEL', 'silent');
    const storage = { url: harness.url, pool: harness.pool, eventStore: harness.store, revealed: harness.revealed, vault: harness.vault, stop: async () => undefined };
    thread = await startProjectorThread(storage, pino({ level: 'silent' }), (err) => failures.push(err));
    // As main.ts does: the process's one watcher tells the thread of each erasure it hears of.
    erased = await ErasedSubjects.start({ pool: harness.pool, tokenLifetimeMs: 0, vault: thread });
    await registerUser(side, doctor, 'Dr Ada');
    await setSchedule(side, doctor.id, everyMorning, as(doctor));
  });

  afterAll(async () => {
    await erased.close();
    await thread.stop();
    vi.unstubAllEnvs();
    await harness.close();
    expect(failures).toEqual([]);
  });

  const reasonOf = async (appointmentId: string) => {
    const { rows } = await sql<{ reason: string }>`select reason from ${sql.id(readSchema(appointmentsProjectionName), 'appointments')} where appointment_id = ${appointmentId}`.execute(harness.db);
    return rows[0]?.reason;
  };

  /** The patient's appointment, projected by the thread: their key is now in the thread's memory. */
  const appointmentRevealedByTheThread = async (patient: Actor, start: string) => {
    await registerUser(side, patient, 'Pat');
    const { id } = await bookAppointment(side, { doctorId: doctor.id, start, reason: 'HIV follow-up' }, as(patient));
    await eventually(async () => (await reasonOf(id)) === 'HIV follow-up', 10_000, 'the thread to project the appointment');
    return id;
  };

  /** What a slow append from another process commits: the appointment's event, sealed with the key before it was destroyed. */
  const appendSealedCopy = async (appointmentId: string) => {
    const scheduled = (await streamEvents(harness.store, `appointment-${appointmentId}`)).find((event) => event.type === 'AppointmentScheduled');
    if (!scheduled) throw new Error('no AppointmentScheduled');
    const copyId = randomUUID();
    await harness.store.appendToStream(
      `appointment-${copyId}`,
      [{ id: randomUUID(), type: scheduled.type, data: { ...scheduled.data, appointmentId: copyId }, metadata: scheduled.metadata }],
      { expectedRevision: 'no_stream' },
    );
    return copyId;
  };

  it("given the thread revealed a patient's reason for visit, when another process destroys their key, then 2 s later the thread projects an event sealed with it as erased", async () => {
    const patient: Actor = { id: 'patient-1', roles: ['PATIENT'] };
    const appointmentId = await appointmentRevealedByTheThread(patient, '2030-01-14T09:00:00Z');

    // An erasure's first step, in another process; its `SubjectErased` is not in the log yet.
    await harness.vault.erase(patient.id, new Date());
    await sleep(2_000);
    const copyId = await appendSealedCopy(appointmentId);

    await eventually(async () => (await reasonOf(copyId)) !== undefined, 10_000, 'the thread to project the copy');
    expect(await reasonOf(copyId)).toBe(erasedPlaceholder);
  });

  it('given a patient erased by another process, then an event sealed with their key that commits after SubjectErased is projected as erased', async () => {
    const patient: Actor = { id: 'patient-2', roles: ['PATIENT'] };
    const appointmentId = await appointmentRevealedByTheThread(patient, '2030-01-15T09:00:00Z');
    await eraseSubject({ side, vault: harness.vault, outsideTheLog: { eraseSubject: async () => undefined } }, patient.id, as(admin));
    await eventually(async () => (await reasonOf(appointmentId)) === erasedPlaceholder, 10_000, 'the thread to scrub the appointment');

    const copyId = await appendSealedCopy(appointmentId);

    await eventually(async () => (await reasonOf(copyId)) !== undefined, 10_000, 'the thread to project the copy');
    expect(await reasonOf(copyId)).toBe(erasedPlaceholder);
  });
});
