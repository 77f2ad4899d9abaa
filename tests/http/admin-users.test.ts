import { randomUUID } from 'node:crypto';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { streamEvents } from '../support/command-side.js';
import { eventually } from '../support/eventually.js';
import { postJson, startApi, startBackend, type TestApi, type TestBackend } from './support/command-api.fixture.js';
import { startReadSide, type ReadSide } from './support/read-side.fixture.js';
import { accountPassword, loggedInAccount } from './support/accounts.js';

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
const bearer = (token: string) => ({ authorization: `Bearer ${token}` });

const account = (roles: string[]) => loggedInAccount(api, roles);

const roles = (change: 'grant' | 'revoke', token: string, userId: string, body: unknown, headers: Record<string, string> = {}) =>
  postJson(`${api.url}/v1/admin/users/${userId}/roles/${change}`, body, { ...bearer(token), ...headers });
const grant = (token: string, userId: string, granted: string[], reason = 'TICKET-1') => roles('grant', token, userId, { roles: granted, reason });
const revoke = (token: string, userId: string, revoked: string[], reason = 'TICKET-2') => roles('revoke', token, userId, { roles: revoked, reason });
const erase = (token: string, userId: string, body: unknown = {}) => postJson(`${api.url}/v1/admin/subjects/${userId}/erase`, body, bearer(token));
const canLogIn = async (email: string) => (await postJson(`${api.url}/v1/auth/login`, { email, password })).status === 200;
const userEvents = (userId: string) => streamEvents(backend.eventStore, `user-${userId}`);
const problemType = (code: string) => `https://bookable.example/problems/${code}`;

describe('granting and revoking roles (POST /v1/admin/users/{id}/roles/grant, /revoke)', () => {
  it('grants: 200 with the command result, ETag and Event-Position; RolesGranted records who and why, the why sealed', async () => {
    const [admin, person] = [await account(['ADMIN']), await account(['CONSUMER'])];

    const granted = await grant(admin.token, person.id, ['OWNER', 'PATIENT'], 'TICKET-7: lets the harbour flats');

    expect(granted.status).toBe(200);
    expect(granted.body).toEqual({ id: person.id, streamId: `user-${person.id}`, version: 1, position: expect.any(String) });
    expect(granted.headers.get('etag')).toBe('"1"');
    expect(granted.headers.get('event-position')).toBe(granted.body.position);
    const stored = await userEvents(person.id);
    expect(JSON.stringify(stored.map(({ data }) => data))).not.toContain('harbour flats');
    expect((await api.vault.reveal(stored)).at(-1)).toMatchObject({
      type: 'RolesGranted',
      data: { userId: person.id, roles: ['OWNER', 'PATIENT'], grantedBy: admin.id, reason: 'TICKET-7: lets the harbour flats' },
      metadata: { actorId: admin.id },
    });
  });

  it('revokes: 200, and RolesRevoked records who and why', async () => {
    const [admin, person] = [await account(['ADMIN']), await account(['CONSUMER', 'OWNER'])];

    const revoked = await revoke(admin.token, person.id, ['OWNER'], 'left the company');

    expect(revoked.status).toBe(200);
    expect(revoked.body).toMatchObject({ id: person.id, streamId: `user-${person.id}`, version: 1 });
    expect((await api.vault.reveal(await userEvents(person.id))).at(-1)).toMatchObject({
      type: 'RolesRevoked',
      data: { userId: person.id, roles: ['OWNER'], revokedBy: admin.id, reason: 'left the company' },
    });
  });

  it('is for admins only (403), and answers 404 for a user who does not exist or was erased', async () => {
    const [admin, consumer, erased] = [await account(['ADMIN']), await account(['CONSUMER']), await account(['CONSUMER'])];
    expect((await erase(admin.token, erased.id)).status).toBe(200);

    for (const change of ['grant', 'revoke'] as const) {
      const body = { roles: ['CONSUMER'], reason: 'TICKET-3' };
      expect((await roles(change, consumer.token, consumer.id, body)).status, change).toBe(403);
      expect((await roles(change, admin.token, randomUUID(), body)).status, change).toBe(404);
      const gone = await roles(change, admin.token, erased.id, body);
      expect(gone.status, change).toBe(404);
      expect(gone.body.type).toBe(problemType('not-found'));
    }
  });

  it('grants AUDITOR only from an admin who is an auditor too (403 forbidden, before any stale If-Match)', async () => {
    const [admin, auditorAdmin, person] = [await account(['ADMIN']), await account(['ADMIN', 'AUDITOR']), await account(['CONSUMER'])];

    const refused = await grant(admin.token, person.id, ['AUDITOR']);
    expect(refused.status).toBe(403);
    expect(refused.body.type).toBe(problemType('forbidden'));
    expect((await roles('grant', admin.token, person.id, { roles: ['AUDITOR'], reason: 'x' }, { 'if-match': '"7"' })).status).toBe(403);
    expect(await userEvents(person.id)).toHaveLength(1);

    expect((await grant(auditorAdmin.token, person.id, ['AUDITOR'])).status).toBe(200);
  });

  it('revokes AUDITOR only by an admin who is an auditor too (403 forbidden), so an admin alone cannot demote an auditor and then erase them', async () => {
    const [admin, auditorAdmin, auditor] = [await account(['ADMIN']), await account(['ADMIN', 'AUDITOR']), await account(['AUDITOR', 'CONSUMER'])];

    const refused = await revoke(admin.token, auditor.id, ['AUDITOR']);
    expect(refused.status).toBe(403);
    expect(refused.body.type).toBe(problemType('forbidden'));
    expect((await erase(admin.token, auditor.id)).status).toBe(403);
    expect(await userEvents(auditor.id)).toHaveLength(1);
    expect(await canLogIn(auditor.email)).toBe(true);

    expect((await revoke(auditorAdmin.token, auditor.id, ['AUDITOR'])).status).toBe(200);
  });

  it("refuses an admin taking their own ADMIN away with 409 cannot-revoke-own-admin", async () => {
    const admin = await account(['ADMIN', 'OWNER']);

    const refused = await revoke(admin.token, admin.id, ['ADMIN']);

    expect(refused.status).toBe(409);
    expect(refused.body.type).toBe(problemType('cannot-revoke-own-admin'));
    expect((await revoke(admin.token, admin.id, ['OWNER'])).status).toBe(200);
  });

  it('takes ADMIN from a token that still names it on its very next request, on the query API once projected; granted back, it counts again', async () => {
    const [demoted, other, person] = [await account(['ADMIN']), await account(['ADMIN']), await account(['CONSUMER'])];
    const adminView = async (token: string) => (await readSide.queryApi.inject({ method: 'GET', url: '/v1/admin/projections', headers: bearer(token) })).statusCode;
    expect((await grant(demoted.token, person.id, ['OWNER'])).status).toBe(200);
    expect(await adminView(demoted.token)).toBe(200);

    expect((await revoke(other.token, demoted.id, ['ADMIN'], 'TICKET-9: moved to sales')).status).toBe(200);

    expect((await grant(demoted.token, person.id, ['PATIENT'])).status).toBe(403);
    expect((await erase(demoted.token, person.id)).status).toBe(403);
    await eventually(async () => (await adminView(demoted.token)) === 403, 10_000, 'the demotion projected');

    expect((await grant(other.token, demoted.id, ['ADMIN'], 'TICKET-10: back from sales')).status).toBe(200);
    expect((await grant(demoted.token, person.id, ['PATIENT'])).status).toBe(200);
  });

  it('takes AUDITOR from a token that still names it on its very next request', async () => {
    const [demoted, other, person] = [await account(['ADMIN', 'AUDITOR']), await account(['ADMIN', 'AUDITOR']), await account(['CONSUMER'])];

    expect((await revoke(other.token, demoted.id, ['AUDITOR'])).status).toBe(200);

    expect((await grant(demoted.token, person.id, ['AUDITOR'])).status).toBe(403);
    expect((await grant(demoted.token, person.id, ['OWNER'])).status).toBe(200);
  });

  it('refuses a body other than { roles, reason } with 400 naming the field, appending nothing', async () => {
    const [admin, person] = [await account(['ADMIN']), await account(['CONSUMER'])];
    const bad: [unknown, string][] = [
      [{ roles: [], reason: 'x' }, 'body.roles'],
      [{ roles: ['OWNER', 'OWNER'], reason: 'x' }, 'body.roles'],
      [{ roles: ['ROOT'], reason: 'x' }, 'body.roles.0'],
      [{ roles: ['OWNER'] }, 'body.reason'],
      [{ roles: ['OWNER'], reason: '   ' }, 'body.reason'],
      [{ roles: ['OWNER'], reason: 'TICKET\u001b[2J' }, 'body.reason'],
      [{ roles: ['OWNER'], reason: 'x'.repeat(501) }, 'body.reason'],
      [{ roles: ['OWNER'], reason: 'x', by: 'me' }, 'body.by'],
    ];
    for (const change of ['grant', 'revoke'] as const) {
      for (const [body, path] of bad) {
        const refused = await roles(change, admin.token, person.id, body);
        expect(refused.status, `${change} ${JSON.stringify(body)}`).toBe(400);
        expect(refused.body.errors, `${change} ${JSON.stringify(body)}`).toEqual(expect.arrayContaining([expect.objectContaining({ path })]));
      }
    }
    expect(await userEvents(person.id)).toHaveLength(1);
    expect((await grant(admin.token, person.id, ['OWNER'], 'x'.repeat(500))).status).toBe(200);
  });

  it('takes If-Match and Idempotency-Key as every command does', async () => {
    const [admin, person] = [await account(['ADMIN']), await account(['CONSUMER'])];
    const body = { roles: ['OWNER'], reason: 'TICKET-11' };

    expect((await roles('grant', admin.token, person.id, body, { 'if-match': '"0"' })).status).toBe(200);
    const stale = await roles('revoke', admin.token, person.id, body, { 'if-match': '"0"' });
    expect(stale.status).toBe(412);

    const key = { 'idempotency-key': randomUUID() };
    const first = await roles('revoke', admin.token, person.id, body, key);
    const again = await roles('revoke', admin.token, person.id, body, key);
    expect(first.status).toBe(200);
    expect(again.status).toBe(200);
    expect(again.headers.get('idempotent-replayed')).toBe('true');
    expect(again.body).toEqual(first.body);
    expect(await userEvents(person.id)).toHaveLength(3);
    expect((await roles('revoke', admin.token, person.id, { ...body, reason: 'another' }, key)).status).toBe(422);
  });
});

describe('erasure guard rails (POST /v1/admin/subjects/{userId}/erase)', () => {
  it('is documented in /docs beside the role routes, its reason as a request reference and never personal data', async () => {
    const document = (await (await fetch(`${api.url}/docs/json`)).json()) as { paths: Record<string, unknown> };
    expect(document.paths).toHaveProperty('/v1/admin/users/{id}/roles/grant');
    expect(document.paths).toHaveProperty('/v1/admin/users/{id}/roles/revoke');
    expect(JSON.stringify(document.paths['/v1/admin/subjects/{userId}/erase'])).toMatch(/request reference \(a ticket number\), never personal data/);
  });

  it('refuses an admin erasing themselves with 409 cannot-erase-self, before anything is erased', async () => {
    const admin = await account(['ADMIN']);

    const refused = await erase(admin.token, admin.id);

    expect(refused.status).toBe(409);
    expect(refused.body.type).toBe(problemType('cannot-erase-self'));
    expect(await canLogIn(admin.email)).toBe(true);
    expect((await api.vault.reveal(await userEvents(admin.id)))[0]?.data).toMatchObject({ name: 'Grace Hopper' });
    expect((await grant(admin.token, (await account(['CONSUMER'])).id, ['OWNER'])).status).toBe(200);
  });

  it('erases an auditor only by an admin who is an auditor too (403), refusing before anything is erased', async () => {
    const [admin, auditorAdmin, auditor] = [await account(['ADMIN']), await account(['ADMIN', 'AUDITOR']), await account(['AUDITOR'])];

    const refused = await erase(admin.token, auditor.id);
    expect(refused.status).toBe(403);
    expect(refused.body.type).toBe(problemType('forbidden'));
    expect(await canLogIn(auditor.email)).toBe(true);

    expect((await erase(auditorAdmin.token, auditor.id)).status).toBe(200);
    expect(await canLogIn(auditor.email)).toBe(false);
  });

  it('records the request reference it is given in SubjectErased, in the clear: it outlives the key', async () => {
    const [admin, person] = [await account(['ADMIN']), await account(['CONSUMER'])];

    expect((await erase(admin.token, person.id, { reason: 'GDPR-2031-117' })).status).toBe(200);

    expect((await userEvents(person.id)).at(-1)).toMatchObject({
      type: 'SubjectErased',
      data: { userId: person.id, erasedBy: admin.id, reason: 'GDPR-2031-117' },
    });
  });

  it('refuses a reason that is blank, too long or holds control characters, with 400 naming it', async () => {
    const [admin, person] = [await account(['ADMIN']), await account(['CONSUMER'])];
    for (const reason of ['', '  ', 'GDPR\n117', 'x'.repeat(501), 42]) {
      const refused = await erase(admin.token, person.id, { reason });
      expect(refused.status, JSON.stringify(reason)).toBe(400);
      expect(refused.body.errors).toEqual([expect.objectContaining({ path: 'body.reason' })]);
    }
    expect(await canLogIn(person.email)).toBe(true);
  });
});
