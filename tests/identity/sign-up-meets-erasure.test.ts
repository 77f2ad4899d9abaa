import { randomUUID } from 'node:crypto';
import { setTimeout as sleep } from 'node:timers/promises';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { deterministicUuid } from '../../src/application/ids.js';
import type { PasswordHasher } from '../../src/application/identity/identity.ports.js';
import { createIdentityService } from '../../src/application/identity/identity.service.js';
import type { CommandContext } from '../../src/application/metadata.js';
import { eraseSubject, type RecordsOutsideTheLog } from '../../src/application/privacy/erase-subject.use-case.js';
import type { Actor } from '../../src/domain/shared/actor.js';
import { PgCredentialStore } from '../../src/infrastructure/identity/pg-credential-store.js';
import { PgRefreshTokenStore } from '../../src/infrastructure/identity/pg-refresh-token-store.js';
import { PgSecurityEventLog } from '../../src/infrastructure/identity/pg-security-event-log.js';
import { PgRecordsOutsideTheLog } from '../../src/infrastructure/privacy/pg-records-outside-the-log.js';
import { keyExpired, postJson, startApi, startBackend, type TestApi, type TestBackend } from '../http/support/command-api.fixture.js';
import { gate } from '../support/gate.js';

// A signup retried with the same Idempotency-Key names the same user. If an admin erases that
// user while the retry runs, the erasure's delete can land before the retry writes the login back:
// these specs pin down that the erased person's login never survives, and their email is free.

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
const admin: Actor = { id: randomUUID(), roles: ['ADMIN'] };
const anonymous: CommandContext = { actor: { id: 'anonymous', roles: [] }, requestId: 'r-1', correlationId: 'r-1', causationId: 'r-1' };
const uniqueEmail = () => `erased-${randomUUID().slice(0, 8)}@example.com`;
const signUpAs = (email: string) => ({ email, password, name: 'Ada', roles: ['CONSUMER' as const] });

const credentialsOf = (userId: string) => backend.identityDb.selectFrom('credentials').select('user_id').where('user_id', '=', userId).execute();

describe('a signup retried while its user is erased, staged step by step', () => {
  /** Cheap and transparent; `whileHashing` runs where the argon2 hash would take its time. */
  const hasher = (whileHashing: () => Promise<unknown> = async () => undefined): PasswordHasher => ({
    hash: async (p) => {
      await whileHashing();
      return `plain:${p}`;
    },
    verify: async (h, p) => h === `plain:${p}`,
  });

  const identity = (passwords: PasswordHasher) =>
    createIdentityService({
      users: api.side.handlers.user,
      credentials: new PgCredentialStore(backend.identityDb),
      refreshTokens: new PgRefreshTokenStore(backend.identityDb),
      securityEvents: new PgSecurityEventLog(backend.identityDb),
      passwords,
      clock: api.clock,
    });

  const erase = (userId: string, outsideTheLog: RecordsOutsideTheLog = new PgRecordsOutsideTheLog(backend.pool)) =>
    eraseSubject({ side: api.side, vault: api.vault, outsideTheLog }, userId, {
      commandId: randomUUID(),
      context: { ...anonymous, actor: admin },
    });

  /** A registered user and the command id that registered them, to retry. */
  async function registered(email: string) {
    const commandId = randomUUID();
    await identity(hasher()).signUp(signUpAs(email), anonymous, commandId);
    return { commandId, userId: deterministicUuid(commandId, 'user-id') };
  }

  const settled = <T>(promise: Promise<T>) => promise.then((result) => ({ result }), (error: unknown) => ({ error }));

  it('given the retry passed its erasure check, when the whole erasure runs while it hashes, then the retry is refused and the login stays gone', async () => {
    const email = uniqueEmail();
    const { commandId, userId } = await registered(email);

    const retried = await settled(identity(hasher(() => erase(userId))).signUp(signUpAs(email), anonymous, commandId));

    expect(retried).toMatchObject({ error: { code: 'account-erased' } });
    expect(await credentialsOf(userId)).toEqual([]);
    await expect(identity(hasher()).signUp(signUpAs(email), anonymous, randomUUID())).resolves.toMatchObject({ version: 0 });
  });

  it('given the erasure deleted the login and has not recorded itself yet, when the retry writes the login back and finishes, then the erasure deletes it once recorded', async () => {
    const email = uniqueEmail();
    const { commandId, userId } = await registered(email);
    const held = gate();
    const records = new PgRecordsOutsideTheLog(backend.pool);
    let deletes = 0;
    // The erasure waits after its first delete, before `SubjectErased`.
    const heldAfterFirstDelete: RecordsOutsideTheLog = {
      async eraseSubject(id) {
        await records.eraseSubject(id);
        if ((deletes += 1) === 1) await held.pass();
      },
    };

    const erasing = settled(erase(userId, heldAfterFirstDelete));
    await held.reached;
    const retried = await settled(identity(hasher()).signUp(signUpAs(email), anonymous, commandId));
    held.release();

    // Answered before the erasure was recorded, the retry is a signup that came first.
    expect(retried).toMatchObject({ result: { id: userId } });
    expect(await erasing).toMatchObject({ result: { id: userId } });
    expect(await credentialsOf(userId)).toEqual([]);
    await expect(identity(hasher()).signUp(signUpAs(email), anonymous, randomUUID())).resolves.toMatchObject({ version: 0 });
  });
});

describe('a signup retried while its user is erased, raced over HTTP', () => {
  const signUp = (email: string, key: string) => postJson(`${api.url}/v1/auth/signup`, signUpAs(email), { 'idempotency-key': key });
  const eraseOverHttp = (userId: string) =>
    postJson(`${api.url}/v1/admin/subjects/${userId}/erase`, {}, { authorization: `Bearer ${api.app.issueAccessToken(admin).accessToken}` });

  it('whenever the erase is sent during the retry, the login is gone, the email free, and a retry that saw the erasure is refused', async () => {
    const answers: number[] = [];
    // -1: the erasure is done before the retry is sent, the one order whose answer no machine's
    // speed decides: the retry sees it.
    for (const delayMs of [-1, 0, 10, 20, 30, 40, 60, 80]) {
      const email = uniqueEmail();
      const key = randomUUID();
      const signed = await signUp(email, key);
      expect(signed.status).toBe(201);
      const userId = String(signed.body.id);
      await keyExpired(backend, key);

      const erasedFirst = delayMs < 0 ? await eraseOverHttp(userId) : undefined;
      const retrying = signUp(email, key);
      await sleep(Math.max(0, delayMs));
      const erased = erasedFirst ?? (await eraseOverHttp(userId));
      const retried = await retrying;

      expect(erased.status, `erase sent after ${delayMs} ms`).toBe(200);
      expect(await credentialsOf(userId), `erase sent after ${delayMs} ms`).toEqual([]);
      expect((await signUp(email, randomUUID())).status, `erase sent after ${delayMs} ms`).toBe(201);
      if (retried.status === 409) expect(retried.body.type).toBe('https://bookable.example/problems/account-erased');
      answers.push(retried.status);
    }
    // A retry that read the stream before the erasure was recorded is a signup that came first,
    // and its 201 stands (the erasure then deleted its login); one sent after it is refused. Which
    // of the raced ones overtakes depends on the machine's load (argon2 against the erasure).
    expect(answers.every((status) => status === 201 || status === 409)).toBe(true);
    expect(answers[0]).toBe(409);
  });
});
