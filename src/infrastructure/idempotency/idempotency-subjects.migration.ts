import { sql, type Kysely, type Migration } from 'kysely';

/**
 * `subject`: the user a stored answer is about when that is not the caller whose scope the key
 * is in (an anonymous signup, a refresh, an admin signing someone up), so that erasing that user
 * finds it. `answered_at`: when the answer was stored, on the database's clock, which a credentials
 * answer is replayed only shortly after (see `CredentialsIdempotency`).
 */
export const idempotencySubjectsMigration: Migration = {
  async up(db: Kysely<unknown>) {
    await sql`ALTER TABLE idempotency_keys ADD COLUMN subject text, ADD COLUMN answered_at timestamptz`.execute(db);
    await sql`CREATE INDEX idempotency_keys_subject ON idempotency_keys (subject) WHERE subject IS NOT NULL`.execute(db);
    // The anonymous signup and refresh rows stored before: no subject, so erasure cannot find
    // them, and a signup's request hash covers its password (a guessing oracle to whoever holds
    // the table and the secret). Gone now rather than at their expiry; a retry of one runs afresh.
    // (An admin's signup rows, in the admin's scope, cannot be told apart: they expire.)
    await sql`
      DELETE FROM idempotency_keys
      WHERE scope = 'anonymous:POST /v1/auth/signup' OR scope LIKE 'anonymous:POST /v1/auth/refresh %'`.execute(db);
  },
};
