import type { JsonObject } from '../ports/event-store.js';

// The identity ports live beside their only user until the identity module settles; they
// follow the same rule as src/application/ports (interfaces here, adapters in infrastructure).

/** A login's secret side, kept outside the event log so it can be changed and deleted. */
export type StoredCredentials = {
  readonly userId: string;
  /** A PHC string (`$argon2id$…`); never the password. */
  readonly passwordHash: string;
  /**
   * Set while the account is locked after too many failed logins. As read, not a permission:
   * only `reserveLoginAttempt` decides whether a password may be checked.
   */
  readonly lockedUntil: Date | null;
};

export type NewCredentials = {
  readonly userId: string;
  readonly email: string;
  readonly passwordHash: string;
  readonly createdAt: Date;
};

export type CredentialsClaim =
  | { readonly inserted: true }
  /** The email was taken, by `userId` (possibly the same user, on a retried signup). */
  | { readonly inserted: false; readonly userId: string; readonly createdAt: Date };

export type LoginAttempt =
  /**
   * The password may be checked. `lockedUntil` is set when this attempt took the last one
   * allowed and so locked the account: a failure ends there, a success lifts that lock.
   */
  | { readonly outcome: 'granted'; readonly lockedUntil: Date | null }
  /** The account is locked until `until`: no password is checked. */
  | { readonly outcome: 'locked'; readonly until: Date };

/** What one reservation of a login attempt goes by; see `CredentialStore.reserveLoginAttempt`. */
export type AttemptPolicy = {
  readonly maxAttempts: number;
  readonly now: Date;
  /** Until when the attempt that takes the last one allowed locks. */
  readonly lockUntil: Date;
  /** A count whose last attempt came before this is forgotten: the next attempt is the first. */
  readonly forgetBefore: Date;
};

/** Email + password hash per user; emails are unique regardless of letter case. */
export interface CredentialStore {
  /** Inserts `credentials` unless their email is taken, compared case-insensitively. */
  insert(credentials: NewCredentials): Promise<CredentialsClaim>;

  /** Deletes a user's credentials: how a signup whose event was never written is undone. */
  remove(userId: string): Promise<void>;

  /**
   * Deletes `userId`'s credentials only if their `createdAt` is still the one `insert` reported:
   * how an abandoned signup is reclaimed. Compared and deleted in one step, so a signup retried
   * since (see `renew`) keeps them. Whether anything was deleted.
   */
  removeIfCreatedAt(userId: string, createdAt: Date): Promise<boolean>;

  /**
   * Sets `userId`'s credentials' `createdAt`: a retried signup about to finish says it is in
   * progress, so a reclaim that saw them old deletes nothing. `false` when there are none, which
   * means they were reclaimed (or never written).
   */
  renew(userId: string, createdAt: Date): Promise<boolean>;

  /** The credentials for `email`, compared case-insensitively; `undefined` when none. */
  findByEmail(email: string): Promise<StoredCredentials | undefined>;

  /**
   * Reserves one password check for `userId`, in one atomic step with the lock check, so that
   * concurrent attempts cannot all pass the check before any of them is counted. The reserved
   * attempt counts as failed unless `recordSuccessfulLogin` follows: at most `maxAttempts` are
   * granted between a success and the next lock. The attempt that takes the last of them locks
   * the account until `lockUntil` at once, before its password is checked. A lock that has
   * ended by `now`, or a count last added to before `forgetBefore`, starts the count over.
   * `undefined` when `userId` has no credentials.
   */
  reserveLoginAttempt(userId: string, policy: AttemptPolicy): Promise<LoginAttempt | undefined>;

  /**
   * The same reservation, by the same rules and with the same kind of write, for an `email` that
   * has no credentials: were such emails never counted or locked, the answers and their timing
   * would tell which emails have accounts. (No success ever follows, so no lock is ever lifted.)
   * The count is kept under a keyed hash of the email as `findByEmail` compares it, never the
   * email itself, and is forgotten like an account's: a sweep may delete it from then on. An
   * email that gets an account counts from zero in its credentials: the guesses made while it had
   * none were at a password that did not exist, and are not carried over.
   */
  reserveUnknownEmailAttempt(email: string, policy: AttemptPolicy): Promise<LoginAttempt>;

  /**
   * Deletes up to `limit` counts of unknown emails that `reserveUnknownEmailAttempt` would start
   * over (unlocked at `now`, last added to before `forgetBefore`); how many it deleted.
   */
  sweepUnknownEmailAttempts(policy: Pick<AttemptPolicy, 'now' | 'forgetBefore'>, limit?: number): Promise<number>;

  /**
   * Starts the count over (attempts still being checked are forgotten with the failed ones: the
   * count does not tell them apart) and lifts the lock `attempt` set, if any. A lock set by
   * another attempt stays, and so does the count behind it: lifting them would give the guesses
   * running beside this login a fresh allowance.
   */
  recordSuccessfulLogin(userId: string, attempt: { readonly lockedUntil: Date | null }): Promise<void>;
}

export type NewRefreshToken = {
  /** SHA-256 of the token: the token itself is never stored. */
  readonly tokenHash: string;
  readonly issuedAt: Date;
  readonly expiresAt: Date;
};

export type RotationOutcome =
  /** `oldHash` was its family's live token; it is now retired and the new token is live. */
  | { readonly outcome: 'rotated'; readonly userId: string; readonly familyId: string }
  /** `oldHash` had been rotated already: someone replays a stolen or leaked token. */
  | { readonly outcome: 'reused'; readonly userId: string; readonly familyId: string }
  /** Unknown, expired, or of a revoked family. */
  | { readonly outcome: 'invalid' };

/**
 * Refresh tokens in families: one family per login, one live token per family. Each use
 * replaces the live token; presenting a replaced one revokes the whole family.
 */
export interface RefreshTokenStore {
  /** Starts a family (a login) with its first live token. */
  startFamily(token: NewRefreshToken & { readonly familyId: string; readonly userId: string }): Promise<void>;

  /**
   * The user `tokenHash` was issued to, whatever its state (live, retired, revoked or expired);
   * `undefined` when no such token is stored. Reads only: it takes no lock and changes nothing,
   * so a refresh can check what may fail for a passing reason before `rotate` commits.
   */
  ownerOf(tokenHash: string): Promise<string | undefined>;

  /**
   * The user `tokenHash` was issued to if it is its family's live token, unexpired at `now`;
   * `undefined` when it is retired, revoked, expired or unknown. Reads only, as `ownerOf`.
   */
  liveOwnerOf(tokenHash: string, now: Date): Promise<string | undefined>;

  /**
   * In one transaction: if `oldHash` is live and unexpired at `now`, retires it and makes `next`
   * the family's live token; if it was retired before, revokes every token of its family.
   */
  rotate(oldHash: string, next: NewRefreshToken, now: Date): Promise<RotationOutcome>;

  /** Revokes the family of `tokenHash` if it belongs to `userId`; `false` when it does not. */
  revokeFamily(tokenHash: string, userId: string): Promise<boolean>;
}

export type SecurityEventType =
  | 'login_failed'
  | 'login_while_locked'
  | 'account_locked'
  | 'refresh_token_reused'
  | 'logout';

/** Security-relevant moments that are not domain events; the audit API reads them. */
export type SecurityEvent = {
  readonly type: SecurityEventType;
  /** `null` when the attempt named no known account. */
  readonly userId: string | null;
  readonly occurredAt: Date;
  readonly requestId: string;
  readonly ip?: string | undefined;
  readonly userAgent?: string | undefined;
  readonly details?: JsonObject;
};

export interface SecurityEventLog {
  /** Appends one entry; entries are never changed. */
  record(event: SecurityEvent): Promise<void>;
}

/** A slow, salted, memory-hard password hash. */
export interface PasswordHasher {
  /** A self-describing hash string (algorithm, parameters and salt included). */
  hash(password: string): Promise<string>;
  /** Whether `password` matches `hash`; `false` (not an exception) for a malformed hash. */
  verify(hash: string, password: string): Promise<boolean>;
}
