import { sql, type Kysely, type Migration } from 'kysely';

/**
 * Which log the checkpoints in this database were taken from (`event-log-identity.ts`): one row
 * at most, written by the first process to start after this migration.
 */
export const eventLogIdentityMigration: Migration = {
  async up(db: Kysely<unknown>) {
    await sql`
      CREATE TABLE event_log_identity (
        one_row     boolean     PRIMARY KEY DEFAULT true CHECK (one_row),
        kind        text        NOT NULL CHECK (kind IN ('postgres', 'eventstoredb')),
        recorded_at timestamptz NOT NULL DEFAULT now()
      )`.execute(db);
  },
};
