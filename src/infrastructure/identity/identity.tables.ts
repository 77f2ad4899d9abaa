import type { Generated } from 'kysely';
import type { JsonObject } from '../../application/ports/event-store.js';

/** Login secrets, outside the event log: a password hash must be replaceable and erasable. */
export interface CredentialsTable {
  user_id: string;
  /** As the user typed it; uniqueness is on `lower(email)`. */
  email: string;
  password_hash: string;
  /** Password checks granted since the last success or the end of a lock: failed, or still being checked. */
  failed_logins: Generated<number>;
  locked_until: Date | null;
  /** When `failed_logins` was last added to; a count idle for long enough starts over. */
  last_attempt_at: Date | null;
  created_at: Date;
}

/**
 * The lockout of emails that have no account, counted as `credentials` counts an account's so
 * that both answer alike. Rows only live while they still count; a sweep deletes the others.
 */
export interface LoginAttemptsUnknownTable {
  /** HMAC-SHA-256 of the lower-cased email under `login_attempts_unknown_key`: never the email. */
  email_hmac: Buffer;
  failed_logins: number;
  locked_until: Date | null;
  last_attempt_at: Date;
}

/** The one key for `email_hmac`, made by the migration; it never leaves the service. */
export interface LoginAttemptsUnknownKeyTable {
  key: Buffer;
}

export interface RefreshTokensTable {
  /** SHA-256 (hex) of the token; the token itself is only ever in the client's hands. */
  token_hash: string;
  /** One family per login; reuse of a retired token revokes them all. */
  family_id: string;
  user_id: string;
  status: 'live' | 'retired' | 'revoked';
  issued_at: Date;
  expires_at: Date;
}

export interface SecurityEventsTable {
  id: Generated<string>;
  occurred_at: Date;
  type: string;
  user_id: string | null;
  request_id: string;
  ip: string | null;
  user_agent: string | null;
  details: JsonObject;
}

export interface IdentityTables {
  credentials: CredentialsTable;
  login_attempts_unknown: LoginAttemptsUnknownTable;
  login_attempts_unknown_key: LoginAttemptsUnknownKeyTable;
  refresh_tokens: RefreshTokensTable;
  security_events: SecurityEventsTable;
}
