import { randomBytes, randomUUID } from 'node:crypto';
import type { KyselyPlugin, PluginTransformQueryArgs, PluginTransformResultArgs, QueryId, QueryResult, RootOperationNode, UnknownRow } from 'kysely';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { createCommandHandlers } from '../../src/application/command-handlers.js';
import type { PasswordHasher } from '../../src/application/identity/identity.ports.js';
import { createIdentityService, hashRefreshToken } from '../../src/application/identity/identity.service.js';
import type { CommandContext } from '../../src/application/metadata.js';
import { KeyStoreUnavailableError } from '../../src/application/privacy/personal-data-vault.js';
import { sleep } from '../../src/application/sleep.js';
import { streamIdOf } from '../../src/domain/user/user.decider.js';
import type { IdentityTables } from '../../src/infrastructure/identity/identity.tables.js';
import { PgCredentialStore } from '../../src/infrastructure/identity/pg-credential-store.js';
import { PgRefreshTokenStore } from '../../src/infrastructure/identity/pg-refresh-token-store.js';
import { PgSecurityEventLog } from '../../src/infrastructure/identity/pg-security-event-log.js';
import { createKysely } from '../../src/infrastructure/postgres/database.js';
import { FakeClock, startBackend, type TestBackend } from '../http/support/command-api.fixture.js';
import { pgVault } from '../support/personal-data.js';

let backend: TestBackend;
let store: PgRefreshTokenStore;

beforeAll(async () => {
  backend = await startBackend();
  store = new PgRefreshTokenStore(createKysely<IdentityTables>(backend.pool));
});
afterAll(() => backend.close());

/** Holds a rotation just after it has inserted the new token, before it commits. */
class HoldAfterInsert implements KyselyPlugin {
  readonly reached: Promise<void>;
  private arrive = () => {};
  private resume = () => {};
  private readonly resumed = new Promise<void>((resolve) => (this.resume = resolve));
  private readonly inserts = new WeakSet<QueryId>();

  constructor() {
    this.reached = new Promise((resolve) => (this.arrive = resolve));
  }

  release(): void {
    this.resume();
  }

  transformQuery(args: PluginTransformQueryArgs): RootOperationNode {
    if (args.node.kind === 'InsertQueryNode') this.inserts.add(args.queryId);
    return args.node;
  }

  async transformResult(args: PluginTransformResultArgs): Promise<QueryResult<UnknownRow>> {
    if (this.inserts.has(args.queryId)) {
      this.arrive();
      await this.resumed;
    }
    return args.result;
  }
}

function newToken() {
  const token = randomBytes(32).toString('base64url');
  const issuedAt = new Date();
  return { tokenHash: hashRefreshToken(token), issuedAt, expiresAt: new Date(issuedAt.getTime() + 86_400_000) };
}

/** `rotate(live → next)` held before its commit while `revoke` runs, then let go. */
async function racing(live: ReturnType<typeof newToken>, revoke: () => Promise<unknown>) {
  const hold = new HoldAfterInsert();
  const held = new PgRefreshTokenStore(createKysely<IdentityTables>(backend.pool).withPlugin(hold));
  const next = newToken();
  const rotation = held.rotate(live.tokenHash, next, new Date());
  await hold.reached;
  const revocation = revoke();
  // The revocation is now waiting on the rotation.
  await sleep(200);
  hold.release();
  await Promise.all([rotation, revocation]);
  return next;
}

describe('revoking a refresh-token family while one of its tokens is being rotated', () => {
  it('given a refresh in flight, when the user logs out, then the token the refresh issued is revoked too', async () => {
    const userId = randomUUID();
    const first = newToken();
    await store.startFamily({ ...first, familyId: randomUUID(), userId });

    const issued = await racing(first, () => store.revokeFamily(first.tokenHash, userId));

    expect(await store.rotate(issued.tokenHash, newToken(), new Date())).toEqual({ outcome: 'invalid' });
  });

  it('given a refresh in flight, when a retired token of the family is used again, then the token the refresh issued is revoked too', async () => {
    const userId = randomUUID();
    const first = newToken();
    await store.startFamily({ ...first, familyId: randomUUID(), userId });
    const second = newToken();
    expect(await store.rotate(first.tokenHash, second, new Date())).toMatchObject({ outcome: 'rotated' });

    const issued = await racing(second, () => store.rotate(first.tokenHash, newToken(), new Date()));

    expect(await store.rotate(issued.tokenHash, newToken(), new Date())).toEqual({ outcome: 'invalid' });
  });
});

describe('refreshing while what the session is built from is briefly unavailable', () => {
  const context: CommandContext = { actor: { id: 'anonymous', roles: [] }, requestId: 'r-1', correlationId: 'r-1', causationId: 'r-1' };
  const password = 'correct horse battery staple';
  const passwords: PasswordHasher = { hash: async (p) => `plain:${p}`, verify: async (h, p) => h === `plain:${p}` };

  /** An identity service whose user reads fail, once each, as often as `failNextRead` is set. */
  function identityService() {
    const clock = new FakeClock();
    const handler = createCommandHandlers({ eventStore: backend.eventStore, clock, personalData: pgVault(backend.pool) }).user;
    const faults = { failNextRead: false };
    const users: typeof handler = {
      ...handler,
      read: (streamId) => {
        if (!faults.failNextRead) return handler.read(streamId);
        faults.failNextRead = false;
        return Promise.reject(new KeyStoreUnavailableError(new Error('key store away')));
      },
    };
    const identity = createIdentityService({
      users,
      credentials: new PgCredentialStore(backend.identityDb),
      refreshTokens: new PgRefreshTokenStore(backend.identityDb),
      securityEvents: new PgSecurityEventLog(backend.identityDb),
      passwords,
      clock,
    });
    return { identity, faults };
  }

  const reuses = (userId: string) =>
    backend.identityDb.selectFrom('security_events').select('id').where('type', '=', 'refresh_token_reused').where('user_id', '=', userId).execute();

  it('given a refresh that failed reading the user, when the client retries with the same token, then it gets a session and no theft is logged', async () => {
    const { identity, faults } = identityService();
    const email = `refresh-${randomUUID().slice(0, 8)}@example.com`;
    const { id: userId } = await identity.signUp({ email, password, name: 'Ada', roles: ['CONSUMER'] }, context, randomUUID());
    const first = await identity.logIn({ email, password }, context);

    faults.failNextRead = true;
    await expect(identity.refresh(first.refreshToken, context)).rejects.toBeInstanceOf(KeyStoreUnavailableError);
    const retried = await identity.refresh(first.refreshToken, context);

    expect(retried.actor).toEqual({ id: userId, roles: ['CONSUMER'] });
    expect(retried.refreshToken).not.toBe(first.refreshToken);
    await expect(identity.refresh(retried.refreshToken, context)).resolves.toMatchObject({ actor: { id: userId } });
    expect(await reuses(userId)).toEqual([]);
  });

  it('given an erased user, when a live token of theirs is refreshed, then the answer is an invalid refresh token, not invalid credentials', async () => {
    const { identity } = identityService();
    const email = `erased-${randomUUID().slice(0, 8)}@example.com`;
    const { id: userId } = await identity.signUp({ email, password, name: 'Ada', roles: ['CONSUMER'] }, context, randomUUID());
    const session = await identity.logIn({ email, password }, context);
    const admin = { id: randomUUID(), roles: ['ADMIN' as const] };
    const handlers = createCommandHandlers({ eventStore: backend.eventStore, clock: new FakeClock(), personalData: pgVault(backend.pool) });
    await handlers.user.handle(
      streamIdOf(userId),
      { type: 'EraseSubject', data: { userId, erasedBy: admin, now: new Date() } },
      { commandId: randomUUID(), context: { ...context, actor: admin } },
    );

    await expect(identity.refresh(session.refreshToken, context)).rejects.toMatchObject({ code: 'invalid-refresh-token' });
  });
});
