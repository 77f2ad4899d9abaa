import { randomBytes, randomUUID } from 'node:crypto';
import type { KyselyPlugin, PluginTransformQueryArgs, PluginTransformResultArgs, QueryId, QueryResult, RootOperationNode, UnknownRow } from 'kysely';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { hashRefreshToken } from '../../src/application/identity/identity.service.js';
import { sleep } from '../../src/application/sleep.js';
import type { IdentityTables } from '../../src/infrastructure/identity/identity.tables.js';
import { PgRefreshTokenStore } from '../../src/infrastructure/identity/pg-refresh-token-store.js';
import { createKysely } from '../../src/infrastructure/postgres/database.js';
import { startBackend, type TestBackend } from '../http/support/command-api.fixture.js';

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
