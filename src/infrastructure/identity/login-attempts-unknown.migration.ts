import { randomBytes } from 'node:crypto';
import { sql, type Kysely, type Migration } from 'kysely';

/**
 * Migration `0640_login_attempts_unknown`: emails without an account are counted and locked like
 * accounts (see `LoginAttemptsUnknownTable`), and both kinds of count are forgotten once idle, by
 * the same rule: rows for unknown emails must go away, and an account's count that outlived
 * theirs would again tell the two apart.
 *
 * The key is made here rather than taken from the configuration, so every instance of the
 * service shares it without new wiring and it stays the same across restarts: otherwise each
 * instance, or each restart, would count an unknown email afresh while an account's count held.
 */
export const loginAttemptsUnknownMigration: Migration = {
  async up(db: Kysely<unknown>) {
    // No backfill: a count without a time is kept (see pg-credential-store's countAttempt), so the
    // counts that older instances keep running during a rolling deploy, which set no time, hold
    // too; and the table is not locked for a scan of every account.
    await sql`ALTER TABLE credentials ADD COLUMN last_attempt_at timestamptz`.execute(db);

    await sql`
      CREATE TABLE login_attempts_unknown (
        email_hmac      bytea       PRIMARY KEY,
        failed_logins   integer     NOT NULL,
        locked_until    timestamptz,
        last_attempt_at timestamptz NOT NULL
      )`.execute(db);
    // For the sweep, which looks for rows by how long they have been idle.
    await sql`CREATE INDEX login_attempts_unknown_idle ON login_attempts_unknown (last_attempt_at)`.execute(db);

    await sql`CREATE TABLE login_attempts_unknown_key (key bytea NOT NULL)`.execute(db);
    // One key: a second would make the same email count under two hashes.
    await sql`CREATE UNIQUE INDEX login_attempts_unknown_key_one ON login_attempts_unknown_key ((true))`.execute(db);
    await sql`INSERT INTO login_attempts_unknown_key (key) VALUES (${randomBytes(32)})`.execute(db);
    // The service only reads it: without the row, unknown emails' logins would fail where an
    // account's answer 401, which tells them apart again.
    await sql`
      DO $$
      BEGIN
        IF EXISTS (SELECT 1 FROM pg_roles WHERE rolname = 'bookable_app') THEN
          REVOKE INSERT, UPDATE, DELETE, TRUNCATE ON login_attempts_unknown_key FROM bookable_app;
        END IF;
      END $$`.execute(db);
  },
};
