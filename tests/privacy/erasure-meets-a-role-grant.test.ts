import { describe, expect, it } from 'vitest';
import { eraseSubject, type ErasureDeps } from '../../src/application/privacy/erase-subject.use-case.js';
import type { Actor } from '../../src/domain/shared/actor.js';
import { erasedPlaceholder } from '../../src/domain/shared/personal-data.js';
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
