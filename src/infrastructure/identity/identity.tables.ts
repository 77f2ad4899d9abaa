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
  created_at: Date;
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
  refresh_tokens: RefreshTokensTable;
  security_events: SecurityEventsTable;
}
