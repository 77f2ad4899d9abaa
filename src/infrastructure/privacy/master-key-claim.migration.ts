import { sql, type Kysely, type Migration } from 'kysely';

/**
 * Migration `0740_master_key_claim`: which master key wraps this database's new data keys
 * (`master-key-claim.ts`), one row at most, written by the first process to start after it.
 * `bookable_app` may read it and make it, not change or remove it: a process that could would
 * let its own key wrap data keys beside the others'. Moving the claim (a key rotation) is the
 * owner's act, with every process stopped. Granted explicitly, not only through the default
 * privileges of `0400_audit`, which hold only for tables of the role that set them.
 */
export const masterKeyClaimMigration: Migration = {
  async up(db: Kysely<unknown>) {
    await sql`
      CREATE TABLE master_key_claim (
        one_row     boolean     PRIMARY KEY DEFAULT true CHECK (one_row),
        fingerprint text        NOT NULL,
        claimed_at  timestamptz NOT NULL DEFAULT now()
      )`.execute(db);
    await sql`
      DO $$
      BEGIN
        IF EXISTS (SELECT 1 FROM pg_roles WHERE rolname = 'bookable_app') THEN
          REVOKE ALL ON master_key_claim FROM bookable_app;
          GRANT SELECT, INSERT ON master_key_claim TO bookable_app;
        END IF;
      END $$`.execute(db);
  },

  async down(db: Kysely<unknown>) {
    await sql`DROP TABLE master_key_claim`.execute(db);
  },
};
