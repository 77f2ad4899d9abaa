import { sql, type Kysely, type Migration } from 'kysely';

/** Idempotency keys with their stored responses: see `idempotency.tables.ts`. */
export const idempotencyMigration: Migration = {
  async up(db: Kysely<unknown>) {
    await sql`
      CREATE TABLE idempotency_keys (
        scope            text        NOT NULL,
        key              text        NOT NULL,
        request_hash     text        NOT NULL,
        status           text        NOT NULL CHECK (status IN ('in_flight', 'completed')),
        locked_until     timestamptz,
        response_status  integer,
        response_headers jsonb,
        response_body    bytea,
        created_at       timestamptz NOT NULL,
        expires_at       timestamptz NOT NULL,
        PRIMARY KEY (scope, key)
      )`.execute(db);
    // For the sweep of expired keys.
    await sql`CREATE INDEX idempotency_keys_expiry ON idempotency_keys (expires_at)`.execute(db);
  },
};
