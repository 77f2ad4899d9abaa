import { randomUUID } from 'node:crypto';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { postJson, startApi, startBackend, type TestApi, type TestBackend } from '../http/support/command-api.fixture.js';

let backend: TestBackend;
let api: TestApi;

beforeAll(async () => {
  backend = await startBackend();
  api = await startApi(backend);
}, 60_000);

afterAll(async () => {
  await api.close();
  await backend.close();
});

const password = 'correct horse battery staple';
const uniqueEmail = (name: string) => `${name}-${randomUUID().slice(0, 8)}@example.com`;
const bearer = (token: string) => ({ authorization: `Bearer ${token}` });
/** A real account with `roles`, made by the system, logged in: its id and access token. */
async function account(roles: string[]): Promise<{ id: string; email: string; token: string }> {
  const email = uniqueEmail(roles.join('-').toLowerCase());
  // The seed's actor: the system, which has no user stream of its own.
  const system = api.app.issueAccessToken({ id: 'system:seed', roles: ['ADMIN', 'AUDITOR'] }).accessToken;
  const signed = await postJson(`${api.url}/v1/auth/signup`, { email, password, name: 'Grace Hopper', roles }, bearer(system));
  expect(signed.status).toBe(201);
  const login = await postJson(`${api.url}/v1/auth/login`, { email, password });
  expect(login.status).toBe(200);
  return { id: String(signed.body.id), email, token: String(login.body.accessToken) };
}

const signUpAdmin = (token: string) =>
  postJson(`${api.url}/v1/auth/signup`, { email: uniqueEmail('new-admin'), password, name: 'Mallory', roles: ['ADMIN'] }, bearer(token));
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
    await api.side.handlers.user.handle(
      `user-${demoted.id}`,
      { type: 'RevokeRoles', data: { userId: demoted.id, roles: ['ADMIN'], revokedBy: { id: 'system:seed', roles: ['ADMIN'] } } },
      { commandId: randomUUID(), context: { actor: { id: 'system:seed', roles: ['ADMIN'] }, requestId: 'revoke', correlationId: 'revoke', causationId: 'revoke' } },
    );
    expect((await signUpAdmin(demoted.token)).status).toBe(403);
  });
});
