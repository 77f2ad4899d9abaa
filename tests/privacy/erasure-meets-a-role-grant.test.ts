import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { eraseSubject, type ErasureDeps } from '../../src/application/privacy/erase-subject.use-case.js';
import type { Actor } from '../../src/domain/shared/actor.js';
import { erasedPlaceholder } from '../../src/domain/shared/personal-data.js';
import { usersProjection } from '../../src/projections/users/users.projection.js';
import { findUserProfile } from '../../src/projections/users/users.queries.js';
import { startReadModels, type ReadModelHarness } from '../projections/support/read-models.harness.js';
import { registerUser } from '../projections/support/scenarios.js';
import { admin, as, createTestSide, eventTypes, fakeClock, InterruptibleStore, patient, streamEvents } from '../support/command-side.js';
import { memoryVault } from '../support/personal-data.js';

const auditorAdmin: Actor = { id: 'admin-auditor-1', roles: ['ADMIN', 'AUDITOR'] };

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
