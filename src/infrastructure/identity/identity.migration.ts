import { sql, type Kysely, type Migration } from 'kysely';

/** Credentials, refresh tokens and security events: see `identity.tables.ts` for the columns' meaning. */
export const identityMigration: Migration = {
  async up(db: Kysely<unknown>) {
    await sql`
      CREATE TABLE credentials (
        user_id       text        PRIMARY KEY,
        email         text        NOT NULL,
        password_hash text        NOT NULL,
        failed_logins integer     NOT NULL DEFAULT 0,
        locked_until  timestamptz,
        created_at    timestamptz NOT NULL
      )`.execute(db);
    // The one place email uniqueness is enforced: concurrent signups race here, not in code.
    await sql`CREATE UNIQUE INDEX credentials_email_key ON credentials (lower(email))`.execute(db);

    await sql`
      CREATE TABLE refresh_tokens (
        token_hash text        PRIMARY KEY,
        family_id  uuid        NOT NULL,
        user_id    text        NOT NULL,
        status     text        NOT NULL CHECK (status IN ('live', 'retired', 'revoked')),
        issued_at  timestamptz NOT NULL,
        expires_at timestamptz NOT NULL
      )`.execute(db);
    await sql`CREATE INDEX refresh_tokens_family ON refresh_tokens (family_id)`.execute(db);

    // Append-only; the audit API reads it by user and by time.
    await sql`
      CREATE TABLE security_events (
        id          bigint      GENERATED ALWAYS AS IDENTITY PRIMARY KEY,
        occurred_at timestamptz NOT NULL,
        type        text        NOT NULL,
        user_id     text,
        request_id  text        NOT NULL,
        ip          text,
        user_agent  text,
        details     jsonb       NOT NULL DEFAULT '{}'
      )`.execute(db);
    await sql`CREATE INDEX security_events_user ON security_events (user_id, occurred_at)`.execute(db);
    await sql`CREATE INDEX security_events_time ON security_events (occurred_at)`.execute(db);
  },
};
