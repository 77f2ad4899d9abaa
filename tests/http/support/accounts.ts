import { randomUUID } from 'node:crypto';
import { expect } from 'vitest';
import { postJson, type TestApi } from './command-api.fixture.js';

export const accountPassword = 'correct horse battery staple';

/** A real account with `roles`, signed up by the system (as the seed does) and logged in: its id, email and access token. */
export async function loggedInAccount(api: TestApi, roles: string[]): Promise<{ id: string; email: string; token: string }> {
  const email = `${roles.join('-').toLowerCase()}-${randomUUID().slice(0, 8)}@example.com`;
  // The seed's actor: the system, which has no user stream of its own.
  const system = api.app.issueAccessToken({ id: 'system:seed', roles: ['ADMIN', 'AUDITOR'] }).accessToken;
  const signed = await postJson(`${api.url}/v1/auth/signup`, { email, password: accountPassword, name: 'Grace Hopper', roles }, { authorization: `Bearer ${system}` });
  expect(signed.status).toBe(201);
  const login = await postJson(`${api.url}/v1/auth/login`, { email, password: accountPassword });
  expect(login.status).toBe(200);
  return { id: String(signed.body.id), email, token: String(login.body.accessToken) };
}
