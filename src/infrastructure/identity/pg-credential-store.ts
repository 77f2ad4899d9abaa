import { sql, type Kysely } from 'kysely';
import type { CredentialsClaim, CredentialStore, LoginAttempt, NewCredentials, StoredCredentials } from '../../application/identity/identity.ports.js';
import type { IdentityTables } from './identity.tables.js';

export class PgCredentialStore implements CredentialStore {
  constructor(private readonly db: Kysely<IdentityTables>) {}

  async insert(credentials: NewCredentials): Promise<CredentialsClaim> {
    // Three tries, because the owner found by the conflict may be deleted before we look it up
    // (an abandoned signup being reclaimed); then the email is free and the insert goes again.
    for (let attempt = 0; attempt < 3; attempt += 1) {
      const inserted = await this.db
        .insertInto('credentials')
        .values({
          user_id: credentials.userId,
          email: credentials.email,
          password_hash: credentials.passwordHash,
          created_at: credentials.createdAt,
        })
        // No conflict target: a clash on the email index or on the user id both mean "taken".
        .onConflict((conflict) => conflict.doNothing())
        .returning('user_id')
        .executeTakeFirst();
      if (inserted) return { inserted: true };
      const owner = await this.db
        .selectFrom('credentials')
        .select(['user_id', 'created_at'])
        .where((eb) => eb.or([eb(sql`lower(email)`, '=', credentials.email.toLowerCase()), eb('user_id', '=', credentials.userId)]))
        .executeTakeFirst();
      if (owner) return { inserted: false, userId: owner.user_id, createdAt: owner.created_at };
    }
    throw new Error('Credentials insert kept conflicting with rows that vanished');
  }

  async remove(userId: string): Promise<void> {
    await this.db.deleteFrom('credentials').where('user_id', '=', userId).execute();
  }

  async findByEmail(email: string): Promise<StoredCredentials | undefined> {
    const row = await this.db
      .selectFrom('credentials')
      .select(['user_id', 'password_hash', 'locked_until'])
      .where(sql`lower(email)`, '=', email.toLowerCase())
      .executeTakeFirst();
    return row && { userId: row.user_id, passwordHash: row.password_hash, lockedUntil: row.locked_until };
  }

  async reserveLoginAttempt(
    userId: string,
    policy: { readonly maxAttempts: number; readonly now: Date; readonly lockUntil: Date },
  ): Promise<LoginAttempt | undefined> {
    // Two tries, because a success may lift the lock between the reservation and the look at it.
    for (let attempt = 0; attempt < 2; attempt += 1) {
      const reserved = await this.reserve(userId, policy);
      if (reserved) return { outcome: 'granted', lockedUntil: reserved.locked_until };
      const row = await this.db.selectFrom('credentials').select('locked_until').where('user_id', '=', userId).executeTakeFirst();
      if (!row) return undefined;
      if (row.locked_until && row.locked_until > policy.now) return { outcome: 'locked', until: row.locked_until };
    }
    throw new Error('Login attempt neither reserved nor refused by a lock');
  }

  /**
   * Counts the attempt unless the account is locked, in one statement: concurrent ones queue on
   * the row lock and each sees the count and lock the one before it left, so no more than
   * `maxAttempts` get through whatever their number. No row when the account is locked.
   */
  private reserve(userId: string, policy: { readonly maxAttempts: number; readonly now: Date; readonly lockUntil: Date }) {
    return this.db
      .updateTable('credentials')
      .set((eb) => {
        // A lock still on the row has ended (the where clause says so): the count starts over.
        const count = eb.case().when('locked_until', 'is', null).then(eb('failed_logins', '+', 1)).else(1).end();
        return {
          failed_logins: count,
          locked_until: eb.case().when(count, '>=', policy.maxAttempts).then(eb.cast<Date>(eb.val(policy.lockUntil), 'timestamptz')).else(null).end(),
        };
      })
      .where('user_id', '=', userId)
      .where((eb) => eb.or([eb('locked_until', 'is', null), eb('locked_until', '<=', policy.now)]))
      .returning('locked_until')
      .executeTakeFirst();
  }

  async recordSuccessfulLogin(userId: string, attempt: { readonly lockedUntil: Date | null }): Promise<void> {
    const { lockedUntil } = attempt;
    await this.db
      .updateTable('credentials')
      .set({ failed_logins: 0, locked_until: null })
      .where('user_id', '=', userId)
      .where((eb) => eb.or([eb('locked_until', 'is', null), ...(lockedUntil ? [eb('locked_until', '=', lockedUntil)] : [])]))
      .execute();
  }
}
