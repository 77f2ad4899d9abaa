import { sql, type Kysely, type Migration } from 'kysely';

/** One row per process manager: the last position it handled (see `pg-process-checkpoints.ts`). */
export const processCheckpointsMigration: Migration = {
  async up(db: Kysely<unknown>) {
    await sql`
      CREATE TABLE process_checkpoints (
        process_name     text        PRIMARY KEY,
        position_commit  numeric(20) NOT NULL,
        position_prepare numeric(20) NOT NULL,
        updated_at       timestamptz NOT NULL DEFAULT now()
      )`.execute(db);
  },
};
