import { sql, type Kysely } from 'kysely';
import type { SecurityEvent, SecurityEventLog } from '../../application/identity/identity.ports.js';
import type { IdentityTables } from './identity.tables.js';

export class PgSecurityEventLog implements SecurityEventLog {
  constructor(private readonly db: Kysely<IdentityTables>) {}

  /**
   * One statement that first takes a transaction-scoped advisory lock (key space 1705), so rows
   * take their ids in commit order: auditors page by id, and a row that took its id before
   * another yet committed after it was skipped for good by a reader that had passed that id.
   */
  async record(event: SecurityEvent): Promise<void> {
    await sql`
      INSERT INTO security_events (occurred_at, type, user_id, request_id, ip, user_agent, details)
      SELECT ${event.occurredAt}::timestamptz, ${event.type}, ${event.userId}, ${event.requestId}, ${event.ip ?? null},
             ${event.userAgent ?? null}, ${JSON.stringify(event.details ?? {})}::jsonb
        FROM (SELECT pg_advisory_xact_lock(1705, 0)) AS in_commit_order`.execute(this.db);
  }
}
