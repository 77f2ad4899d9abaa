import { randomUUID } from 'node:crypto';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import type { AttemptPolicy } from '../../src/application/identity/identity.ports.js';
import { lockoutPolicy } from '../../src/application/identity/identity.service.js';
import { PgCredentialStore } from '../../src/infrastructure/identity/pg-credential-store.js';
import { postJson, startApi, startBackend, type TestApi, type TestBackend } from '../http/support/command-api.fixture.js';

// The lockout must not tell which emails have accounts: an email without one fails, locks, says
// how long for, and is forgotten exactly as an account does.

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
const wrong = 'wrong password!';
const uniqueEmail = (name: string) => `${name}-${randomUUID().slice(0, 8)}@example.com`;

const signUp = (email: string) => postJson(`${api.url}/v1/auth/signup`, { email, password, name: 'Ada Lovelace', roles: ['CONSUMER'] });
const logIn = (email: string, secret = wrong) => postJson(`${api.url}/v1/auth/login`, { email, password: secret });

/** What a client sees of each of `count` logins in a row. */
async function answers(email: string, count: number, secret = wrong) {
  const seen = [];
  for (let attempt = 0; attempt < count; attempt += 1) {
    const response = await logIn(email, secret);
    seen.push({ status: response.status, type: response.body.type, retryAfter: response.headers.get('retry-after') });
  }
  return seen;
}

const unauthorized = { status: 401, type: 'https://bookable.example/problems/invalid-credentials', retryAfter: null };
const locked = (retryAfter: string) => ({ status: 429, type: 'https://bookable.example/problems/account-locked', retryAfter });

async function registered(name: string) {
  const email = uniqueEmail(name);
  expect((await signUp(email)).status).toBe(201);
  return email;
}

describe('lockout of an email without an account', () => {
  it('locks after the same 5 failures as an account, with the same 429 and Retry-After', async () => {
    const known = await registered('known');
    const unknown = uniqueEmail('unknown');
    const expected = [unauthorized, unauthorized, unauthorized, unauthorized, locked('900'), locked('900'), locked('900')];

    expect(await answers(known, 7)).toEqual(expected);
    expect(await answers(unknown, 7)).toEqual(expected);
  });

  it('stays locked for as long as an account, whatever the password, then counts afresh', async () => {
    const known = await registered('known');
    const unknown = uniqueEmail('unknown');
    await answers(known, lockoutPolicy.maxFailedAttempts);
    await answers(unknown, lockoutPolicy.maxFailedAttempts);

    api.clock.advance(14 * 60_000);
    expect(await answers(unknown, 1, password)).toEqual([locked('60')]);
    expect(await answers(known, 1, password)).toEqual([locked('60')]);
    api.clock.advance(61_000);
    expect(await answers(unknown, 5)).toEqual(await answers(known, 5));
  });

  it('forgets an idle count alike: after 15 quiet minutes both count from one again', async () => {
    const known = await registered('known');
    const unknown = uniqueEmail('unknown');
    await answers(known, lockoutPolicy.maxFailedAttempts - 1);
    await answers(unknown, lockoutPolicy.maxFailedAttempts - 1);

    api.clock.advance(lockoutPolicy.forgetAfterMs + 1_000);
    const expected = [unauthorized, unauthorized, unauthorized, unauthorized, locked('900')];
    expect(await answers(known, 5)).toEqual(expected);
    expect(await answers(unknown, 5)).toEqual(expected);
  });

  it('spells the email as an account would: letter case shares one count, other spellings do not', async () => {
    const unknown = uniqueEmail('unknown');
    await answers(unknown, lockoutPolicy.maxFailedAttempts - 1);
    expect(await answers(unknown.toUpperCase(), 1)).toEqual([locked('900')]);
    // Not trimmed, as `findByEmail` does not trim: ` a@x` is another email than `a@x`.
    expect(await answers(` ${unknown}`, 1)).toEqual([unauthorized]);
  });

  it('records failures and the lock without a user and without the email', async () => {
    const unknown = uniqueEmail('unlogged');
    const requestId = `unlogged-${randomUUID()}`;
    for (let attempt = 1; attempt <= lockoutPolicy.maxFailedAttempts + 1; attempt += 1) {
      await postJson(`${api.url}/v1/auth/login`, { email: unknown, password: wrong }, { 'x-request-id': `${requestId}-${attempt}` });
    }

    const logged = await backend.identityDb.selectFrom('security_events').selectAll().where('request_id', 'like', `${requestId}-%`).orderBy('id').execute();
    expect(logged.map((event) => [event.type, event.user_id, event.details.reason])).toEqual([
      ...Array.from({ length: lockoutPolicy.maxFailedAttempts }, () => ['login_failed', null, 'unknown email']),
      ['account_locked', null, 'unknown email'],
      ['login_while_locked', null, 'unknown email'],
    ]);
    const everything = JSON.stringify([
      await backend.identityDb.selectFrom('security_events').selectAll().execute(),
      await backend.identityDb.selectFrom('login_attempts_unknown').selectAll().execute(),
    ]);
    expect(everything).not.toContain(unknown);
  });

  it('does not pass a lock on to an account made for the email: it counts from zero', async () => {
    const email = uniqueEmail('late');
    expect(await answers(email, lockoutPolicy.maxFailedAttempts)).toContainEqual(locked('900'));

    expect((await signUp(email)).status).toBe(201);
    expect((await logIn(email, password)).status).toBe(200);
    expect(await answers(email, 5)).toEqual([unauthorized, unauthorized, unauthorized, unauthorized, locked('900')]);
  });
});

describe('the counts of emails without an account', () => {
  const store = () => new PgCredentialStore(backend.identityDb);
  const policyAt = (now: Date): AttemptPolicy => ({
    maxAttempts: lockoutPolicy.maxFailedAttempts,
    now,
    lockUntil: new Date(now.getTime() + lockoutPolicy.lockoutMs),
    forgetBefore: new Date(now.getTime() - lockoutPolicy.forgetAfterMs),
  });
  const rowCount = async () => (await backend.identityDb.selectFrom('login_attempts_unknown').select('email_hmac').execute()).length;

  it('are swept in bounded batches once they no longer count; a lock is kept until it ends', async () => {
    await backend.identityDb.deleteFrom('login_attempts_unknown').execute();
    const start = new Date('2030-01-01T00:00:00Z');
    for (let email = 0; email < 3; email += 1) await store().reserveUnknownEmailAttempt(uniqueEmail('swept'), policyAt(start));
    // A lock longer than the count's window, to see that the sweep waits for the lock.
    const longLock = { ...policyAt(start), lockUntil: new Date(start.getTime() + 60 * 60_000) };
    const lockedEmail = uniqueEmail('locked');
    for (let attempt = 0; attempt < lockoutPolicy.maxFailedAttempts; attempt += 1) await store().reserveUnknownEmailAttempt(lockedEmail, longLock);

    const stillCounting = new Date(start.getTime() + lockoutPolicy.forgetAfterMs - 1);
    expect(await store().sweepUnknownEmailAttempts(policyAt(stillCounting))).toBe(0);
    const forgotten = new Date(start.getTime() + lockoutPolicy.forgetAfterMs + 1);
    expect(await store().sweepUnknownEmailAttempts(policyAt(forgotten), 2)).toBe(2);
    expect(await store().sweepUnknownEmailAttempts(policyAt(forgotten), 2)).toBe(1);
    expect(await store().reserveUnknownEmailAttempt(lockedEmail, policyAt(forgotten))).toEqual({ outcome: 'locked', until: longLock.lockUntil });
    expect(await rowCount()).toBe(1);
    const unlocked = new Date(longLock.lockUntil.getTime() + 1);
    expect(await store().sweepUnknownEmailAttempts(policyAt(unlocked))).toBe(1);
    expect(await rowCount()).toBe(0);
  });
});
