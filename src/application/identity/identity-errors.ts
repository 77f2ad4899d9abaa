/**
 * The caller could not prove who they are. One code for "no such email" and "wrong password"
 * alike, so the answer does not tell which emails have accounts.
 */
export class AuthenticationError extends Error {
  override readonly name = 'AuthenticationError';
  constructor(
    readonly code: 'invalid-credentials' | 'invalid-refresh-token',
    message: string,
  ) {
    super(message);
  }
}

/** Too many failed logins in a row: no password is checked until `until`. */
export class AccountLockedError extends Error {
  override readonly name = 'AccountLockedError';
  /** Whole seconds from `now` to `until`, at least 1: what `Retry-After` says. */
  readonly retryAfterSeconds: number;
  constructor(
    readonly until: Date,
    now: Date,
  ) {
    super(`Too many failed logins; try again after ${until.toISOString()}`);
    this.retryAfterSeconds = Math.max(1, Math.ceil((until.getTime() - now.getTime()) / 1000));
  }
}
