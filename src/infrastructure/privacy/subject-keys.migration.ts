import { sql, type Kysely, type Migration } from 'kysely';

/**
 * Migration `0500_subject_keys`: one data key per person, wrapped by the master key. Destroying
 * a key keeps its row as a tombstone (no key, `erased_at` set), so nothing is ever encrypted
 * for that person again and erasure stays final.
 */
export const subjectKeysMigration: Migration = {
  async up(db: Kysely<unknown>) {
    await sql`
      CREATE TABLE subject_keys (
        subject_id   text        PRIMARY KEY,
        -- AES-256-GCM under the master key: iv (12 bytes) ‖ tag (16) ‖ key (32).
        wrapped_key  bytea,
        -- Which master key wrapped it (a fingerprint), so a wrong MASTER_KEY is named, not guessed.
        wrapped_with text,
        created_at   timestamptz NOT NULL,
        erased_at    timestamptz,
        CHECK ((wrapped_key IS NULL) = (erased_at IS NOT NULL)),
        CHECK ((wrapped_key IS NULL) = (wrapped_with IS NULL))
      )`.execute(db);
  },
  async down(db: Kysely<unknown>) {
    await sql`DROP TABLE subject_keys`.execute(db);
  },
};
