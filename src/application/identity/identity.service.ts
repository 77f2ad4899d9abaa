import { createHash, randomBytes, randomUUID } from 'node:crypto';
import { DomainError } from '../../domain/shared/domain-error.js';
import type { UserCommand } from '../../domain/user/user.commands.js';
import { streamIdOf, type UserState } from '../../domain/user/user.decider.js';
import type { UserEvent, UserRole } from '../../domain/user/user.events.js';
import { isAnonymous } from '../authorization/actors.js';
import { currentRoles } from '../authorization/registered-users.js';
import { outcome, type CommandOutcome } from '../command-handling/command-outcome.js';
import type { CommandHandler } from '../command-handling/handle-command.js';
import { deterministicUuid } from '../ids.js';
import type { Actor, CommandContext } from '../metadata.js';
import type { Clock } from '../ports/clock.js';
import { AccountLockedError, AuthenticationError } from './identity-errors.js';
import type {
  AttemptPolicy,
  CredentialStore,
  NewCredentials,
  PasswordHasher,
  RefreshTokenStore,
  SecurityEventLog,
  SecurityEventType,
  StoredCredentials,
} from './identity.ports.js';

/**
 * Failed logins in a row that lock an account, and for how long; an email without an account
 * locks alike. A count idle for `forgetAfterMs` starts over, for both, so that unknown emails'
 * counts can be deleted; no shorter than the lock, it gives a guesser no more tries a day than
 * waiting out locks already does.
 */
export const lockoutPolicy = { maxFailedAttempts: 5, lockoutMs: 15 * 60_000, forgetAfterMs: 15 * 60_000 } as const;

/** Every how many logins the unknown emails' counts that no longer count are swept. */
const loginsPerSweep = 100;

/**
 * After how long credentials without a UserRegistered event count as an abandoned signup. Far
 * longer than any append takes, so a slow signup in progress is never mistaken for one.
 */
const abandonedSignupMs = 10 * 60_000;

/** How long a refresh token lives unused; each rotation starts a new one. */
export const refreshTokenTtlMs = 30 * 24 * 60 * 60_000;

export type IdentityServiceDeps = {
  /** The command loop for user streams (the `user` entry of the command handlers). */
  readonly users: CommandHandler<UserCommand, UserEvent, UserState>;
  readonly credentials: CredentialStore;
  readonly refreshTokens: RefreshTokenStore;
  readonly securityEvents: SecurityEventLog;
  readonly passwords: PasswordHasher;
  readonly clock: Clock;
};

export type SignUp = { readonly email: string; readonly password: string; readonly name: string; readonly roles: UserRole[] };

/** What the edge turns into an access token, plus the opaque refresh token for the client. */
export type Session = { readonly actor: Actor; readonly refreshToken: string; readonly refreshTokenExpiresAt: Date };

export type IdentityService = ReturnType<typeof createIdentityService>;

export const hashRefreshToken = (token: string): string => createHash('sha256').update(token).digest('hex');

/**
 * One spelling per password, Unicode NFKC as NIST SP 800-63B advises: "é" typed as one code
 * point on one keyboard and as "e" and a combining accent on another is the same password.
 */
const normalisedPassword = (password: string) => password.normalize('NFKC');

export function createIdentityService(deps: IdentityServiceDeps) {
  const { users, credentials, refreshTokens, passwords, clock } = deps;
  const isRegistered = async (userId: string) => (await users.read(streamIdOf(userId))).state.status === 'registered';
  const isErased = async (userId: string) => {
    const { state } = await users.read(streamIdOf(userId));
    return state.status === 'registered' && state.erased;
  };
  // Verifying against a real hash when the email is unknown makes both failures take as long,
  // so response times do not tell which emails have accounts.
  let decoyHash: Promise<string> | undefined;
  const decoy = () => (decoyHash ??= passwords.hash(randomUUID()));

  const record = (type: SecurityEventType, userId: string | null, context: CommandContext, details?: { [key: string]: string }) =>
    deps.securityEvents.record({
      type,
      userId,
      occurredAt: clock.now(),
      requestId: context.requestId,
      ip: context.ip,
      userAgent: context.userAgent,
      ...(details ? { details } : {}),
    });

  const newRefreshToken = () => {
    const token = randomBytes(32).toString('base64url');
    const issuedAt = clock.now();
    return { token, tokenHash: hashRefreshToken(token), issuedAt, expiresAt: new Date(issuedAt.getTime() + refreshTokenTtlMs) };
  };

  /**
   * Who gets a session as `userId`, or `undefined` when no one may. The session's roles come
   * from the user's stream, so a grant or revocation counts from the next login or refresh. An
   * erased person has no sessions: erasure deletes their login and tokens, and a token a
   * rotation wrote while it did so opens nothing either.
   */
  async function sessionActor(userId: string): Promise<Actor | undefined> {
    const user = await users.read(streamIdOf(userId));
    if (user.state.status !== 'registered' || user.state.erased) return undefined;
    return { id: userId, roles: [...user.state.roles] };
  }

  const sessionOf = (actor: Actor, refreshToken: { readonly token: string; readonly expiresAt: Date }): Session => ({
    actor,
    refreshToken: refreshToken.token,
    refreshTokenExpiresAt: refreshToken.expiresAt,
  });

  const invalidRefreshToken = () => new AuthenticationError('invalid-refresh-token', 'The refresh token is invalid, expired or revoked');
  const emailTaken = () => new DomainError('email-taken', 'An account with this email already exists');
  const accountErased = () => new DomainError('account-erased', 'This account was erased');

  const attemptPolicy = (): AttemptPolicy => {
    const now = clock.now();
    const lockUntil = new Date(now.getTime() + lockoutPolicy.lockoutMs);
    return { maxAttempts: lockoutPolicy.maxFailedAttempts, now, lockUntil, forgetBefore: new Date(now.getTime() - lockoutPolicy.forgetAfterMs) };
  };

  /**
   * Checks `password` unless the email is locked; throws unless it is an account's and right. The
   * attempt is counted before the slow verification, in the same step as the lock check: checked
   * first and counted after, every guess sent in parallel would pass the check and be verified.
   * An unknown email is counted, locked and verified (against the decoy) as an account is, so
   * neither the answers nor the work behind them tell which emails have accounts.
   */
  async function verifyWithinLockout(email: string, found: StoredCredentials | undefined, password: string, context: CommandContext) {
    const policy = attemptPolicy();
    const attempt = found ? await credentials.reserveLoginAttempt(found.userId, policy) : await credentials.reserveUnknownEmailAttempt(email, policy);
    if (!attempt) throw new AuthenticationError('invalid-credentials', 'Invalid email or password');
    const userId = found?.userId ?? null;
    const unknownEmail = found ? undefined : { reason: 'unknown email' };
    if (attempt.outcome === 'locked') {
      await record('login_while_locked', userId, context, unknownEmail);
      throw new AccountLockedError(attempt.until, policy.now);
    }
    const hash = found?.passwordHash ?? (await decoy());
    const normalised = normalisedPassword(password);
    // A hash made before passwords were normalised holds the password as it was typed. Both
    // checks run for an unknown email too, so the second one tells nobody an account exists.
    const verified = (await passwords.verify(hash, normalised)) || (normalised !== password && (await passwords.verify(hash, password)));
    if (found && verified) return { userId: found.userId, lockedUntil: attempt.lockedUntil };
    // The failure was counted with the reservation; the attempt that took the last one allowed
    // has locked the account and says so.
    await record('login_failed', userId, context, { reason: found ? 'wrong password' : 'unknown email' });
    if (!attempt.lockedUntil) throw new AuthenticationError('invalid-credentials', 'Invalid email or password');
    await record('account_locked', userId, context, { until: attempt.lockedUntil.toISOString(), ...unknownEmail });
    throw new AccountLockedError(attempt.lockedUntil, policy.now);
  }

  let loginsSinceSweep = 0;
  /** Now and then, not awaited: the sweep only keeps the table small, no answer waits for it. */
  function sweepNowAndThen(): void {
    if ((loginsSinceSweep += 1) < loginsPerSweep) return;
    loginsSinceSweep = 0;
    // A failed sweep loses nothing: an idle count starts over when next touched whether or not
    // it was deleted, and the next sweep tries again.
    credentials.sweepUnknownEmailAttempts(attemptPolicy()).catch(() => undefined);
  }

  // Signup writes two places: the credentials row (which owns email uniqueness) and the
  // UserRegistered event. Credentials go first and alone, with no transaction held open across
  // the append: such a transaction would pin a pool connection while the append waits for
  // another (a deadlock once the pool is full of signups) and hold back the event store's
  // subscription horizon. Whatever goes wrong leaves at worst credentials without an event,
  // which cannot log in (sessionActor checks the stream) and is repaired three ways: the append's
  // failure deletes them at once; a retry with the same Idempotency-Key derives the same user
  // id and finishes the append; and a later signup for the email reclaims them once abandoned.
  // A retry and a reclaim can meet: the retry renews the row's createdAt and the reclaim deletes
  // only the row as it saw it, so at most one of them goes on to append a registration.
  async function claimEmail(claim: NewCredentials): Promise<void> {
    const first = await credentials.insert(claim);
    if (first.inserted) return;
    if (first.userId === claim.userId) return reclaimOwn(claim);
    const abandoned = clock.now().getTime() - first.createdAt.getTime() > abandonedSignupMs && !(await isRegistered(first.userId));
    if (abandoned) {
      await credentials.removeIfCreatedAt(first.userId, first.createdAt);
      if ((await credentials.insert(claim)).inserted) return;
    }
    throw emailTaken();
  }

  /** A retried signup's own credentials: renewed, or, if a newcomer reclaimed them meanwhile, claimed again. */
  async function reclaimOwn(claim: NewCredentials): Promise<void> {
    if (await credentials.renew(claim.userId, claim.createdAt)) return;
    const again = await credentials.insert(claim);
    // The same user id again is another copy of this retry, which has just written them afresh.
    if (again.inserted || again.userId === claim.userId) return;
    throw emailTaken();
  }

  async function releaseIfUnregistered(userId: string): Promise<void> {
    try {
      if (!(await isRegistered(userId))) await credentials.remove(userId);
    } catch {
      // The store is unreachable: leave the credentials for claimEmail to reclaim later.
    }
  }

  return {
    /**
     * Registers a user. The user id derives from the command id, so a retried signup (same
     * Idempotency-Key) names the same stream and appends nothing twice.
     */
    async signUp(input: SignUp, context: CommandContext, commandId: string): Promise<CommandOutcome> {
      const userId = deterministicUuid(commandId, 'user-id');
      const selfService = isAnonymous(context.actor);
      // The roles the decider checks are those the registering user holds now, not those its token names.
      const registeredBy = selfService ? null : { id: context.actor.id, roles: await currentRoles(users, context.actor) };
      const command: UserCommand = {
        type: 'RegisterUser',
        data: { userId, email: input.email, name: input.name, roles: input.roles, registeredBy },
      };
      // Whoever signs up for themselves is the actor of their own registration.
      const actor = selfService ? { id: userId, roles: input.roles } : context.actor;
      // A signup replayed once its Idempotency-Key expired names the same user: if that person
      // was erased meanwhile, their login must not come back with it.
      if (await isErased(userId)) throw accountErased();
      const passwordHash = await passwords.hash(normalisedPassword(input.password));
      await claimEmail({ userId, email: input.email, passwordHash, createdAt: clock.now() });
      // An erasure's delete may have come between that check and the claim, which wrote the login
      // back. Read after the claim, the stream tells: the erasure is recorded, and the claim is
      // undone here; or it is not yet, and the delete the erasure repeats once recorded comes after.
      if (await isErased(userId)) {
        await credentials.remove(userId);
        throw accountErased();
      }
      try {
        const result = await users.handle(streamIdOf(userId), command, { commandId, context: { ...context, actor } });
        return outcome(userId, result);
      } catch (error) {
        await releaseIfUnregistered(userId);
        throw error;
      }
    },

    async logIn(input: { readonly email: string; readonly password: string }, context: CommandContext): Promise<Session> {
      sweepNowAndThen();
      const found = await credentials.findByEmail(input.email);
      const { userId, lockedUntil } = await verifyWithinLockout(input.email, found, input.password, context);
      await credentials.recordSuccessfulLogin(userId, { lockedUntil });
      const actor = await sessionActor(userId);
      if (!actor) throw new AuthenticationError('invalid-credentials', 'Invalid email or password');
      const refreshToken = newRefreshToken();
      await refreshTokens.startFamily({ ...refreshToken, familyId: randomUUID(), userId });
      return sessionOf(actor, refreshToken);
    },

    /** Trades a live refresh token for a new pair; roles are read afresh, so grants take effect. */
    async refresh(refreshToken: string, context: CommandContext): Promise<Session> {
      const tokenHash = hashRefreshToken(refreshToken);
      // Whatever may fail for a passing reason (the database, the key store) happens before the
      // rotation: failing after it, the client would never get the new token, and its retry
      // with the old one would revoke the family and be logged as a stolen token replayed.
      const owner = await refreshTokens.ownerOf(tokenHash);
      const actor = owner === undefined ? undefined : await sessionActor(owner);
      if (!actor) throw invalidRefreshToken();
      const next = newRefreshToken();
      const rotation = await refreshTokens.rotate(tokenHash, next, next.issuedAt);
      if (rotation.outcome === 'reused') await record('refresh_token_reused', rotation.userId, context, { familyId: rotation.familyId });
      // A token's owner never changes; should the one rotated name someone else, the roles read
      // above are not theirs, and no session is better than the wrong one.
      if (rotation.outcome !== 'rotated' || rotation.userId !== actor.id) throw invalidRefreshToken();
      return sessionOf(actor, next);
    },

    /**
     * Who `refreshToken` still opens a session as, with the roles they hold now: `undefined` unless
     * it is its family's live token, unexpired, of a user who may have a session. A stored refresh
     * answer is replayed only while it does (see the auth routes), so that once its token is used,
     * revoked or its owner erased, it is not handed out again; and its access token is signed anew
     * for this actor, so a replay never carries roles the user has lost since.
     */
    async liveSessionActor(refreshToken: string): Promise<Actor | undefined> {
      const owner = await refreshTokens.liveOwnerOf(hashRefreshToken(refreshToken), clock.now());
      return owner === undefined ? undefined : sessionActor(owner);
    },

    /** Revokes the refresh-token family; a token that is not the caller's changes nothing. */
    async logOut(refreshToken: string, context: CommandContext): Promise<void> {
      const userId = context.actor.id;
      if (await refreshTokens.revokeFamily(hashRefreshToken(refreshToken), userId)) await record('logout', userId, context);
    },
  };
}
