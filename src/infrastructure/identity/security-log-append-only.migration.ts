import { sql, type Kysely, type Migration } from 'kysely';
import { makeAppendOnly } from '../audit/audit.migration.js';

/**
 * Migration `0620_security_log_append_only`: the security log (failed logins, lockouts,
 * refresh-token reuse) is served to auditors as evidence, so it takes the guard the event log and
 * the access log have (`0400_audit`): a trigger refuses UPDATE, DELETE and TRUNCATE (AU001), and
 * `bookable_app` may only SELECT and INSERT it. Nothing of the service ever changed a row; erasure
 * keeps them too (./README, "Personal data and erasure").
 */
export const securityLogAppendOnlyMigration: Migration = {
  async up(db: Kysely<unknown>) {
    await makeAppendOnly(db, 'security_events');
    await sql`
      DO $$
      BEGIN
        IF EXISTS (SELECT 1 FROM pg_roles WHERE rolname = 'bookable_app') THEN
          REVOKE UPDATE, DELETE, TRUNCATE ON security_events FROM bookable_app;
        END IF;
      END $$`.execute(db);
  },

  async down(db: Kysely<unknown>) {
    await sql`DROP TRIGGER IF EXISTS security_events_not_truncated ON security_events`.execute(db);
    await sql`DROP TRIGGER IF EXISTS security_events_immutable ON security_events`.execute(db);
  },
};
