import { createHmac, randomUUID } from 'node:crypto';
import { sql } from 'kysely';
import { afterAll, beforeAll, describe, expect, it, vi } from 'vitest';
import { z } from 'zod';
import { canonicalJson } from '../../src/application/audit/hash-chain.js';
import { commandResultSchema, sendCommandResult } from '../../src/infrastructure/http/command-result.js';
import { requireAuth, requireRoles } from '../../src/infrastructure/http/plugins/auth.plugin.js';
import { PgIdempotencyStore, type StoredResponse } from '../../src/infrastructure/idempotency/pg-idempotency-store.js';
import { deterministicUuid } from '../../src/application/ids.js';
import { answerLost, postJson, secret, startApi, startBackend, type TestApi, type TestBackend } from './support/command-api.fixture.js';
import { sleep } from '../../src/application/sleep.js';
import { listingInput } from '../support/command-side.js';

let backend: TestBackend;
let api: TestApi;
/** Effects of the test route, by command id: what "appended once" means here. */
const effects: string[] = [];
let failNext = false;
/** Runs of the test route whose response stands for credentials. */
let sessionsIssued = 0;
/** Runs of the test routes that take raw or unprintable bodies. */
let uploads = 0;
let unkeyedRuns = 0;

/** Were the hook that hashes a request to write this body out as JSON, the request would fail. */
function unprintable<T extends object>(body: T): T {
  return Object.defineProperty(body, 'toJSON', {
    value: () => {
      throw new Error('this body was written out as JSON');
    },
  });
}

beforeAll(async () => {
  backend = await startBackend();
  api = await startApi(backend, {
    routes: (app) => {
      app.post(
        '/test/orders',
        {
          preHandler: requireRoles('CONSUMER'),
          schema: { body: z.object({ item: z.string() }), response: { 201: commandResultSchema } },
        },
        async (request, reply) => {
          // Slow enough that concurrent duplicates find the first one in flight.
          await sleep(150);
          if (failNext) {
            failNext = false;
            throw new Error('database went away');
          }
          effects.push(request.commandId);
          const result = { id: request.commandId, streamId: `order-${request.commandId}`, version: effects.length, position: { commit: 7n, prepare: BigInt(effects.length) } };
          return sendCommandResult(reply, result, 201);
        },
      );
      // Stands for login: a response that carries credentials, never stored.
      app.post('/test/sessions', { config: { idempotency: 'no-replay' }, schema: { body: z.object({ user: z.string() }) } }, async () => {
        await sleep(150);
        sessionsIssued += 1;
        return { token: randomUUID() };
      });
      app.get('/test/me', { preHandler: requireAuth }, async (request) => request.actor);
      void app.register(async (scope) => {
        // Stands for a route that takes its body as raw bytes (as the Stripe webhook does).
        scope.addContentTypeParser('application/octet-stream', { parseAs: 'buffer' }, (_request, body, done) => done(null, unprintable(Buffer.from(body))));
        scope.post('/test/uploads', async (_request, reply) => {
          uploads += 1;
          return reply.code(201).send({ upload: uploads });
        });
        // Stands for the Stripe webhook: no Idempotency-Key, whatever the client sends.
        scope.addContentTypeParser('application/x-unprintable', { parseAs: 'string' }, (_request, body, done) => done(null, unprintable({ body })));
        scope.post('/test/unkeyed', { config: { idempotency: false } }, async () => {
          unkeyedRuns += 1;
          return { run: unkeyedRuns };
        });
      });
    },
  });
}, 60_000);

afterAll(async () => {
  await api.close();
  await backend.close();
});

/** Moves a key's times `ms` into the past: as if that long had gone by on the database's clock, which keys expire by. */
async function age(key: string, ms: number): Promise<void> {
  const ago = sql`make_interval(secs => ${ms / 1000})`;
  await sql`UPDATE idempotency_keys SET created_at = created_at - ${ago}, answered_at = answered_at - ${ago}, expires_at = expires_at - ${ago} WHERE key = ${key}`.execute(backend.idempotencyDb);
}

const consumer = () => api.app.issueAccessToken({ id: `consumer-${randomUUID()}`, roles: ['CONSUMER'] }).accessToken;
const order = (token: string, key: string | undefined, item = 'lamp') =>
  postJson(`${api.url}/test/orders`, { item }, { authorization: `Bearer ${token}`, ...(key === undefined ? {} : { 'idempotency-key': key }) });
const owner = () => api.app.issueAccessToken({ id: `owner-${randomUUID()}`, roles: ['OWNER'] }).accessToken;
// Counted in the table: what "appended" means, whatever the response says.
async function eventCount(): Promise<number> {
  const { rows } = await backend.pool.query<{ count: string }>('SELECT count(*) FROM events');
  return Number(rows[0]?.count);
}

describe('Idempotency-Key', () => {
  it('runs a POST sent ten times at once with one key exactly once', async () => {
    const token = consumer();
    const key = randomUUID();
    const before = effects.length;
    const responses = await Promise.all(Array.from({ length: 10 }, () => order(token, key)));

    expect(effects.length - before).toBe(1);
    const originals = responses.filter((r) => r.status === 201 && r.headers.get('idempotent-replayed') === null);
    expect(originals).toHaveLength(1);
    const original = originals[0];
    for (const response of responses) {
      if (response.status === 409) {
        expect(response.body.type).toBe('https://bookable.example/problems/idempotency-key-in-flight');
      } else {
        expect(response.status).toBe(201);
        expect(response.text).toBe(original?.text);
        expect(response.headers.get('etag')).toBe(original?.headers.get('etag'));
      }
    }

    const retry = await order(token, key);
    expect(retry.status).toBe(201);
    expect(retry.headers.get('idempotent-replayed')).toBe('true');
    expect(retry.text).toBe(original?.text);
    expect(retry.headers.get('event-position')).toBe(original?.headers.get('event-position'));
    expect(retry.headers.get('content-type')).toBe(original?.headers.get('content-type'));
    expect(effects.length - before).toBe(1);
  });

  it('counts each replayed answer in idempotent_replays_total, by route', async () => {
    const replays = async () => {
      const text = await (await fetch(`${api.url}/metrics`)).text();
      const series = 'idempotent_replays_total{route="/test/orders"} ';
      const line = text.split('\n').find((candidate) => candidate.startsWith(series));
      return line === undefined ? 0 : Number(line.slice(series.length));
    };
    // Given a request answered under a key
    const token = consumer();
    const key = randomUUID();
    expect((await order(token, key)).status).toBe(201);
    const before = await replays();

    // When it is sent again twice, and another request runs afresh under a new key
    expect((await order(token, key)).headers.get('idempotent-replayed')).toBe('true');
    expect((await order(token, key)).headers.get('idempotent-replayed')).toBe('true');
    expect((await order(token, randomUUID())).headers.get('idempotent-replayed')).toBeNull();

    // Then only the two replays are counted
    expect(await replays()).toBe(before + 2);
  });

  it('derives the command id from caller, key and request, so a retry carries the same one', async () => {
    const token = consumer();
    const key = randomUUID();
    const first = await order(token, key);
    const other = await order(consumer(), key);
    expect(first.body.id).not.toBe(other.body.id);
    expect((await order(token, key)).body.id).toBe(first.body.id);
  });

  it('answers 422 when the key comes back with a different body', async () => {
    const token = consumer();
    const key = randomUUID();
    expect((await order(token, key, 'lamp')).status).toBe(201);
    const different = await order(token, key, 'chair');
    expect(different.status).toBe(422);
    expect(different.body.type).toBe('https://bookable.example/problems/idempotency-key-reused');
  });

  it('releases the key when the first attempt fails on our side, so the retry runs', async () => {
    const token = consumer();
    const key = randomUUID();
    failNext = true;
    expect((await order(token, key)).status).toBe(500);
    const retry = await order(token, key);
    expect(retry.status).toBe(201);
    expect(retry.headers.get('idempotent-replayed')).toBeNull();
  });

  it('scopes keys per caller, and runs requests without a key every time', async () => {
    const before = effects.length;
    const key = randomUUID();
    await order(consumer(), key);
    await order(consumer(), key);
    const token = consumer();
    await order(token, undefined);
    await order(token, undefined);
    expect(effects.length - before).toBe(4);
  });

  it('refuses a key longer than 255 characters, and does not spend a key on a refused role', async () => {
    const tooLong = await order(consumer(), 'k'.repeat(256));
    expect(tooLong.status).toBe(400);
    expect(tooLong.body.errors).toEqual([expect.objectContaining({ path: 'headers.idempotency-key' })]);

    const key = randomUUID();
    const { accessToken: owner } = api.app.issueAccessToken({ id: 'owner-1', roles: ['OWNER'] });
    expect((await order(owner, key)).status).toBe(403);
    const { accessToken: sameIdAsConsumer } = api.app.issueAccessToken({ id: 'owner-1', roles: ['OWNER', 'CONSUMER'] });
    expect((await order(sameIdAsConsumer, key)).status).toBe(201);
  });

  it('forgets keys after the time to live, counted on the database\'s clock', async () => {
    const token = consumer();
    const key = randomUUID();
    const first = await order(token, key);
    await age(key, 24 * 3_600_000 - 60_000);
    expect((await order(token, key)).headers.get('idempotent-replayed')).toBe('true');

    await age(key, 60_001);
    const later = await order(token, key);
    expect(later.headers.get('idempotent-replayed')).toBeNull();
    expect(later.body.version).not.toBe(first.body.version);
  });

  it('hashes a raw body as its bytes, never written out as JSON', async () => {
    const upload = (bytes: string, key: string) =>
      fetch(`${api.url}/test/uploads`, { method: 'POST', headers: { 'content-type': 'application/octet-stream', 'idempotency-key': key }, body: bytes });
    const key = randomUUID();
    const before = uploads;

    const first = await upload('%PDF-1.7 …', key);
    expect(first.status).toBe(201);
    const again = await upload('%PDF-1.7 …', key);
    expect(again.status).toBe(201);
    expect(again.headers.get('idempotent-replayed')).toBe('true');
    expect(await again.text()).toBe(await first.text());
    expect((await upload('%PDF-1.7 other', key)).status).toBe(422);
    expect(uploads - before).toBe(1);
  });

  it('does not hash the request on a route that takes no key, whatever headers it comes with', async () => {
    const before = unkeyedRuns;
    const send = () => fetch(`${api.url}/test/unkeyed`, { method: 'POST', headers: { 'content-type': 'application/x-unprintable', 'idempotency-key': 'same-key' }, body: 'event' });
    const first = await send();
    expect(first.status).toBe(200);
    const second = await send();
    expect(second.status).toBe(200);
    expect(second.headers.get('idempotent-replayed')).toBeNull();
    expect(unkeyedRuns - before).toBe(2);
  });

  it('stores responses encrypted', async () => {
    const rows = await backend.idempotencyDb.selectFrom('idempotency_keys').select(['response_body']).where('status', '=', 'completed').execute();
    expect(rows.length).toBeGreaterThan(0);
    for (const row of rows) expect(row.response_body?.toString('utf8')).not.toContain('streamId');
  });
});

describe('PgIdempotencyStore', () => {
  const terms = { leaseMs: 60_000, ttlMs: 86_400_000 };
  // A real lease, short enough to wait out: leases run on the database's clock, not a fake one.
  const dying = { ...terms, leaseMs: 300 };
  const lapse = () => sleep(400);

  it('lets a retry take over a claim whose request died (its lease ran out), once', async () => {
    const store = new PgIdempotencyStore(backend.idempotencyDb, secret);
    const id = { scope: 'someone', key: randomUUID() };
    expect(await store.claim(id, 'hash', dying)).toEqual({ outcome: 'claimed', token: expect.any(String) });
    expect(await store.claim(id, 'hash', terms)).toEqual({ outcome: 'in_flight' });
    await lapse();
    expect(await store.claim(id, 'hash', terms)).toEqual({ outcome: 'claimed', token: expect.any(String) });
    expect(await store.claim(id, 'hash', terms)).toEqual({ outcome: 'in_flight' });
    expect(await store.claim(id, 'other', terms)).toEqual({ outcome: 'mismatch' });
  });

  it('leaves a claim taken over to the request that took it: the first one can neither free nor complete it', async () => {
    const store = new PgIdempotencyStore(backend.idempotencyDb, secret);
    const id = { scope: 'someone', key: randomUUID() };
    const response = (status: number) => ({ status, headers: {}, body: Buffer.from(`answer ${status}`) });
    const first = await store.claim(id, 'hash', dying);
    await lapse();
    const second = await store.claim(id, 'hash', terms);
    if (first.outcome !== 'claimed' || second.outcome !== 'claimed') throw new Error('both should have claimed the key');

    // The first request, presumed dead, was only slow: its 5xx and its answer come too late.
    await store.release({ ...id, token: first.token });
    expect(await store.claim(id, 'hash', terms)).toEqual({ outcome: 'in_flight' });
    await store.complete({ ...id, token: first.token }, response(201));
    expect(await store.renew({ ...id, token: first.token }, terms.leaseMs)).toBe(false);
    expect(await store.claim(id, 'hash', terms)).toEqual({ outcome: 'in_flight' });

    expect(await store.renew({ ...id, token: second.token }, terms.leaseMs)).toBe(true);
    await store.complete({ ...id, token: second.token }, response(202));
    const replayed = await store.claim(id, 'hash', terms);
    expect(replayed).toMatchObject({ outcome: 'completed', response: { status: 202 } });
  });

  it('keeps a claim its request renews past its first lease', async () => {
    const store = new PgIdempotencyStore(backend.idempotencyDb, secret);
    const id = { scope: 'someone', key: randomUUID() };
    const claim = await store.claim(id, 'hash', dying);
    if (claim.outcome !== 'claimed') throw new Error('the key should have been claimed');
    await sleep(200);
    expect(await store.renew({ ...id, token: claim.token }, terms.leaseMs)).toBe(true);
    await sleep(200);
    expect(await store.claim(id, 'hash', terms)).toEqual({ outcome: 'in_flight' });
  });

  it('sweeps expired keys', async () => {
    const store = new PgIdempotencyStore(backend.idempotencyDb, secret);
    await store.claim({ scope: 'sweep', key: randomUUID() }, 'hash', { ...terms, ttlMs: 0 });
    expect(await store.sweep()).toBeGreaterThanOrEqual(1);
    const left = await backend.idempotencyDb.selectFrom('idempotency_keys').select('key').where('expires_at', '<=', sql<Date>`now()`).execute();
    expect(left).toEqual([]);
  });
});

describe('Idempotency-Key on signup (anonymous)', () => {
  it('replays the signup instead of registering twice', async () => {
    const key = randomUUID();
    const body = { email: `replay-${key.slice(0, 8)}@example.com`, password: 'correct horse battery staple', name: 'Ada', roles: ['CONSUMER'] };
    const first = await postJson(`${api.url}/v1/auth/signup`, body, { 'idempotency-key': key });
    const second = await postJson(`${api.url}/v1/auth/signup`, body, { 'idempotency-key': key });
    expect(first.status).toBe(201);
    expect(second.status).toBe(201);
    expect(second.headers.get('idempotent-replayed')).toBe('true');
    expect(second.body).toEqual(first.body);
  });

  it('leaves the password out of the request hash: a retry with another password replays, and the row is no guessing oracle', async () => {
    // Given a signup under a key
    const key = randomUUID();
    const body = { email: `secret-${key.slice(0, 8)}@example.com`, password: 'correct horse battery staple', name: 'Ada', roles: ['CONSUMER'] };
    const first = await postJson(`${api.url}/v1/auth/signup`, body, { 'idempotency-key': key });
    expect(first.status).toBe(201);
    const [stored] = await backend.idempotencyDb.selectFrom('idempotency_keys').select('request_hash').where('key', '=', key).execute();

    // When it is retried under the key with only the password changed
    const retry = await postJson(`${api.url}/v1/auth/signup`, { ...body, password: 'another password entirely' }, { 'idempotency-key': key });

    // Then it is the same request: replayed (the account keeps the first password), the row unchanged
    expect(retry.status).toBe(201);
    expect(retry.headers.get('idempotent-replayed')).toBe('true');
    expect(retry.body).toEqual(first.body);
    const rows = await backend.idempotencyDb.selectFrom('idempotency_keys').select('request_hash').where('key', '=', key).execute();
    expect(rows).toEqual([stored]);
    // And one HMAC of the body with the right password does not confirm it
    const hashKey = createHmac('sha256', secret).update('idempotency-request-hash').digest();
    const withPassword = createHmac('sha256', hashKey).update('POST\n/v1/auth/signup\n').update(canonicalJson(body)).digest('hex');
    expect(stored?.request_hash).not.toBe(withPassword);
  });

  it('answers a body nested deeper than it can hash with 400 naming the body, as the validation would', async () => {
    const deep = `{"a":${'['.repeat(30_000)}${']'.repeat(30_000)}}`;
    const response = await fetch(`${api.url}/v1/auth/signup`, { method: 'POST', headers: { 'content-type': 'application/json', 'idempotency-key': randomUUID() }, body: deep });
    expect(response.status).toBe(400);
    expect(response.headers.get('content-type')).toContain('application/problem+json');
    expect(await response.json()).toMatchObject({ type: expect.stringMatching(/validation-failed$/), errors: [{ path: 'body' }] });
  });
});

describe('Idempotency-Key after it has expired', () => {
  const ttlMs = 24 * 3_600_000;
  const createListing = (token: string, key: string, title: string) =>
    postJson(`${api.url}/v1/listings`, { ...listingInput, title }, { authorization: `Bearer ${token}`, 'idempotency-key': key });

  it('runs a different body sent under the expired key as a new command', async () => {
    const token = owner();
    const key = randomUUID();
    const first = await createListing(token, key, 'Loft by the river');
    expect(first.status).toBe(201);
    await age(key, ttlMs + 1);

    const before = await eventCount();
    const second = await createListing(token, key, 'Cabin in the woods');
    expect(second.status).toBe(201);
    expect(second.headers.get('idempotent-replayed')).toBeNull();
    expect(second.body.id).not.toBe(first.body.id);
    expect(second.body.version).toBe(0);
    expect(await eventCount()).toBe(before + 1);
  });

  it('recognises the same request sent under the expired key as the command it already ran, and appends nothing', async () => {
    const token = owner();
    const key = randomUUID();
    const first = await createListing(token, key, 'Loft by the river');
    expect(first.status).toBe(201);
    await age(key, ttlMs + 1);

    const before = await eventCount();
    const again = await createListing(token, key, 'Loft by the river');
    expect(again.status).toBe(201);
    expect(again.body).toEqual(first.body);
    expect(await eventCount()).toBe(before);
  });
});

/**
 * API.md, "Idempotency", for the responses that carry credentials: a client that lost the answer
 * to its refresh and retries it under its key gets its refresh token back with a working access
 * token, rather than being taken for a thief replaying a rotated token. A login is never stored:
 * its retry opens another session, and nothing derived from the password outlives the request.
 * Without making the key a way around reuse detection or the lockout: see `idempotency.plugin.ts`.
 */
describe('Idempotency-Key on login and refresh (responses that carry credentials)', () => {
  const password = 'correct horse battery staple';
  const refresh = (refreshToken: unknown, key: string) => postJson(`${api.url}/v1/auth/refresh`, { refreshToken }, { 'idempotency-key': key });
  async function newUser(): Promise<string> {
    const email = `tokens-${randomUUID().slice(0, 8)}@example.com`;
    expect((await postJson(`${api.url}/v1/auth/signup`, { email, password, name: 'Ada', roles: ['CONSUMER'] })).status).toBe(201);
    return email;
  }
  const logIn = (email: string, key: string, secret = password) => postJson(`${api.url}/v1/auth/login`, { email, password: secret }, { 'idempotency-key': key });
  const me = (accessToken: unknown) => fetch(`${api.url}/test/me`, { headers: { authorization: `Bearer ${String(accessToken)}` } });
  const claims = (accessToken: unknown) => z.object({ sub: z.string(), roles: z.array(z.string()), exp: z.number() }).parse(api.app.jwt.decode(String(accessToken)));
  const loginRows = async () =>
    (await backend.pool.query<Record<string, unknown>>("SELECT * FROM idempotency_keys WHERE scope LIKE 'anonymous:POST /v1/auth/login%'")).rows;
  async function securityEvents(type: 'refresh_token_reused' | 'login_failed'): Promise<number> {
    const { rows } = await backend.pool.query<{ count: string }>('SELECT count(*) FROM security_events WHERE type = $1', [type]);
    return Number(rows[0]?.count);
  }

  it('replays a refresh retried under its key: the same refresh token, marked replayed, that works; no reuse is recorded', async () => {
    const first = (await logIn(await newUser(), randomUUID())).body.refreshToken;
    const reused = await securityEvents('refresh_token_reused');
    const key = randomUUID();
    const rotated = await refresh(first, key);
    expect(rotated.status).toBe(200);

    const retry = await refresh(first, key);
    expect(retry.status).toBe(200);
    expect(retry.headers.get('idempotent-replayed')).toBe('true');
    expect(retry.body).toMatchObject({ refreshToken: rotated.body.refreshToken, tokenType: 'Bearer', expiresIn: 900 });
    expect((await me(retry.body.accessToken)).status).toBe(200);
    expect((await refresh(retry.body.refreshToken, randomUUID())).status).toBe(200);
    expect(await securityEvents('refresh_token_reused')).toBe(reused);
  });

  it('replays a refresh retried within the window with an access token signed at the replay, for 900 s, carrying the roles the user has now', async () => {
    const first = (await logIn(await newUser(), randomUUID())).body.refreshToken;
    const key = randomUUID();
    const rotated = await refresh(first, key);
    expect(rotated.status).toBe(200);
    const { sub: userId } = claims(rotated.body.accessToken);
    const admin = { id: 'system:seed', roles: ['ADMIN' as const] };
    await api.side.handlers.user.handle(
      `user-${userId}`,
      { type: 'GrantRoles', data: { userId, roles: ['OWNER'], grantedBy: admin } },
      { commandId: randomUUID(), context: { actor: admin, requestId: 'grant', correlationId: 'grant', causationId: 'grant' } },
    );

    // 50 s on, within the window for a lost answer (on the database's clock, and on this process's).
    await age(key, 50_000);
    vi.useFakeTimers({ toFake: ['Date'], now: Date.now() + 50_000 });
    try {
      const retry = await refresh(first, key);
      expect(retry.status).toBe(200);
      expect(retry.headers.get('idempotent-replayed')).toBe('true');
      expect(retry.body).toMatchObject({ refreshToken: rotated.body.refreshToken, tokenType: 'Bearer', expiresIn: 900 });
      expect((await me(retry.body.accessToken)).status).toBe(200);
      const replayed = claims(retry.body.accessToken);
      expect(replayed.exp).toBeGreaterThan(Date.now() / 1000 + 890);
      expect(replayed).toMatchObject({ sub: userId, roles: expect.arrayContaining(['CONSUMER', 'OWNER']) });
    } finally {
      vi.useRealTimers();
    }
  });

  it('treats the rotated token sent again under its key as reuse once the pair it got has been used: 401, the family revoked', async () => {
    const first = (await logIn(await newUser(), randomUUID())).body.refreshToken;
    const reused = await securityEvents('refresh_token_reused');
    const key = randomUUID();
    const rotated = await refresh(first, key);
    const next = await refresh(rotated.body.refreshToken, randomUUID());
    expect([rotated.status, next.status]).toEqual([200, 200]);

    const replay = await refresh(first, key);
    expect(replay.status).toBe(401);
    expect(replay.headers.get('idempotent-replayed')).toBeNull();
    expect(replay.body.type).toBe('https://bookable.example/problems/invalid-refresh-token');
    expect(replay.text).not.toContain(String(rotated.body.refreshToken));
    expect((await refresh(next.body.refreshToken, randomUUID())).status).toBe(401);
    expect(await securityEvents('refresh_token_reused')).toBe(reused + 1);
  });

  it('replays a refresh retried under its key only within the window for a lost answer; after it, the used token is reuse: 401, the family revoked', async () => {
    // Given T0 traded for T1 under key K
    const first = (await logIn(await newUser(), randomUUID())).body.refreshToken;
    const reused = await securityEvents('refresh_token_reused');
    const key = randomUUID();
    const rotated = await refresh(first, key);
    expect(rotated.status).toBe(200);

    // When T0 comes again under K within the window, then it gets T1 back
    const retry = await refresh(first, key);
    expect(retry.status).toBe(200);
    expect(retry.headers.get('idempotent-replayed')).toBe('true');
    expect(retry.body.refreshToken).toBe(rotated.body.refreshToken);

    // When T0 comes again under K once the window has passed (on the database's clock)
    await age(key, 61_000);
    const late = await refresh(first, key);

    // Then it is a dead token reused: refused, T1 refused with its family, the reuse recorded
    expect(late.status).toBe(401);
    expect(late.headers.get('idempotent-replayed')).toBeNull();
    expect(late.text).not.toContain(String(rotated.body.refreshToken));
    expect((await refresh(rotated.body.refreshToken, randomUUID())).status).toBe(401);
    expect(await securityEvents('refresh_token_reused')).toBe(reused + 1);
  });

  it('leaves no stored answer about an erased user: their signup and refresh rows go with them', async () => {
    // Given a user who signed up and refreshed, each under a key
    const email = `erased-${randomUUID().slice(0, 8)}@example.com`;
    const [signupKey, refreshKey] = [randomUUID(), randomUUID()];
    const signup = await postJson(`${api.url}/v1/auth/signup`, { email, password, name: 'Ada', roles: ['CONSUMER'] }, { 'idempotency-key': signupKey });
    expect(signup.status).toBe(201);
    const session = await logIn(email, randomUUID());
    expect((await refresh(session.body.refreshToken, refreshKey)).status).toBe(200);
    const rowsAbout = () => backend.idempotencyDb.selectFrom('idempotency_keys').select('key').where('key', 'in', [signupKey, refreshKey]).execute();
    expect(await rowsAbout()).toHaveLength(2);

    // When an admin erases them
    const admin = api.app.issueAccessToken({ id: randomUUID(), roles: ['ADMIN'] }).accessToken;
    expect((await postJson(`${api.url}/v1/admin/subjects/${String(signup.body.id)}/erase`, {}, { authorization: `Bearer ${admin}` })).status).toBe(200);

    // Then no idempotency row about them is left
    expect(await rowsAbout()).toEqual([]);
  });

  it('runs a login retried under its key afresh: a new pair, both pairs work, and no row of it is left', async () => {
    const email = await newUser();
    const key = randomUUID();
    const first = await logIn(email, key);
    const retry = await logIn(email, key);
    expect([first.status, retry.status]).toEqual([200, 200]);
    expect(retry.headers.get('idempotent-replayed')).toBeNull();
    expect(retry.body.refreshToken).not.toBe(first.body.refreshToken);

    for (const session of [first, retry]) {
      expect((await me(session.body.accessToken)).status).toBe(200);
      expect((await refresh(session.body.refreshToken, randomUUID())).status).toBe(200);
    }
    expect(await loginRows()).toEqual([]);
  });

  it('hands out no stored refresh token once its user is erased: a retried refresh runs afresh and is refused', async () => {
    const email = await newUser();
    const [loginKey, refreshKey] = [randomUUID(), randomUUID()];
    const session = await logIn(email, loginKey);
    const rotated = await refresh(session.body.refreshToken, refreshKey);
    expect(rotated.status).toBe(200);
    const { sub: userId } = claims(rotated.body.accessToken);
    const admin = api.app.issueAccessToken({ id: randomUUID(), roles: ['ADMIN'] }).accessToken;
    expect((await postJson(`${api.url}/v1/admin/subjects/${userId}/erase`, {}, { authorization: `Bearer ${admin}` })).status).toBe(200);

    for (const retry of [await logIn(email, loginKey), await refresh(session.body.refreshToken, refreshKey)]) {
      expect(retry.status).toBe(401);
      expect(retry.headers.get('idempotent-replayed')).toBeNull();
    }
  });

  it('never replays a failed login: each retry of a wrong password is checked and counted, up to the lockout', async () => {
    const email = await newUser();
    const key = randomUUID();
    const failed = await securityEvents('login_failed');
    const statuses = [];
    for (let attempt = 0; attempt < 5; attempt += 1) {
      const response = await logIn(email, key, 'not the password at all');
      expect(response.headers.get('idempotent-replayed')).toBeNull();
      statuses.push(response.status);
    }
    expect(statuses).toEqual([401, 401, 401, 401, 429]);
    expect(await securityEvents('login_failed')).toBe(failed + 5);
    expect((await logIn(email, key)).status).toBe(429);
  });

  it('answers a wrong password under the key of a successful login as the failed login it is: a 422 would confirm a guess without counting it', async () => {
    const email = await newUser();
    const key = randomUUID();
    expect((await logIn(email, key)).status).toBe(200);
    const failed = await securityEvents('login_failed');

    const guess = await logIn(email, key, 'not the password at all');
    expect(guess.status).toBe(401);
    expect(guess.body.type).toBe('https://bookable.example/problems/invalid-credentials');
    expect(await securityEvents('login_failed')).toBe(failed + 1);
  });

  it('keeps no trace of a password: a login, done or refused, leaves no row; a stored refresh answer is sealed', async () => {
    const email = await newUser();
    const [loginKey, refreshKey] = [randomUUID(), randomUUID()];
    const session = await logIn(email, loginKey);
    expect(session.status).toBe(200);
    expect((await logIn(email, loginKey, 'not the password at all')).status).toBe(401);
    expect(await loginRows()).toEqual([]);

    const rotated = await refresh(session.body.refreshToken, refreshKey);
    expect(rotated.status).toBe(200);
    const { rows } = await backend.pool.query<Record<string, unknown>>('SELECT * FROM idempotency_keys WHERE key = $1', [refreshKey]);
    expect(rows).toHaveLength(1);
    expect(rows[0]).toMatchObject({ status: 'completed', response_status: 200 });
    const row = Buffer.concat(Object.values(rows[0] ?? {}).map((value) => (Buffer.isBuffer(value) ? value : Buffer.from(JSON.stringify(value)))));
    for (const secret of [session.body.refreshToken, rotated.body.accessToken, rotated.body.refreshToken, email, password]) {
      expect(row.includes(String(secret)), String(secret)).toBe(false);
    }
  });

  it('still answers 409 to a duplicate sent while the first is in flight, then runs a later retry afresh', async () => {
    const key = randomUUID();
    const before = sessionsIssued;
    const send = () => postJson(`${api.url}/test/sessions`, { user: 'ada' }, { 'idempotency-key': key });
    const responses = await Promise.all(Array.from({ length: 10 }, send));

    expect(sessionsIssued - before).toBe(1);
    expect(responses.filter((response) => response.status === 200)).toHaveLength(1);
    expect(responses.filter((response) => response.status === 409)).toHaveLength(9);
    const retry = await send();
    expect(retry.status).toBe(200);
    expect(retry.headers.get('idempotent-replayed')).toBeNull();
    expect(responses.map((response) => response.body.token)).not.toContain(retry.body.token);
    expect(sessionsIssued - before).toBe(2);
    expect(await backend.idempotencyDb.selectFrom('idempotency_keys').select('status').where('key', '=', key).execute()).toEqual([]);
  });

  it('runs another body sent under the key while the first is in flight, rather than telling it apart (422) from the same body (409)', async () => {
    // Under login's key a 422 against a 409 would say whether a guessed password is the one in
    // flight, answered before the password check, so uncounted by the lockout.
    const key = randomUUID();
    const before = sessionsIssued;
    const send = (user: string) => postJson(`${api.url}/test/sessions`, { user }, { 'idempotency-key': key });
    const [first, other, same] = await Promise.all([send('ada'), sleep(30).then(() => send('eve')), sleep(30).then(() => send('ada'))]);

    expect(first.status).toBe(200);
    expect(other.status).toBe(200);
    expect(same.status).toBe(409);
    expect(sessionsIssued - before).toBe(2);
  });
});

/**
 * API.md, "Idempotency": the same request under its key is replayed, a different one answers 422.
 * "The same" is what the request means: its body whatever order a client writes the members
 * in, and the version it pins with If-Match, since that is part of what it asks.
 */
describe('Idempotency-Key: what makes two requests the same', () => {
  const post = (path: string, body: unknown, token: string, key: string, headers: Record<string, string> = {}) =>
    postJson(`${api.url}${path}`, body, { authorization: `Bearer ${token}`, 'idempotency-key': key, ...headers });
  async function newListing(token: string): Promise<string> {
    const created = await post('/v1/listings', listingInput, token, randomUUID());
    expect(created.status).toBe(201);
    return String(created.body.id);
  }

  it('replays the same body sent with its members in another order, as another client would write it', async () => {
    const token = owner();
    const key = randomUUID();
    const first = await post('/v1/listings', listingInput, token, key);
    expect(first.status).toBe(201);

    const before = await eventCount();
    const reordered = Object.fromEntries(Object.entries(listingInput).reverse());
    expect(JSON.stringify(reordered)).not.toBe(JSON.stringify(listingInput));
    const again = await post('/v1/listings', reordered, token, key);
    expect(again.status).toBe(201);
    expect(again.headers.get('idempotent-replayed')).toBe('true');
    expect(again.body).toEqual(first.body);
    const once = await post('/v1/listings', listingInput, token, key);
    expect(once.headers.get('idempotent-replayed')).toBe('true');
    expect(await eventCount()).toBe(before);
  });

  it('refuses a malformed If-Match before the key is claimed, so the corrected request under that key runs', async () => {
    const token = owner();
    const path = `/v1/listings/${await newListing(token)}/update`;
    const key = randomUUID();
    const unquoted = await post(path, { pricePerDay: 9_000 }, token, key, { 'if-match': '0' });
    expect(unquoted.status).toBe(400);
    expect(unquoted.body.errors).toEqual([expect.objectContaining({ path: 'headers.if-match' })]);

    const corrected = await post(path, { pricePerDay: 9_000 }, token, key, { 'if-match': '"0"' });
    expect(corrected.status).toBe(200);
    expect(corrected.headers.get('idempotent-replayed')).toBeNull();
    expect(corrected.body.version).toBe(1);
  });

  it('answers 422 to another If-Match under the same key, rather than replaying the 412 of the first', async () => {
    const token = owner();
    const path = `/v1/listings/${await newListing(token)}/update`;
    const key = randomUUID();
    expect((await post(path, { pricePerDay: 9_000 }, token, key, { 'if-match': '"7"' })).status).toBe(412);
    const sameAgain = await post(path, { pricePerDay: 9_000 }, token, key, { 'if-match': '"7"' });
    expect(sameAgain.status).toBe(412);
    expect(sameAgain.headers.get('idempotent-replayed')).toBe('true');

    const before = await eventCount();
    const corrected = await post(path, { pricePerDay: 9_000 }, token, key, { 'if-match': '"0"' });
    expect(corrected.status).toBe(422);
    expect(corrected.body.type).toBe('https://bookable.example/problems/idempotency-key-reused');
    const withoutPrecondition = await post(path, { pricePerDay: 9_000 }, token, key);
    expect(withoutPrecondition.status).toBe(422);
    expect(await eventCount()).toBe(before);

    const underNewKey = await post(path, { pricePerDay: 9_000 }, token, randomUUID(), { 'if-match': '"0"' });
    expect(underNewKey.status).toBe(200);
  });
});

/**
 * Keys claimed before the request hash covered If-Match and sorted the body: their retries are
 * still the same request while the key lasts, and carry the command id the key was claimed with.
 */
describe('Idempotency-Key claimed before the request hash changed', () => {
  const terms = { leaseMs: 60_000, ttlMs: 24 * 3_600_000 };
  /** The request hash as the plugin made it then: method, URL, and the body as sent. */
  function legacyHash(path: string, body: unknown): string {
    const hashKey = createHmac('sha256', secret).update('idempotency-request-hash').digest();
    return createHmac('sha256', hashKey).update(`POST\n${path}\n`).update(JSON.stringify(body)).digest('hex');
  }
  /** A key claimed (and, given a response, completed) then: its row as the upgrade leaves it. */
  async function claimedThen(scope: string, key: string, hash: string, response?: StoredResponse): Promise<void> {
    const store = new PgIdempotencyStore(backend.idempotencyDb, secret);
    const claim = await store.claim({ scope, key }, hash, terms);
    if (claim.outcome !== 'claimed') throw new Error('the key should have been claimed');
    if (response) await store.complete({ scope, key, token: claim.token }, response);
    await sql`UPDATE idempotency_keys SET request_hash_version = 1 WHERE key = ${key}`.execute(backend.idempotencyDb);
  }
  const user = (role: 'OWNER' | 'CONSUMER') => {
    const id = `${role.toLowerCase()}-${randomUUID()}`;
    return { id, token: api.app.issueAccessToken({ id, roles: [role] }).accessToken };
  };

  it('replays the stored response to a retry of a body in the order API.md writes it, and appends nothing', async () => {
    const { id, token } = user('OWNER');
    const key = randomUUID();
    expect(JSON.stringify(listingInput)).not.toBe(canonicalJson(listingInput));
    const stored = { status: 201, headers: { 'content-type': 'application/json; charset=utf-8' }, body: Buffer.from(JSON.stringify({ id: randomUUID() })) };
    await claimedThen(id, key, legacyHash('/v1/listings', listingInput), stored);

    const before = await eventCount();
    const retry = await postJson(`${api.url}/v1/listings`, listingInput, { authorization: `Bearer ${token}`, 'idempotency-key': key });
    expect(retry.status).toBe(201);
    expect(retry.headers.get('idempotent-replayed')).toBe('true');
    expect(retry.text).toBe(stored.body.toString());
    expect(await eventCount()).toBe(before);
  });

  it('answers 409 while such a key is in flight, and a retry that takes it over after a crash keeps its command id', async () => {
    const { id, token } = user('CONSUMER');
    const key = randomUUID();
    const hash = legacyHash('/test/orders', { item: 'lamp' });
    await claimedThen(id, key, hash);
    const send = () => postJson(`${api.url}/test/orders`, { item: 'lamp' }, { authorization: `Bearer ${token}`, 'idempotency-key': key, 'if-match': '"3"' });
    expect((await send()).status).toBe(409);

    await answerLost(backend, key);
    const retry = await send();
    expect(retry.status).toBe(201);
    expect(retry.headers.get('idempotent-replayed')).toBeNull();
    expect(retry.body.id).toBe(deterministicUuid('idempotency', id, key, hash));
    expect((await send()).headers.get('idempotent-replayed')).toBe('true');
  });

  it('still answers 422 to an If-Match added under a key this version claimed without one', async () => {
    const { token } = user('CONSUMER');
    const key = randomUUID();
    const send = (headers: Record<string, string>) => postJson(`${api.url}/test/orders`, { item: 'lamp' }, { authorization: `Bearer ${token}`, 'idempotency-key': key, ...headers });
    expect((await send({})).status).toBe(201);
    const withPrecondition = await send({ 'if-match': '"3"' });
    expect(withPrecondition.status).toBe(422);
    expect(withPrecondition.body.type).toBe('https://bookable.example/problems/idempotency-key-reused');
  });
});
