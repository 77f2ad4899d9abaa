import type { ColumnType } from 'kysely';

export interface IdempotencyKeysTable {
  /**
   * Whose key: the actor id, or `anonymous:<method> <route>` for unauthenticated requests; on a
   * route that replays credentials (token refresh), followed by a space and the request hash.
   */
  scope: string;
  key: string;
  /** HMAC-SHA-256 of method, path, If-Match and body: tells a retry from a different request. */
  request_hash: string;
  /** 1: made by the formula before the hash covered If-Match and sorted the body; 2: by today's. */
  request_hash_version: 1 | 2;
  status: 'in_flight' | 'completed';
  /** While in flight: after this, the first attempt is presumed dead and a retry may take over. */
  locked_until: Date | null;
  /** While in flight: the claim's own token, which its request's complete, release and renewals show. */
  claim_token: string | null;
  response_status: number | null;
  /** The headers that belong to the answer (content type, ETag, Event-Position, Location). */
  response_headers: ColumnType<Record<string, string> | null, string | null, string | null>;
  /** AES-256-GCM (iv, tag, ciphertext): a response may carry tokens, which must not sit in clear. */
  response_body: Buffer | null;
  /**
   * The user the stored answer is about, when the scope does not name them (signup: the user
   * created; refresh: the token's owner): erasing that user deletes the row. Null for the rest.
   */
  subject: string | null;
  created_at: Date;
  /** When the response was stored, on the database's clock; null in flight, and on rows stored before it was kept. */
  answered_at: Date | null;
  expires_at: Date;
}

export interface IdempotencyTables {
  idempotency_keys: IdempotencyKeysTable;
}
