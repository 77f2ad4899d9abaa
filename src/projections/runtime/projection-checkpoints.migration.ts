import { sql, type Kysely, type Migration } from 'kysely';

/** Registered as `0200_projections`. Read models' own tables are created by the runtime, per generation. */
export const projectionCheckpointsMigration: Migration = {
  async up(db: Kysely<unknown>) {
    await db.schema
      .createTable('projection_checkpoints')
      .addColumn('name', 'text', (c) => c.notNull())
      .addColumn('generation', 'integer', (c) => c.notNull())
      .addColumn('version', 'integer', (c) => c.notNull())
      .addColumn('active', 'boolean', (c) => c.notNull().defaultTo(false))
      .addColumn('status', 'text', (c) =>
        c.notNull().check(sql`status in ('running', 'rebuilding', 'failed', 'retired')`),
      )
      .addColumn('schema_ready', 'boolean', (c) => c.notNull().defaultTo(false))
      .addColumn('position_commit', 'numeric(20, 0)', (c) => c.notNull().defaultTo(0))
      .addColumn('position_prepare', 'numeric(20, 0)', (c) => c.notNull().defaultTo(0))
      .addColumn('events_processed', 'bigint', (c) => c.notNull().defaultTo(0))
      .addColumn('last_event_recorded_at', 'timestamptz')
      .addColumn('failed_at', 'timestamptz')
      .addColumn('error', 'text')
      .addColumn('failed_event_position', 'text')
      .addColumn('failed_event_type', 'text')
      .addColumn('failed_event_id', 'text')
      .addColumn('created_at', 'timestamptz', (c) => c.notNull().defaultTo(sql`now()`))
      .addColumn('updated_at', 'timestamptz', (c) => c.notNull().defaultTo(sql`now()`))
      .addPrimaryKeyConstraint('projection_checkpoints_pk', ['name', 'generation'])
      .execute();
    // What makes a rebuild's swap safe: two generations can never both be active.
    await db.schema
      .createIndex('projection_checkpoints_one_active')
      .on('projection_checkpoints')
      .column('name')
      .unique()
      .where(sql.ref('active'), '=', true)
      .execute();
  },
  async down(db: Kysely<unknown>) {
    await db.schema.dropTable('projection_checkpoints').execute();
  },
};
