import { sql, type Kysely, type Migration } from 'kysely';

/**
 * Which formula made a key's request hash: 1 for the keys claimed before the hash covered
 * If-Match and sorted the body (every row this finds), 2 since, so that only those keys are
 * compared with a retry's hash by the old formula. Can be dropped, with that comparison, once
 * every key of version 1 has expired.
 */
export const idempotencyHashVersionsMigration: Migration = {
  async up(db: Kysely<unknown>) {
    await sql`ALTER TABLE idempotency_keys ADD COLUMN request_hash_version smallint NOT NULL DEFAULT 1`.execute(db);
    // A process of the previous release, still running while this one rolls out, hashes by the new formula.
    await sql`ALTER TABLE idempotency_keys ALTER COLUMN request_hash_version SET DEFAULT 2`.execute(db);
  },
};
