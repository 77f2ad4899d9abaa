import { sql, type Kysely } from 'kysely';
import type { CredentialsClaim, CredentialStore, NewCredentials, StoredCredentials } from '../../application/identity/identity.ports.js';
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

  async recordFailedLogin(userId: string, policy: { readonly maxAttempts: number; readonly lockUntil: Date }): Promise<{ locked: boolean }> {
    // One statement, so concurrent failures are each counted and exactly one of them locks.
    const row = await this.db
      .updateTable('credentials')
      .set((eb) => ({
        failed_logins: eb
          .case()
          .when('failed_logins', '>=', policy.maxAttempts - 1)
          .then(0)
          .else(eb('failed_logins', '+', 1))
          .end(),
        locked_until: eb
          .case()
          .when('failed_logins', '>=', policy.maxAttempts - 1)
          .then(policy.lockUntil)
          .else(eb.ref('locked_until'))
          .end(),
      }))
      .where('user_id', '=', userId)
      .returning('failed_logins')
      .executeTakeFirst();
    return { locked: row?.failed_logins === 0 };
  }

  async recordSuccessfulLogin(userId: string): Promise<void> {
    await this.db.updateTable('credentials').set({ failed_logins: 0, locked_until: null }).where('user_id', '=', userId).execute();
  }
}
