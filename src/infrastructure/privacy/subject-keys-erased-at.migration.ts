import { sql, type Kysely, type Migration } from 'kysely';

/**
 * Migration `0670_subject_keys_erased_at`: every API process asks each second which subjects
 * were erased since it last looked (`ErasedSubjects`), so that reads only the few tombstones
 * that are new. Partial: live keys, nearly every row, have no `erased_at` and are not indexed.
 */
export const subjectKeysErasedAtMigration: Migration = {
  async up(db: Kysely<unknown>) {
    await sql`CREATE INDEX subject_keys_erased_at ON subject_keys (erased_at) WHERE erased_at IS NOT NULL`.execute(db);
  },
  async down(db: Kysely<unknown>) {
    await sql`DROP INDEX subject_keys_erased_at`.execute(db);
  },
};
