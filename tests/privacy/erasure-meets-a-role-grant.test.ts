import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { bookAppointment } from '../../src/application/appointments/appointment.use-cases.js';
import { eraseSubject, type ErasureDeps } from '../../src/application/privacy/erase-subject.use-case.js';
import { setSchedule } from '../../src/application/schedules/schedule.use-cases.js';
import type { Actor } from '../../src/domain/shared/actor.js';
import { erasedPlaceholder } from '../../src/domain/shared/personal-data.js';
import { usersProjection } from '../../src/projections/users/users.projection.js';
import { findUserProfile } from '../../src/projections/users/users.queries.js';
import { startReadModels, type ReadModelHarness } from '../projections/support/read-models.harness.js';
import { registerUser } from '../projections/support/scenarios.js';
import { admin, as, createTestSide, eventTypes, everyMorning, fakeClock, InterruptibleStore, patient, streamEvents } from '../support/command-side.js';
import { memoryVault } from '../support/personal-data.js';

const auditorAdmin: Actor = { id: 'admin-auditor-1', roles: ['ADMIN', 'AUDITOR'] };
const otherPatient: Actor = { id: 'patient-2', roles: ['PATIENT'] };

describe('an erasure whose person is made an auditor once their key is gone', () => {
  it('still records SubjectErased, checked before the key was destroyed, and its retry is answered as already applied', async () => {
    // Given a patient, and a plain admin erasing them
    const store = new InterruptibleStore();
    const vault = memoryVault();
    const side = createTestSide(store, fakeClock('2030-01-10T10:00:00Z'), 15, vault);
    await registerUser(side, patient, 'Pat');
    const streamId = `user-${patient.id}`;
    // an auditor-admin makes them an auditor just after their key is destroyed
    let granted = false;
    const grantAuditorMeanwhile = async () => {
      if (granted) return;
      granted = true;
      const grant = { type: 'GrantRoles' as const, data: { userId: patient.id, roles: ['AUDITOR' as const], grantedBy: auditorAdmin } };
      await side.handlers.user.handle(streamId, grant, as(auditorAdmin));
    };
    const deps: ErasureDeps = { side, vault, outsideTheLog: { eraseSubject: grantAuditorMeanwhile } };
    const request = as(admin);

    // When the erasure runs on
    const erased = await eraseSubject(deps, patient.id, request);

    // Then its record follows, and nothing about them reads any more
    expect(await eventTypes(store, streamId)).toEqual(['UserRegistered', 'RolesGranted', 'SubjectErased']);
    const [registration] = await vault.reveal(await streamEvents(store, streamId));
    expect(registration?.data).toMatchObject({ name: erasedPlaceholder, email: erasedPlaceholder });
    // and the same request, retried, is answered as it was
    expect(await eraseSubject(deps, patient.id, request)).toEqual(erased);
    expect(await eventTypes(store, streamId)).toEqual(['UserRegistered', 'RolesGranted', 'SubjectErased']);
  });
});

/**
 * The first attempt destroys the key, then fails before `SubjectErased` (the connection lost);
 * meanwhile an auditor-admin makes the person an auditor. The retry of the same request must
 * finish the erasure: refused, the person stays unreadable in the log yet named in every read model.
 */
describe('a retried erasure whose key was destroyed before the person was made an auditor', () => {
  let h: ReadModelHarness;

  beforeAll(async () => {
    h = await startReadModels([usersProjection]);
  });
  afterAll(() => h.close());

  const erasureInterruptedByAGrant = (userId: string): ErasureDeps => {
    let interrupted = false;
    const outsideTheLog = {
      async eraseSubject() {
        if (interrupted) return;
        interrupted = true;
        const grant = { type: 'GrantRoles' as const, data: { userId, roles: ['AUDITOR' as const], grantedBy: auditorAdmin } };
        await h.side.handlers.user.handle(`user-${userId}`, grant, as(auditorAdmin));
        throw new Error('connection lost');
      },
    };
    return { side: h.side, vault: h.harness.vault, outsideTheLog };
  };

  it.each([
    { eraser: 'a plain admin, whose erasing an auditor would be refused', person: { id: 'patient-plain', roles: ['PATIENT'] }, by: admin, pinned: false },
    { eraser: 'an auditor-admin pinning the version it read', person: { id: 'patient-pinned', roles: ['PATIENT'] }, by: auditorAdmin, pinned: true },
  ] satisfies { eraser: string; person: Actor; by: Actor; pinned: boolean }[])('records SubjectErased when retried by $eraser', async ({ person, by, pinned }) => {
    // Given a patient whose erasure destroyed their key, then failed once they were made an auditor
    await registerUser(h.side, person, 'Pat');
    const streamId = `user-${person.id}`;
    const deps = erasureInterruptedByAGrant(person.id);
    const request = { ...as(by), ...(pinned ? { expectedVersion: 0 } : {}) };
    await expect(eraseSubject(deps, person.id, request)).rejects.toThrow('connection lost');
    expect(await eventTypes(h.harness.store, streamId)).toEqual(['UserRegistered', 'RolesGranted']);

    // When the same request is retried
    await eraseSubject(deps, person.id, request);

    // Then the erasure is recorded, and the read models no longer name them
    expect(await eventTypes(h.harness.store, streamId)).toEqual(['UserRegistered', 'RolesGranted', 'SubjectErased']);
    await h.settle();
    expect(await findUserProfile(h.db, person.id)).toMatchObject({ name: erasedPlaceholder, email: erasedPlaceholder, roles: ['PATIENT', 'AUDITOR'] });
  });
});

/**
 * The first attempt destroys a patient's key, then fails before `SubjectErased`; meanwhile an admin
 * makes them a doctor (not erased yet, as far as the stream says) and publishes a schedule for
 * them. Booking asks only the schedule, so the retry must withdraw it, though it was not there
 * when the key went.
 */
describe('a retried erasure whose person was made a doctor, with a schedule, once their key was gone', () => {
  it('withdraws the schedule published meanwhile, so the erased doctor cannot be booked', async () => {
    // Given a patient whose erasure destroyed their key, then failed
    const store = new InterruptibleStore();
    const vault = memoryVault();
    const side = createTestSide(store, fakeClock('2030-01-10T10:00:00Z'), 15, vault);
    await registerUser(side, patient, 'Pat');
    let failed = false;
    const outsideTheLog = {
      eraseSubject: async () => {
        if (failed) return;
        failed = true;
        throw new Error('connection lost');
      },
    };
    const deps: ErasureDeps = { side, vault, outsideTheLog };
    const request = as(admin);
    await expect(eraseSubject(deps, patient.id, request)).rejects.toThrow('connection lost');
    // and an admin who made them a doctor and published their working week meanwhile
    const grant = { type: 'GrantRoles' as const, data: { userId: patient.id, roles: ['DOCTOR' as const], grantedBy: admin } };
    await side.handlers.user.handle(`user-${patient.id}`, grant, as(admin));
    await setSchedule(side, patient.id, everyMorning, as(admin));

    // When the same request is retried
    await eraseSubject(deps, patient.id, request);

    // Then the erasure is recorded, the schedule withdrawn, and booking them refused
    expect(await eventTypes(store, `user-${patient.id}`)).toEqual(['UserRegistered', 'RolesGranted', 'SubjectErased']);
    expect(await eventTypes(store, `doctorSchedule-${patient.id}`)).toEqual(['ScheduleSet', 'ScheduleWithdrawn']);
    const booking = bookAppointment(side, { doctorId: patient.id, start: '2030-01-14T09:00:00Z', reason: 'checkup' }, as(otherPatient));
    await expect(booking).rejects.toMatchObject({ code: 'schedule-withdrawn' });
  });
});
