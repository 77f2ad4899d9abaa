import type pg from 'pg';
import type { RecordsOutsideTheLog } from '../../application/privacy/erase-subject.use-case.js';

/**
 * The personal data the service keeps beside the event log, deleted on erasure: the login
 * (email and password hash), refresh tokens, and stored responses of idempotent requests (which
 * may repeat what the person sent): those in their scope and those about them (their signup,
 * their token refreshes, made anonymously or by an admin). The security log keeps its rows: they hold ids, addresses
 * and outcomes, the evidence a breach investigation needs.
 */
export class PgRecordsOutsideTheLog implements RecordsOutsideTheLog {
  constructor(private readonly pool: pg.Pool) {}

  async eraseSubject(userId: string): Promise<void> {
    // One statement, so one transaction: all of it goes, or none.
    await this.pool.query(
      `WITH logins AS (DELETE FROM credentials WHERE user_id = $1),
            sessions AS (DELETE FROM refresh_tokens WHERE user_id = $1)
       DELETE FROM idempotency_keys WHERE scope = $1 OR subject = $1`,
      [userId],
    );
  }
}
