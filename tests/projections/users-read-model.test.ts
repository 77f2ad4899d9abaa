import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { usersProjection } from '../../src/projections/users/users.projection.js';
import type { Database } from '../../src/projections/read-models.js';
import { currentRolesOf, findUserProfile } from '../../src/projections/users/users.queries.js';
import { createKysely, createPool } from '../../src/infrastructure/postgres/database.js';
import { createTestDatabase } from '../support/database.js';
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

  it("given a user who no longer holds a role a token names, then that role is dropped; an unknown user's token is taken as it says", async () => {
    const boss = { id: 'boss-1', roles: ['OWNER' as const] };
    await registerUser(h.side, boss, 'Ada');
    await h.settle();
    // Its token was issued while it held ADMIN, since revoked.
    expect(await currentRolesOf(h.db, { id: boss.id, roles: ['ADMIN', 'OWNER'] })).toEqual(['OWNER']);
    expect(await currentRolesOf(h.db, { id: 'not-projected-yet', roles: ['ADMIN'] })).toEqual(['ADMIN']);
  });

  it('before the read model exists (a fresh deployment), takes a token as it says rather than fail', async () => {
    const database = await createTestDatabase();
    const pool = createPool(database.url, 1);
    try {
      expect(await currentRolesOf(createKysely<Database>(pool), { id: 'admin-9', roles: ['ADMIN', 'AUDITOR'] })).toEqual(['ADMIN', 'AUDITOR']);
    } finally {
      await pool.end();
      await database.drop();
    }
  });
});
