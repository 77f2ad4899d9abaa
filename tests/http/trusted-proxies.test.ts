import { randomUUID } from 'node:crypto';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { loadConfig } from '../../src/infrastructure/config/config.js';
import { postJson, startApi, startBackend, type TestApi, type TestBackend } from './support/command-api.fixture.js';

/**
 * The tests call over real HTTP from 127.0.0.1: that is the proxy nearest the service, and
 * `X-Forwarded-For` is what the proxies in front wrote, the client's own entries left-most.
 */
let backend: TestBackend;
const apis: TestApi[] = [];

const behind = async (TRUST_PROXY: string, authRateLimitMax = 10_000) => {
  const api = await startApi(backend, { trustProxy: loadConfig({ TRUST_PROXY }).TRUST_PROXY, authRateLimitMax });
  apis.push(api);
  return api;
};

beforeAll(async () => {
  backend = await startBackend();
}, 60_000);

afterAll(async () => {
  await Promise.all(apis.map((api) => api.close()));
  await backend.close();
});

const failedLogin = (api: TestApi, forwardedFor: string, requestId = `proxy-${randomUUID()}`) =>
  postJson(`${api.url}/v1/auth/login`, { email: `${randomUUID()}@example.test`, password: 'wrong password!' }, {
    'x-forwarded-for': forwardedFor,
    'x-request-id': requestId,
  });

/** The IP the security log kept for the failed login of this request. */
async function loggedIp(api: TestApi, forwardedFor: string): Promise<string | null> {
  const requestId = `proxy-${randomUUID()}`;
  expect((await failedLogin(api, forwardedFor, requestId)).status).toBe(401);
  const row = await backend.identityDb.selectFrom('security_events').select('ip').where('request_id', '=', requestId).executeTakeFirstOrThrow();
  return row.ip;
}

describe('TRUST_PROXY as the address of the one proxy in front, which appends the address it was called from', () => {
  it('takes the entry that proxy appended as the client, not a left-most one the client wrote itself', async () => {
    const api = await behind('127.0.0.1');

    expect(await loggedIp(api, '6.6.6.6, 203.0.113.9')).toBe('203.0.113.9');
  });

  it('counts the login rate limit per real client however it rotates a forged entry', async () => {
    const api = await behind('127.0.0.1', 3);

    const answers = [];
    for (let attempt = 1; attempt <= 4; attempt += 1) answers.push((await failedLogin(api, `6.6.6.${attempt}, 203.0.113.20`)).status);

    expect(answers).toEqual([401, 401, 401, 429]);
    expect((await failedLogin(api, '203.0.113.21')).status).toBe(401);
  });
});

describe('TRUST_PROXY as several proxies\' addresses', () => {
  it('takes the nearest address not among them as the client', async () => {
    const api = await behind('10.0.0.0/8, loopback');

    expect(await loggedIp(api, '6.6.6.6, 203.0.113.9, 10.1.2.3')).toBe('203.0.113.9');
  });

  it('believes nothing a caller that is not among them says, whatever it forges', async () => {
    const api = await behind('10.0.0.0/8');

    expect(await loggedIp(api, '6.6.6.6, 10.1.2.3')).toBe('127.0.0.1');
  });
});

describe('TRUST_PROXY=false', () => {
  it('takes the connection\'s address as the client and ignores X-Forwarded-For', async () => {
    const api = await behind('false');

    expect(await loggedIp(api, '6.6.6.6, 203.0.113.9')).toBe('127.0.0.1');
  });
});
