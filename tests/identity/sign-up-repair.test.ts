import { randomUUID } from 'node:crypto';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { createCommandHandlers } from '../../src/application/command-handlers.js';
import { createIdentityService } from '../../src/application/identity/identity.service.js';
import type { CommandContext } from '../../src/application/metadata.js';
import type { EventStore } from '../../src/application/ports/event-store.js';
import { DomainError } from '../../src/domain/shared/domain-error.js';
import { deterministicUuid } from '../../src/application/ids.js';
import { PgCredentialStore } from '../../src/infrastructure/identity/pg-credential-store.js';
import { PgRefreshTokenStore } from '../../src/infrastructure/identity/pg-refresh-token-store.js';
import { PgSecurityEventLog } from '../../src/infrastructure/identity/pg-security-event-log.js';
import type { CredentialsClaim, CredentialStore, NewCredentials, PasswordHasher } from '../../src/application/identity/identity.ports.js';
import { FakeClock, startBackend, type TestBackend } from '../http/support/command-api.fixture.js';
import { gate, type Gate } from '../support/gate.js';
import { pgVault } from '../support/personal-data.js';

// Signup writes credentials, then the event, with no transaction across both; these specs pin
// down how each half-done state is repaired.

let backend: TestBackend;
beforeAll(async () => {
  backend = await startBackend();
}, 60_000);
afterAll(() => backend.close());

/** Cheap and transparent: these specs are about ordering, not hashing. */
const passwords: PasswordHasher = { hash: async (p) => `plain:${p}`, verify: async (h, p) => h === `plain:${p}` };
const context: CommandContext = { actor: { id: 'anonymous', roles: [] }, requestId: 'r-1', correlationId: 'r-1', causationId: 'r-1' };
const input = (email: string) => ({ email, password: 'correct horse battery staple', name: 'Ada', roles: ['CONSUMER' as const] });

type ServiceOptions = {
  failAppends?: () => boolean;
  /** Awaited before each append goes to the store. */
  beforeAppend?: () => Promise<void>;
  clock?: FakeClock;
  credentials?: CredentialStore;
};

function service(options: ServiceOptions = {}) {
  const clock = options.clock ?? new FakeClock();
  const store = backend.eventStore;
  const eventStore: EventStore = {
    appendToStream: async (...args) => {
      await options.beforeAppend?.();
      if (options.failAppends?.()) throw new Error('event store down');
      return store.appendToStream(...args);
    },
    readStream: (...args) => store.readStream(...args),
    readAll: (...args) => store.readAll(...args),
    subscribeToAll: (...args) => store.subscribeToAll(...args),
    headPosition: () => store.headPosition(),
    close: async () => undefined,
  };
  return createIdentityService({
    users: createCommandHandlers({ eventStore, clock, personalData: pgVault(backend.pool) }).user,
    credentials: options.credentials ?? new PgCredentialStore(backend.identityDb),
    refreshTokens: new PgRefreshTokenStore(backend.identityDb),
    securityEvents: new PgSecurityEventLog(backend.identityDb),
    passwords,
    clock,
  });
}

const email = () => `repair-${randomUUID().slice(0, 8)}@example.com`;

describe('signup repair', () => {
  it('deletes the credentials again when the append fails, so the email stays free', async () => {
    const address = email();
    await expect(service({ failAppends: () => true }).signUp(input(address), context, randomUUID())).rejects.toThrow('event store down');
    await expect(service().signUp(input(address), context, randomUUID())).resolves.toMatchObject({ version: 0 });
  });

  it('finishes a signup whose process died between the two writes when the same command is retried', async () => {
    const address = email();
    const commandId = randomUUID();
    // What a crash after the credentials insert leaves: credentials for the user id this
    // command derives, and no event.
    const userId = deterministicUuid(commandId, 'user-id');
    await new PgCredentialStore(backend.identityDb).insert({ userId, email: address, passwordHash: 'plain:x', createdAt: new Date() });
    await expect(service().logIn({ email: address, password: 'x' }, context)).rejects.toMatchObject({ code: 'invalid-credentials' });

    const retried = await service().signUp(input(address), context, commandId);
    expect(retried.id).toBe(userId);
    expect(await service().signUp(input(address), context, commandId)).toEqual(retried);
    await expect(service().logIn({ email: address, password: 'x' }, context)).resolves.toMatchObject({ actor: { id: userId } });
  });

  it('reclaims the email of a signup abandoned for more than ten minutes, not before', async () => {
    const address = email();
    const clock = new FakeClock();
    const credentials = new PgCredentialStore(backend.identityDb);
    await credentials.insert({ userId: randomUUID(), email: address, passwordHash: 'plain:x', createdAt: clock.now() });

    const early = service({ clock }).signUp(input(address.toUpperCase()), context, randomUUID());
    await expect(early).rejects.toBeInstanceOf(DomainError);
    clock.advance(10 * 60_000 + 1);
    await expect(service({ clock }).signUp(input(address), context, randomUUID())).resolves.toMatchObject({ version: 0 });
  });

  it('never reclaims the email of a registered user, however old', async () => {
    const address = email();
    const clock = new FakeClock();
    await service({ clock }).signUp(input(address), context, randomUUID());
    clock.advance(365 * 24 * 3_600_000);
    await expect(service({ clock }).signUp(input(address), context, randomUUID())).rejects.toMatchObject({ code: 'email-taken' });
  });

  describe('a retried signup meeting a newcomer who reclaims its email as abandoned', () => {
    const retryPassword = 'retry password 1';
    const newcomerPassword = 'newcomer password 2';

    /** Credentials left 11 minutes ago by a signup that died before its event, for `commandId`'s user. */
    async function abandonedSignup(clock: FakeClock, address: string, commandId: string) {
      const userId = deterministicUuid(commandId, 'user-id');
      const createdAt = new Date(clock.now().getTime() - 11 * 60_000);
      await new PgCredentialStore(backend.identityDb).insert({ userId, email: address, passwordHash: `plain:${retryPassword}`, createdAt });
      return userId;
    }

    /** Which of `userIds` have a UserRegistered event. */
    async function registered(clock: FakeClock, userIds: string[]) {
      const users = createCommandHandlers({ eventStore: backend.eventStore, clock, personalData: pgVault(backend.pool) }).user;
      const states = await Promise.all(userIds.map(async (id) => ({ id, status: (await users.read(`user-${id}`)).state.status })));
      return states.filter((state) => state.status === 'registered').map((state) => state.id);
    }

    /** Holds `userId`'s signup right after its insert found the credentials already there. */
    class HeldOnOwnCredentials extends PgCredentialStore {
      constructor(
        private readonly userId: string,
        private readonly held: Gate,
      ) {
        super(backend.identityDb);
      }

      override async insert(claim: NewCredentials): Promise<CredentialsClaim> {
        const claimed = await super.insert(claim);
        if (!claimed.inserted && claimed.userId === this.userId) await this.held.pass();
        return claimed;
      }
    }

    const signUpAs = (address: string, password: string) => ({ email: address, password, name: 'Ada', roles: ['CONSUMER' as const] });

    /** Runs `retry` until `held` holds it, the newcomer to its end, then lets `retry` go. */
    async function interleave(retry: () => Promise<unknown>, held: Gate, newcomer: () => Promise<unknown>) {
      const retried = retry().then((result) => ({ result }), (error: unknown) => ({ error }));
      await held.reached;
      const arrived = await newcomer().then((result) => ({ result }), (error: unknown) => ({ error }));
      held.release();
      return { retried: await retried, arrived };
    }

    async function expectOneRegisteredOwner(
      clock: FakeClock,
      address: string,
      contenders: { userId: string; password: string; outcome: { result?: unknown; error?: unknown } }[],
    ) {
      const created = contenders.filter((contender) => 'result' in contender.outcome);
      expect(created).toHaveLength(1);
      expect(await registered(clock, contenders.map((contender) => contender.userId))).toEqual(created.map((winner) => winner.userId));
      for (const loser of contenders.filter((contender) => 'error' in contender.outcome)) {
        expect(loser.outcome.error).toMatchObject({ code: 'email-taken' });
      }
      const [winner] = created;
      await expect(service({ clock }).logIn({ email: address, password: winner?.password ?? '' }, context)).resolves.toMatchObject({ actor: { id: winner?.userId } });
    }

    it('given the retry renewed its credentials and is appending, when the newcomer signs up, then only one of them is registered with the email', async () => {
      const clock = new FakeClock();
      const address = email();
      const commandId = randomUUID();
      const retryUser = await abandonedSignup(clock, address, commandId);
      const newcomerCommand = randomUUID();
      const held = gate();

      const { retried, arrived } = await interleave(
        () => service({ clock, beforeAppend: held.pass }).signUp(signUpAs(address, retryPassword), context, commandId),
        held,
        () => service({ clock }).signUp(signUpAs(address, newcomerPassword), context, newcomerCommand),
      );

      await expectOneRegisteredOwner(clock, address, [
        { userId: retryUser, password: retryPassword, outcome: retried },
        { userId: deterministicUuid(newcomerCommand, 'user-id'), password: newcomerPassword, outcome: arrived },
      ]);
    });

    it('given the retry saw its own credentials, when the newcomer reclaims them before the retry goes on, then only one of them is registered with the email', async () => {
      const clock = new FakeClock();
      const address = email();
      const commandId = randomUUID();
      const retryUser = await abandonedSignup(clock, address, commandId);
      const newcomerCommand = randomUUID();
      const held = gate();
      // The retry is held right after its insert found its own credentials.
      const heldCredentials = new HeldOnOwnCredentials(retryUser, held);
      const { retried, arrived } = await interleave(
        () => service({ clock, credentials: heldCredentials }).signUp(signUpAs(address, retryPassword), context, commandId),
        held,
        () => service({ clock }).signUp(signUpAs(address, newcomerPassword), context, newcomerCommand),
      );

      await expectOneRegisteredOwner(clock, address, [
        { userId: retryUser, password: retryPassword, outcome: retried },
        { userId: deterministicUuid(newcomerCommand, 'user-id'), password: newcomerPassword, outcome: arrived },
      ]);
    });
  });
});
