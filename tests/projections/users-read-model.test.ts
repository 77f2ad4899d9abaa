import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { usersProjection } from '../../src/projections/users/users.projection.js';
import { findUserProfile } from '../../src/projections/users/users.queries.js';
import { admin, as, consumer } from '../support/command-side.js';
import { startReadModels, type ReadModelHarness } from './support/read-models.harness.js';
import { registerUser } from './support/scenarios.js';

describe('users read model', () => {
  let h: ReadModelHarness;

  beforeAll(async () => {
    h = await startReadModels([usersProjection]);
  });
  afterAll(() => h.close());

  it('given UserRegistered, RolesGranted and RolesRevoked, then the profile with the current roles', async () => {
    await registerUser(h.side, consumer, 'Camille');
    await h.settle();
    expect(await findUserProfile(h.db, consumer.id)).toMatchObject({ id: consumer.id, email: 'consumer-1@example.test', name: 'Camille', roles: ['CONSUMER'] });
    const requester = { id: admin.id, roles: ['ADMIN'] };
    await h.side.handlers.user.handle(`user-${consumer.id}`, { type: 'GrantRoles', data: { userId: consumer.id, roles: ['OWNER', 'PATIENT'], grantedBy: requester } }, as(admin));
    await h.side.handlers.user.handle(`user-${consumer.id}`, { type: 'RevokeRoles', data: { userId: consumer.id, roles: ['CONSUMER'], revokedBy: requester } }, as(admin));
    await h.settle();
    expect(await findUserProfile(h.db, consumer.id)).toMatchObject({ roles: ['OWNER', 'PATIENT'] });
    expect(await findUserProfile(h.db, 'nobody')).toBeUndefined();
  });

  it('a replayed batch changes nothing', async () => {
    const before = await h.rows('users', 'users');
    await h.replay(usersProjection);
    expect(await h.rows('users', 'users')).toEqual(before);
  });
});
