import { randomUUID } from 'node:crypto';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { hashRefreshToken } from '../../src/application/identity/identity.service.js';
import { formatPosition } from '../../src/application/ports/position.js';
import { requireAuth } from '../../src/infrastructure/http/plugins/auth.plugin.js';
import { Argon2PasswordHasher } from '../../src/infrastructure/identity/argon2-password-hasher.js';
import { keyExpired, postJson, startApi, startBackend, type TestApi, type TestBackend } from '../http/support/command-api.fixture.js';

let backend: TestBackend;
let api: TestApi;

beforeAll(async () => {
  backend = await startBackend();
  api = await startApi(backend, {
    routes: (app) => app.get('/test/me', { preHandler: requireAuth }, async (request) => request.actor),
  });
}, 60_000);

afterAll(async () => {
  await api.close();
  await backend.close();
});

const password = 'correct horse battery staple';
const uniqueEmail = (name: string) => `${name}-${randomUUID().slice(0, 8)}@example.com`;

const signUp = (body: Record<string, unknown>, headers: Record<string, string> = {}) =>
  postJson(`${api.url}/v1/auth/signup`, { password, name: 'Ada Lovelace', roles: ['CONSUMER'], ...body }, headers);
const logIn = (email: string, secret = password) => postJson(`${api.url}/v1/auth/login`, { email, password: secret });
const refresh = (refreshToken: unknown) => postJson(`${api.url}/v1/auth/refresh`, { refreshToken });
const me = (accessToken: unknown) => fetch(`${api.url}/test/me`, { headers: { authorization: `Bearer ${String(accessToken)}` } });

async function securityEvents(type: string) {
  return backend.identityDb.selectFrom('security_events').selectAll().where('type', '=', type).execute();
}

describe('signup', () => {
  it('creates the user: 201, a command result, and a UserRegistered event without the password, email and name sealed', async () => {
    const email = uniqueEmail('ada');
    const response = await signUp({ email }, { 'x-request-id': 'signup-1' });
    expect(response.status).toBe(201);
    const { id, streamId, version, position } = response.body;
    expect(streamId).toBe(`user-${String(id)}`);
    expect(version).toBe(0);
    expect(response.headers.get('etag')).toBe('"0"');
    expect(response.headers.get('event-position')).toBe(position);

    const read = await backend.eventStore.readStream(String(streamId));
    expect(read.status).toBe('found');
    const events = [];
    if (read.status === 'found') for await (const event of read.events) events.push(event);
    expect(events).toHaveLength(1);
    expect(formatPosition(events[0]?.position ?? { commit: 0n, prepare: 0n })).toBe(position);
    expect(events[0]).toMatchObject({
      type: 'UserRegistered',
      data: { userId: id, roles: ['CONSUMER'] },
      metadata: {
        actorId: id,
        requestId: 'signup-1',
        correlationId: 'signup-1',
        causationId: 'signup-1',
        schemaVersion: 1,
        personalData: { subjectId: id, fields: ['email', 'name'] },
      },
    });
    const stored = JSON.stringify(events.map(({ data, metadata }) => ({ data, metadata })));
    for (const secret of [password, email, 'Ada Lovelace']) expect(stored).not.toContain(secret);
    expect((await api.vault.reveal(events))[0]?.data).toEqual({ userId: id, email, name: 'Ada Lovelace', roles: ['CONSUMER'] });
    expect(JSON.stringify(api.logs)).not.toContain(password);
  });

  it('refuses an email already taken, whatever its letter case', async () => {
    const email = uniqueEmail('grace');
    expect((await signUp({ email })).status).toBe(201);
    const again = await signUp({ email: email.toUpperCase() });
    expect(again.status).toBe(409);
    expect(again.body.type).toBe('https://bookable.example/problems/email-taken');
  });

  it('lets exactly one of two concurrent signups for one email through', async () => {
    const email = uniqueEmail('race');
    const statuses = (await Promise.all([signUp({ email }), signUp({ email: email.toUpperCase() })])).map((r) => r.status).sort();
    expect(statuses).toEqual([201, 409]);
  });

  it('refuses a field it does not know, naming it, and creates no one', async () => {
    const email = `extra-${randomUUID()}@example.com`;
    const response = await signUp({ email, isAdmin: true });
    expect(response.status).toBe(400);
    expect(JSON.stringify(response.body.errors)).toContain('isAdmin');
    expect((await logIn(email)).status).toBe(401);
    expect((await postJson(`${api.url}/v1/auth/login`, { email, password, remember: true })).status).toBe(400);
  });

  it('refuses a control character in the name, naming the field, and creates no one', async () => {
    for (const name of ['Ada\u0001Lovelace', '\u001b[2JAda', 'Ada\u007f']) {
      const email = uniqueEmail('control');
      const response = await signUp({ email, name });
      expect(response.status, JSON.stringify(name)).toBe(400);
      expect(response.body.errors).toEqual([{ path: 'body.name', message: 'must not contain control characters' }]);
      expect((await logIn(email)).status).toBe(401);
    }
  });

  it('refuses a short password, naming the field', async () => {
    const response = await signUp({ email: uniqueEmail('short'), password: 'too-short' });
    expect(response.status).toBe(400);
    expect(response.body.errors).toEqual([{ path: 'body.password', message: 'must be at least 12 characters' }]);
  });

  it('counts characters, not UTF-16 units: eleven accented letters typed decomposed, or six emoji, are too short', async () => {
    for (const short of ['éèêëàâäôöûü'.normalize('NFD'), '🙂🙃😀😁😂🤣']) {
      expect(short.length).toBeGreaterThanOrEqual(12);
      const response = await signUp({ email: uniqueEmail('short'), password: short });
      expect(response.status).toBe(400);
      expect(response.body.errors).toEqual([{ path: 'body.password', message: 'must be at least 12 characters' }]);
    }
    expect((await signUp({ email: uniqueEmail('long'), password: 'éèêëàâäôöûüç'.normalize('NFD') })).status).toBe(201);
  });

  it('grants ADMIN only when an admin signs someone up, and AUDITOR only when an admin who is an auditor does', async () => {
    const self = await signUp({ email: uniqueEmail('sneaky'), roles: ['AUDITOR'] });
    expect(self.status).toBe(403);
    const bearer = (roles: ('ADMIN' | 'AUDITOR')[]) => ({ authorization: `Bearer ${api.app.issueAccessToken({ id: 'admin-1', roles }).accessToken}` });
    expect((await signUp({ email: uniqueEmail('admin'), roles: ['ADMIN'] }, bearer(['ADMIN']))).status).toBe(201);
    // An admin making an auditor account would read through the audit trail what admins are not shown.
    expect((await signUp({ email: uniqueEmail('auditor'), roles: ['AUDITOR'] }, bearer(['ADMIN']))).status).toBe(403);
    expect((await signUp({ email: uniqueEmail('auditor'), roles: ['AUDITOR'] }, bearer(['ADMIN', 'AUDITOR']))).status).toBe(201);
  });
});

describe('passwords in another Unicode spelling', () => {
  // The same password as two keyboards may send it: "è" as one code point, or "e" and an accent.
  const composed = 'crème brûlée à la française';
  const decomposed = composed.normalize('NFD');

  it('logs in with a password typed composed after signing up with it decomposed, and the other way round', async () => {
    expect(decomposed).not.toBe(composed);
    const first = uniqueEmail('accents');
    expect((await signUp({ email: first, password: decomposed })).status).toBe(201);
    expect((await logIn(first, composed)).status).toBe(200);
    const second = uniqueEmail('accents');
    expect((await signUp({ email: second, password: composed })).status).toBe(201);
    expect((await logIn(second, decomposed)).status).toBe(200);
    expect((await logIn(second, 'creme brulee a la francaise')).status).toBe(401);
  });

  it('still logs in whoever signed up before passwords were normalised, with the password as they typed it', async () => {
    const email = uniqueEmail('legacy');
    const id = String((await signUp({ email, password: decomposed })).body.id);
    const typedAsIs = await new Argon2PasswordHasher().hash(decomposed);
    await backend.identityDb.updateTable('credentials').set({ password_hash: typedAsIs }).where('user_id', '=', id).execute();
    expect((await logIn(email, decomposed)).status).toBe(200);
  });
});

describe('login, refresh and logout', () => {
  let email: string;
  let userId: unknown;

  beforeAll(async () => {
    email = uniqueEmail('session');
    userId = (await signUp({ email, roles: ['CONSUMER', 'OWNER'] })).body.id;
  });

  it('logs in with the email in any case and returns a working token pair', async () => {
    const response = await logIn(email.toUpperCase());
    expect(response.status).toBe(200);
    expect(response.body).toMatchObject({ tokenType: 'Bearer', expiresIn: 900 });
    expect(await (await me(response.body.accessToken)).json()).toEqual({ id: userId, roles: ['CONSUMER', 'OWNER'] });
  });

  it('refuses a wrong password and an unknown email alike', async () => {
    const wrong = await logIn(email, 'not the password at all');
    const unknown = await logIn(uniqueEmail('nobody'));
    expect([wrong.status, unknown.status]).toEqual([401, 401]);
    expect(wrong.body.type).toBe(unknown.body.type);
    expect(wrong.body.detail).toBe(unknown.body.detail);
  });

  it('rotates the refresh token on every use', async () => {
    const first = (await logIn(email)).body.refreshToken;
    const second = await refresh(first);
    expect(second.status).toBe(200);
    expect(second.body.refreshToken).not.toBe(first);
    expect((await me(second.body.accessToken)).status).toBe(200);
    const third = await refresh(second.body.refreshToken);
    expect(third.status).toBe(200);
  });

  it('revokes the whole family when a rotated token is used again', async () => {
    const first = (await logIn(email)).body.refreshToken;
    const second = (await refresh(first)).body.refreshToken;
    const replay = await refresh(first);
    expect(replay.status).toBe(401);
    expect(replay.body.type).toBe('https://bookable.example/problems/invalid-refresh-token');
    expect((await refresh(second)).status).toBe(401);
    expect((await securityEvents('refresh_token_reused')).map((event) => event.user_id)).toContain(userId);
  });

  it('refuses a refresh token unused for 30 days', async () => {
    const token = (await logIn(email)).body.refreshToken;
    api.clock.advance(30 * 24 * 3_600_000 + 1);
    expect((await refresh(token)).status).toBe(401);
  });

  it('refuses an unknown refresh token', async () => {
    expect((await refresh('made-up-token')).status).toBe(401);
  });

  it('logs out by revoking the family, for the token holder only', async () => {
    const session = (await logIn(email)).body;
    const anonymous = await postJson(`${api.url}/v1/auth/logout`, { refreshToken: session.refreshToken });
    expect(anonymous.status).toBe(401);
    const out = await postJson(`${api.url}/v1/auth/logout`, { refreshToken: session.refreshToken }, { authorization: `Bearer ${String(session.accessToken)}` });
    expect(out.status).toBe(204);
    expect((await refresh(session.refreshToken)).status).toBe(401);
  });
});

describe('lockout', () => {
  it('locks an account for 15 minutes after 5 failed logins in a row', async () => {
    const email = uniqueEmail('locked');
    expect((await signUp({ email })).status).toBe(201);
    for (let attempt = 1; attempt <= 4; attempt += 1) expect((await logIn(email, 'wrong password!')).status).toBe(401);
    const fifth = await logIn(email, 'wrong password!');
    expect(fifth.status).toBe(429);
    expect(fifth.body.type).toBe('https://bookable.example/problems/account-locked');
    expect(fifth.headers.get('retry-after')).toBe('900');

    // Locked: even the right password is not checked.
    expect((await logIn(email)).status).toBe(429);
    api.clock.advance(14 * 60_000);
    const stillLocked = await logIn(email);
    expect(stillLocked.status).toBe(429);
    expect(stillLocked.headers.get('retry-after')).toBe('60');
    api.clock.advance(61_000);
    expect((await logIn(email)).status).toBe(200);
    expect(await securityEvents('account_locked')).toHaveLength(1);
    expect((await securityEvents('login_while_locked')).length).toBeGreaterThanOrEqual(2);
  });

  it('keeps counting failures an instance from before the idle window counted without a time (a rolling deploy)', async () => {
    const email = uniqueEmail('mixed-fleet');
    const signed = await signUp({ email });
    expect(signed.status).toBe(201);
    // Four failures as older code records them: a count, and no time of the last one.
    await backend.identityDb.updateTable('credentials').set({ failed_logins: 4, last_attempt_at: null }).where('user_id', '=', String(signed.body.id)).execute();
    expect((await logIn(email, 'wrong password!')).status).toBe(429);
  });

  it('counts failures in a row: a success starts the count over', async () => {
    const email = uniqueEmail('forgetful');
    expect((await signUp({ email })).status).toBe(201);
    for (let attempt = 1; attempt <= 4; attempt += 1) expect((await logIn(email, 'wrong password!')).status).toBe(401);
    expect((await logIn(email)).status).toBe(200);
    for (let attempt = 1; attempt <= 4; attempt += 1) expect((await logIn(email, 'wrong password!')).status).toBe(401);
    expect((await logIn(email)).status).toBe(200);
  });
});

describe('erasure', () => {
  it('is final: a signup replayed after its key expired does not bring the login back, and a token that outlived it opens nothing', async () => {
    const email = uniqueEmail('gone');
    const key = randomUUID();
    const signed = await signUp({ email }, { 'idempotency-key': key });
    expect(signed.status).toBe(201);
    const userId = String(signed.body.id);
    expect((await logIn(email)).status).toBe(200);
    const admin = { id: randomUUID(), roles: ['ADMIN' as const] };
    const erased = await postJson(`${api.url}/v1/admin/subjects/${userId}/erase`, {}, { authorization: `Bearer ${api.app.issueAccessToken(admin).accessToken}` });
    expect(erased.status).toBe(200);

    api.clock.advance(25 * 3_600_000);
    await keyExpired(backend, key);
    const replayed = await signUp({ email }, { 'idempotency-key': key });
    expect(replayed.status).toBe(409);
    expect(replayed.body.type).toBe('https://bookable.example/problems/account-erased');
    expect((await logIn(email)).status).toBe(401);
    expect(await backend.identityDb.selectFrom('credentials').select('user_id').where('user_id', '=', userId).execute()).toEqual([]);

    // A rotation that raced the erasure's delete wrote its new token after it.
    const survivor = randomUUID();
    const issuedAt = api.clock.now();
    await backend.identityDb
      .insertInto('refresh_tokens')
      .values({ token_hash: hashRefreshToken(survivor), family_id: randomUUID(), user_id: userId, status: 'live', issued_at: issuedAt, expires_at: new Date(issuedAt.getTime() + 86_400_000) })
      .execute();
    expect((await refresh(survivor)).status).toBe(401);
  });
});
