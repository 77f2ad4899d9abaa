import { sql, type Kysely, type Migration } from 'kysely';

/**
 * Migration `0720_subject_keys_wrapped_with`: every process, when it opens storage, asks which
 * master keys wrapped the stored data keys (`storedFingerprints`): a skip scan of this index,
 * one probe per master key, rather than a scan of one row per person ever seen.
 * Partial: tombstones are wrapped by nothing.
 */
export const subjectKeysWrappedWithMigration: Migration = {
  async up(db: Kysely<unknown>) {
    await sql`CREATE INDEX subject_keys_wrapped_with ON subject_keys (wrapped_with) WHERE wrapped_with IS NOT NULL`.execute(db);
  },
  async down(db: Kysely<unknown>) {
    await sql`DROP INDEX subject_keys_wrapped_with`.execute(db);
  },
};
