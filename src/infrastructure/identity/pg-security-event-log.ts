import type { Kysely } from 'kysely';
import type { SecurityEvent, SecurityEventLog } from '../../application/identity/identity.ports.js';
import type { IdentityTables } from './identity.tables.js';

export class PgSecurityEventLog implements SecurityEventLog {
  constructor(private readonly db: Kysely<IdentityTables>) {}

  async record(event: SecurityEvent): Promise<void> {
    await this.db
      .insertInto('security_events')
      .values({
        occurred_at: event.occurredAt,
        type: event.type,
        user_id: event.userId,
        request_id: event.requestId,
        ip: event.ip ?? null,
        user_agent: event.userAgent ?? null,
        // node-postgres sends a plain object as JSON text, which jsonb accepts.
        details: event.details ?? {},
      })
      .execute();
  }
}
