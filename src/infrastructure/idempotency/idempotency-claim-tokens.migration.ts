import { sql, type Kysely, type Migration } from 'kysely';

/**
 * Each claim of an Idempotency-Key gets a token of its own, which its request's `complete`,
 * `release` and lease renewals must show: a request that outlived its lease, its claim taken
 * over by a retry, could otherwise store its response under the retry's claim, or delete it.
 */
export const idempotencyClaimTokensMigration: Migration = {
  async up(db: Kysely<unknown>) {
    await sql`ALTER TABLE idempotency_keys ADD COLUMN claim_token uuid`.execute(db);
  },
};
