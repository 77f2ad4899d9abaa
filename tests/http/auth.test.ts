import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { commandContext } from '../../src/infrastructure/http/command-context.js';
import { requireAuth, requireRoles } from '../../src/infrastructure/http/plugins/auth.plugin.js';
import { handMadeJwt, startApi, startBackend, validClaims, type TestApi, type TestBackend } from './support/command-api.fixture.js';

let backend: TestBackend;
let api: TestApi;

beforeAll(async () => {
  backend = await startBackend();
  api = await startApi(backend, {
    routes: (app) => {
      app.get('/test/me', { preHandler: requireAuth }, async (request) => commandContext(request));
      app.get('/test/owners', { preHandler: requireRoles('OWNER', 'ADMIN') }, async (request) => request.actor);
    },
  });
}, 60_000);

afterAll(async () => {
  await api.close();
  await backend.close();
});

const get = (path: string, token?: string, headers: Record<string, string> = {}) =>
  fetch(`${api.url}${path}`, { headers: { ...headers, ...(token === undefined ? {} : { authorization: `Bearer ${token}` }) } });

async function expectRefused(response: Response, status: 401 | 403) {
  expect(response.status).toBe(status);
  expect(response.headers.get('content-type')).toMatch(/^application\/problem\+json/);
  const problem = (await response.json()) as { type: string };
  expect(problem.type).toBe(`https://bookable.example/problems/${status === 401 ? 'unauthorized' : 'forbidden'}`);
  if (status === 401) expect(response.headers.get('www-authenticate')).toMatch(/^Bearer /);
}

describe('caching', () => {
  it('keeps answers asked for with a token, and answers to writes, out of every cache; public reads stay cacheable', async () => {
    expect((await get('/test/me', handMadeJwt(validClaims()))).headers.get('cache-control')).toBe('no-store');
    expect((await get('/test/me', 'not-a-token')).headers.get('cache-control')).toBe('no-store');
    const login = await fetch(`${api.url}/v1/auth/login`, { method: 'POST', headers: { 'content-type': 'application/json' }, body: '{}' });
    expect(login.status).toBe(400);
    expect(login.headers.get('cache-control')).toBe('no-store');
    const live = await get('/health/live');
    expect(live.status).toBe(200);
    expect(live.headers.get('cache-control')).toBeNull();
  });
});

describe('access tokens', () => {
  it('lets a valid token through and builds the command context from the request', async () => {
    const response = await get('/test/me', handMadeJwt(validClaims()), {
      'x-request-id': 'req-1',
      'x-correlation-id': 'flow-9',
      'user-agent': 'spec/1.0',
    });
    expect(response.status).toBe(200);
    expect(await response.json()).toEqual({
      actor: { id: 'user-1', roles: ['CONSUMER'] },
      requestId: 'req-1',
      correlationId: 'flow-9',
      causationId: 'req-1',
      ip: '127.0.0.1',
      userAgent: 'spec/1.0',
    });
  });

  it('accepts the tokens the API itself issues', async () => {
    const { accessToken } = api.app.issueAccessToken({ id: 'owner-1', roles: ['OWNER'] });
    expect(await (await get('/test/owners', accessToken)).json()).toEqual({ id: 'owner-1', roles: ['OWNER'] });
  });

  it('refuses a missing token', async () => {
    await expectRefused(await get('/test/me'), 401);
    await expectRefused(await get('/test/me', ''), 401);
  });

  it('reads the scheme in any case, and refuses an Authorization header of another shape', async () => {
    expect((await get('/test/me', undefined, { authorization: `bearer ${handMadeJwt(validClaims())}` })).status).toBe(200);
    for (const authorization of ['Basic dXNlcjpwYXNz', 'Bearer', `Bearer ${handMadeJwt(validClaims())} extra`, `Token ${handMadeJwt(validClaims())}`]) {
      await expectRefused(await get('/test/me', undefined, { authorization }), 401);
    }
  });

  it('refuses an expired token, saying so', async () => {
    const past = Math.floor(Date.now() / 1000) - 3600;
    const response = await get('/test/me', handMadeJwt(validClaims({ iat: past - 900, exp: past })));
    expect(((await response.clone().json()) as { detail: string }).detail).toMatch(/expired/);
    await expectRefused(response, 401);
  });

  it('refuses a wrong audience or issuer', async () => {
    await expectRefused(await get('/test/me', handMadeJwt(validClaims({ aud: 'another-api' }))), 401);
    await expectRefused(await get('/test/me', handMadeJwt(validClaims({ iss: 'someone-else' }))), 401);
  });

  it('refuses tokens missing a required claim', async () => {
    for (const claim of ['sub', 'exp', 'iat', 'iss', 'aud']) {
      const claims = validClaims();
      delete claims[claim];
      await expectRefused(await get('/test/me', handMadeJwt(claims)), 401);
    }
    await expectRefused(await get('/test/me', handMadeJwt(validClaims({ roles: ['KING'] }))), 401);
  });

  it('refuses alg none, another algorithm, a tampered payload and a foreign key', async () => {
    const [header, payload] = handMadeJwt(validClaims()).split('.');
    const none = `${Buffer.from(JSON.stringify({ alg: 'none', typ: 'JWT' })).toString('base64url')}.${payload}.`;
    await expectRefused(await get('/test/me', none), 401);
    await expectRefused(await get('/test/me', handMadeJwt(validClaims(), { header: { alg: 'HS512', typ: 'JWT' } })), 401);
    const admin = Buffer.from(JSON.stringify(validClaims({ roles: ['ADMIN'] }))).toString('base64url');
    const signature = handMadeJwt(validClaims()).split('.')[2];
    await expectRefused(await get('/test/owners', `${header}.${admin}.${signature}`), 401);
    await expectRefused(await get('/test/me', handMadeJwt(validClaims(), { key: 'a-different-secret-of-the-same-length-000000' })), 401);
  });

  it('refuses a valid token without the required role with 403', async () => {
    await expectRefused(await get('/test/owners', handMadeJwt(validClaims({ roles: ['CONSUMER', 'PATIENT'] }))), 403);
    expect((await get('/test/owners', handMadeJwt(validClaims({ roles: ['ADMIN'] })))).status).toBe(200);
  });
});
