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
import type { PasswordHasher } from '../../src/application/identity/identity.ports.js';
import { FakeClock, startBackend, type TestBackend } from '../http/support/command-api.fixture.js';
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

function service(options: { failAppends?: () => boolean; clock?: FakeClock } = {}) {
  const clock = options.clock ?? new FakeClock();
  const store = backend.eventStore;
  const eventStore: EventStore = {
    appendToStream: (...args) => (options.failAppends?.() ? Promise.reject(new Error('event store down')) : store.appendToStream(...args)),
    readStream: (...args) => store.readStream(...args),
    readAll: (...args) => store.readAll(...args),
    subscribeToAll: (...args) => store.subscribeToAll(...args),
    close: async () => undefined,
  };
  return createIdentityService({
    users: createCommandHandlers({ eventStore, clock, personalData: pgVault(backend.pool) }).user,
    credentials: new PgCredentialStore(backend.identityDb),
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
});
