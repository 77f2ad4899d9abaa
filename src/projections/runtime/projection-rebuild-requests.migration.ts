import type { Kysely, Migration } from 'kysely';

/**
 * Registered as `0730_projection_rebuild_requests`: who asked for a generation, in which request,
 * when and why, so that auditors can tell a rebuild an admin ran from one a deploy started. Null
 * on generations created before, and on those nobody asked for (the first copy, a new version's).
 */
export const projectionRebuildRequestsMigration: Migration = {
  async up(db: Kysely<unknown>) {
    await db.schema
      .alterTable('projection_checkpoints')
      .addColumn('requested_by', 'text')
      .addColumn('request_id', 'text')
      .addColumn('requested_at', 'timestamptz')
      .addColumn('reason', 'text')
      .execute();
  },
  async down(db: Kysely<unknown>) {
    await db.schema
      .alterTable('projection_checkpoints')
      .dropColumn('requested_by')
      .dropColumn('request_id')
      .dropColumn('requested_at')
      .dropColumn('reason')
      .execute();
  },
};
