import { randomUUID } from 'node:crypto';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { postJson, startApi, startBackend, type TestApi, type TestBackend } from '../http/support/command-api.fixture.js';
import { startReadSide, type ReadSide } from '../http/support/read-side.fixture.js';
import { listingInput } from '../support/command-side.js';
import { eventually } from '../support/eventually.js';
import { accountPassword, loggedInAccount } from '../http/support/accounts.js';

let backend: TestBackend;
let api: TestApi;
let readSide: ReadSide;

beforeAll(async () => {
  backend = await startBackend();
  api = await startApi(backend);
  readSide = await startReadSide(backend, api);
}, 60_000);

afterAll(async () => {
  await readSide.close();
  await api.close();
  await backend.close();
});

const password = accountPassword;
const uniqueEmail = (name: string) => `${name}-${randomUUID().slice(0, 8)}@example.com`;
const bearer = (token: string) => ({ authorization: `Bearer ${token}` });
const account = (roles: string[]) => loggedInAccount(api, roles);

const signUpAdmin = (token: string) =>
  postJson(`${api.url}/v1/auth/signup`, { email: uniqueEmail('new-admin'), password, name: 'Mallory', roles: ['ADMIN'] }, bearer(token));
const listingFor = (token: string, ownerId: string) => postJson(`${api.url}/v1/listings`, { ...listingInput, ownerId }, bearer(token));
const query = async (token: string, url: string) => (await readSide.queryApi.inject({ method: 'GET', url, headers: bearer(token) })).statusCode;
const revokeAdmin = (userId: string) =>
  api.side.handlers.user.handle(
    `user-${userId}`,
    { type: 'RevokeRoles', data: { userId, roles: ['ADMIN'], revokedBy: { id: 'system:seed', roles: ['ADMIN'] } } },
    { commandId: randomUUID(), context: { actor: { id: 'system:seed', roles: ['ADMIN'] }, requestId: 'revoke', correlationId: 'revoke', causationId: 'revoke' } },
  );
const erase = (token: string, userId: string) => postJson(`${api.url}/v1/admin/subjects/${userId}/erase`, {}, bearer(token));

describe('an access token that outlived its admin', () => {
  it('makes no admin and erases no one once its admin was erased, though it has not expired', async () => {
    const [stale, other, bystander] = [await account(['ADMIN']), await account(['ADMIN']), await account(['CONSUMER'])];
    expect((await erase(other.token, stale.id)).status).toBe(200);

    expect((await signUpAdmin(stale.token)).status).toBe(403);
    expect((await erase(stale.token, bystander.id)).status).toBe(403);
    expect((await postJson(`${api.url}/v1/auth/login`, { email: bystander.email, password })).status).toBe(200);
  });

  it('makes no admin once the role was taken away, and still does while it is held', async () => {
    const [demoted, kept] = [await account(['ADMIN', 'OWNER']), await account(['ADMIN'])];
    expect((await signUpAdmin(kept.token)).status).toBe(201);
    await revokeAdmin(demoted.id);
    expect((await signUpAdmin(demoted.token)).status).toBe(403);
  });

  it("acts on no one else's things once its admin was erased: a listing for another owner is refused", async () => {
    const [stale, other, owner] = [await account(['ADMIN']), await account(['ADMIN']), await account(['OWNER'])];
    expect((await listingFor(stale.token, owner.id)).status).toBe(201);
    expect((await erase(other.token, stale.id)).status).toBe(200);

    expect((await listingFor(stale.token, owner.id)).status).toBe(403);
    expect((await listingFor(other.token, owner.id)).status).toBe(201);
  });

  it('keeps the roles still held once ADMIN was taken away: its own listing yes, one for another owner no', async () => {
    const [demoted, owner] = [await account(['ADMIN', 'OWNER']), await account(['OWNER'])];
    await revokeAdmin(demoted.id);

    expect((await postJson(`${api.url}/v1/listings`, listingInput, bearer(demoted.token))).status).toBe(201);
    const forAnother = await listingFor(demoted.token, owner.id);
    expect(forAnother.status).toBe(403);
    expect(forAnother.body.type).toBe('https://bookable.example/problems/forbidden');
  });

  it("reads no admin or audit views on the query API once its user's erasure is projected", async () => {
    const [stale, other] = [await account(['ADMIN', 'AUDITOR']), await account(['ADMIN', 'AUDITOR'])];
    const auditTrail = `/v1/audit/actors/${other.id}/events`;
    expect(await query(stale.token, '/v1/admin/projections')).toBe(200);
    expect(await query(stale.token, auditTrail)).toBe(200);
    expect((await erase(other.token, stale.id)).status).toBe(200);

    await eventually(async () => (await query(stale.token, '/v1/admin/projections')) === 403, 10_000, 'the erasure projected');
    expect(await query(stale.token, auditTrail)).toBe(403);
    expect(await query(other.token, auditTrail)).toBe(200);
  });
});
