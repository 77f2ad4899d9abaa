import { randomUUID } from 'node:crypto';
import { afterAll, beforeAll, describe, expect, it, vi } from 'vitest';
import { createCommandHandlers } from '../../src/application/command-handlers.js';
import { AccountLockedError, AuthenticationError } from '../../src/application/identity/identity-errors.js';
import type { PasswordHasher } from '../../src/application/identity/identity.ports.js';
import { createIdentityService, lockoutPolicy } from '../../src/application/identity/identity.service.js';
import type { CommandContext } from '../../src/application/metadata.js';
import { PgCredentialStore } from '../../src/infrastructure/identity/pg-credential-store.js';
import { PgRefreshTokenStore } from '../../src/infrastructure/identity/pg-refresh-token-store.js';
import { PgSecurityEventLog } from '../../src/infrastructure/identity/pg-security-event-log.js';
import { FakeClock, startBackend, type TestBackend } from '../http/support/command-api.fixture.js';
import { pgVault } from '../support/personal-data.js';

// The lockout must bound how many passwords are checked for an account, not only how many
// failures are remembered: guesses sent in parallel all arrive before any verification ends,
// so a lock looked up before verifying would let every one of them through.

let backend: TestBackend;
beforeAll(async () => {
  backend = await startBackend();
}, 60_000);
afterAll(() => backend.close());

const password = 'correct horse battery staple';
const wrong = 'not the password at all';
const context: CommandContext = { actor: { id: 'anonymous', roles: [] }, requestId: 'r-1', correlationId: 'r-1', causationId: 'r-1' };

/**
 * Transparent hashes whose verifications wait at a gate until `release`, so a race can be held
 * at its widest: every attempt is either verifying or already answered before any verification
 * ends. `verifying` counts the verifications ever started.
 */
function gatedPasswords() {
  let release: () => void = () => undefined;
  const gate = new Promise<void>((resolve) => {
    release = resolve;
  });
  const counts = { verifying: 0 };
  const passwords: PasswordHasher = {
    hash: async (plain) => `plain:${plain}`,
    async verify(hash, plain) {
      counts.verifying += 1;
      await gate;
      return hash === `plain:${plain}`;
    },
  };
  return { passwords, counts, release };
}

function identityService(passwords: PasswordHasher) {
  const clock = new FakeClock();
  return createIdentityService({
    users: createCommandHandlers({ eventStore: backend.eventStore, clock, personalData: pgVault(backend.pool) }).user,
    credentials: new PgCredentialStore(backend.identityDb),
    refreshTokens: new PgRefreshTokenStore(backend.identityDb),
    securityEvents: new PgSecurityEventLog(backend.identityDb),
    passwords,
    clock,
  });
}

const uniqueEmail = () => `race-${randomUUID().slice(0, 8)}@example.com`;

async function registeredUser(passwords: PasswordHasher) {
  const identity = identityService(passwords);
  const email = uniqueEmail();
  const { id: userId } = await identity.signUp({ email, password, name: 'Ada', roles: ['CONSUMER'] }, context, randomUUID());
  return { identity, email, userId };
}

/** Starts logins at once; `answered` counts those that have settled, either way. */
function concurrentLogins(logIn: () => Promise<unknown>, count: number) {
  const progress = { answered: 0 };
  const outcomes = Promise.allSettled(
    Array.from({ length: count }, () =>
      logIn().finally(() => {
        progress.answered += 1;
      }),
    ),
  );
  return { outcomes, progress };
}

const reasons = (outcomes: PromiseSettledResult<unknown>[]) => outcomes.map((outcome) => (outcome.status === 'rejected' ? outcome.reason : outcome.value));

async function securityEvents(userId: string | null, type: string) {
  return backend.identityDb
    .selectFrom('security_events')
    .selectAll()
    .where((eb) => (userId === null ? eb('user_id', 'is', null) : eb('user_id', '=', userId)))
    .where('type', '=', type)
    .execute();
}

describe('lockout under concurrent logins', () => {
  it('verifies only 5 of 30 concurrent wrong passwords; the others are refused as locked', async () => {
    const { passwords, counts, release } = gatedPasswords();
    const { identity, email, userId } = await registeredUser(passwords);

    const race = concurrentLogins(() => identity.logIn({ email, password: wrong }, context), 30);
    await vi.waitFor(() => expect(counts.verifying + race.progress.answered).toBe(30));
    expect(counts.verifying).toBe(lockoutPolicy.maxFailedAttempts);
    release();

    const answers = reasons(await race.outcomes);
    expect(answers.filter((answer) => answer instanceof AuthenticationError)).toHaveLength(lockoutPolicy.maxFailedAttempts - 1);
    expect(answers.filter((answer) => answer instanceof AccountLockedError)).toHaveLength(30 - (lockoutPolicy.maxFailedAttempts - 1));
    expect(await securityEvents(userId, 'account_locked')).toHaveLength(1);
    expect(await securityEvents(userId, 'login_failed')).toHaveLength(lockoutPolicy.maxFailedAttempts);

    await expect(identity.logIn({ email, password }, context)).rejects.toBeInstanceOf(AccountLockedError);
    expect(counts.verifying).toBe(lockoutPolicy.maxFailedAttempts);
  });

  it('refuses the right password, unverified, while the guesses that used up the attempts are still being verified', async () => {
    const { passwords, counts, release } = gatedPasswords();
    const { identity, email } = await registeredUser(passwords);

    const guesses = concurrentLogins(() => identity.logIn({ email, password: wrong }, context), lockoutPolicy.maxFailedAttempts);
    await vi.waitFor(() => expect(counts.verifying).toBe(lockoutPolicy.maxFailedAttempts));
    const owner = concurrentLogins(() => identity.logIn({ email, password }, context), 1);
    await vi.waitFor(() => expect(counts.verifying + owner.progress.answered).toBe(lockoutPolicy.maxFailedAttempts + 1));
    release();

    expect(reasons(await owner.outcomes)).toEqual([expect.any(AccountLockedError)]);
    expect(counts.verifying).toBe(lockoutPolicy.maxFailedAttempts);
    await guesses.outcomes;
    await expect(identity.logIn({ email, password }, context)).rejects.toBeInstanceOf(AccountLockedError);
  });

  it('a success lifts only a lock it set itself: the right password verified beside four wrong ones leaves their lock on', async () => {
    const { passwords, counts, release } = gatedPasswords();
    const { identity, email, userId } = await registeredUser(passwords);

    // The owner's attempt is counted first, so the last of the guesses is the one that locks.
    const owner = concurrentLogins(() => identity.logIn({ email, password }, context), 1);
    await vi.waitFor(() => expect(counts.verifying).toBe(1));
    const guesses = concurrentLogins(() => identity.logIn({ email, password: wrong }, context), lockoutPolicy.maxFailedAttempts - 1);
    await vi.waitFor(() => expect(counts.verifying).toBe(lockoutPolicy.maxFailedAttempts));
    release();

    expect(reasons(await owner.outcomes)).toEqual([expect.objectContaining({ actor: expect.objectContaining({ id: userId }) })]);
    const answers = reasons(await guesses.outcomes);
    expect(answers.filter((answer) => answer instanceof AccountLockedError)).toHaveLength(1);
    await expect(identity.logIn({ email, password }, context)).rejects.toBeInstanceOf(AccountLockedError);
    expect(counts.verifying).toBe(lockoutPolicy.maxFailedAttempts);
  });

  // An email without an account must not be told apart by letting every guess through: it is
  // counted as an account is, and its decoy verifications are bounded the same way.
  it('an email without an account: verifies only 5 of 30 concurrent wrong passwords; the others are refused as locked', async () => {
    const { passwords, counts, release } = gatedPasswords();
    const identity = identityService(passwords);
    const email = uniqueEmail();

    const race = concurrentLogins(() => identity.logIn({ email, password: wrong }, context), 30);
    await vi.waitFor(() => expect(counts.verifying + race.progress.answered).toBe(30));
    expect(counts.verifying).toBe(lockoutPolicy.maxFailedAttempts);
    release();

    const answers = reasons(await race.outcomes);
    expect(answers.filter((answer) => answer instanceof AuthenticationError)).toHaveLength(lockoutPolicy.maxFailedAttempts - 1);
    expect(answers.filter((answer) => answer instanceof AccountLockedError)).toHaveLength(30 - (lockoutPolicy.maxFailedAttempts - 1));
    expect(await securityEvents(null, 'account_locked')).toHaveLength(1);
    expect(await securityEvents(null, 'login_failed')).toHaveLength(lockoutPolicy.maxFailedAttempts);

    // Locked: answered at once, with no password work, as a locked account is.
    await expect(identity.logIn({ email, password }, context)).rejects.toBeInstanceOf(AccountLockedError);
    expect(counts.verifying).toBe(lockoutPolicy.maxFailedAttempts);
  });
});
