import { createHmac } from 'node:crypto';
import { sql, type Kysely } from 'kysely';
import type {
  AttemptPolicy,
  CredentialsClaim,
  CredentialStore,
  LoginAttempt,
  NewCredentials,
  StoredCredentials,
} from '../../application/identity/identity.ports.js';
import type { IdentityTables } from './identity.tables.js';

export class PgCredentialStore implements CredentialStore {
  /** The key of unknown emails' hashes, read once. */
  private key: Promise<Buffer> | undefined;

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

  async removeIfCreatedAt(userId: string, createdAt: Date): Promise<boolean> {
    const deleted = await this.db.deleteFrom('credentials').where('user_id', '=', userId).where('created_at', '=', createdAt).returning('user_id').executeTakeFirst();
    return deleted !== undefined;
  }

  async renew(userId: string, createdAt: Date): Promise<boolean> {
    const renewed = await this.db.updateTable('credentials').set({ created_at: createdAt }).where('user_id', '=', userId).returning('user_id').executeTakeFirst();
    return renewed !== undefined;
  }

  async findByEmail(email: string): Promise<StoredCredentials | undefined> {
    const row = await this.db
      .selectFrom('credentials')
      .select(['user_id', 'password_hash', 'locked_until'])
      .where(sql`lower(email)`, '=', email.toLowerCase())
      .executeTakeFirst();
    return row && { userId: row.user_id, passwordHash: row.password_hash, lockedUntil: row.locked_until };
  }

  async reserveLoginAttempt(userId: string, policy: AttemptPolicy): Promise<LoginAttempt | undefined> {
    return reserveOrReadLock(
      () => this.reserve(userId, policy),
      () => this.db.selectFrom('credentials').select('locked_until').where('user_id', '=', userId).executeTakeFirst(),
      policy.now,
    );
  }

  /**
   * Counts the attempt unless the account is locked, in one statement: concurrent ones queue on
   * the row lock and each sees the count and lock the one before it left, so no more than
   * `maxAttempts` get through whatever their number. No row when the account is locked.
   */
  private reserve(userId: string, policy: AttemptPolicy) {
    return this.db
      .updateTable('credentials')
      .set(countAttempt('credentials', policy))
      .where('user_id', '=', userId)
      .where((eb) => eb.or([eb('locked_until', 'is', null), eb('locked_until', '<=', policy.now)]))
      .returning('locked_until')
      .executeTakeFirst();
  }

  async reserveUnknownEmailAttempt(email: string, policy: AttemptPolicy): Promise<LoginAttempt> {
    const emailHmac = await this.emailHmac(email);
    const attempt = await reserveOrReadLock(
      () => this.reserveUnknown(emailHmac, policy),
      () => this.db.selectFrom('login_attempts_unknown').select('locked_until').where('email_hmac', '=', emailHmac).executeTakeFirst(),
      policy.now,
    );
    // The row was swept between the two looks: it counted no more, so this attempt is the first.
    return attempt ?? (await this.reserveUnknownEmailAttempt(email, policy));
  }

  /**
   * `reserve` for an email without credentials. The insert and the update are one statement:
   * concurrent first attempts queue on the new row's key, then each update as above.
   */
  private reserveUnknown(emailHmac: Buffer, policy: AttemptPolicy) {
    const first = policy.maxAttempts <= 1 ? policy.lockUntil : null;
    return this.db
      .insertInto('login_attempts_unknown')
      .values({ email_hmac: emailHmac, failed_logins: 1, locked_until: first, last_attempt_at: policy.now })
      .onConflict((conflict) =>
        conflict
          .column('email_hmac')
          .doUpdateSet(countAttempt('login_attempts_unknown', policy))
          .where((eb) => eb.or([eb('login_attempts_unknown.locked_until', 'is', null), eb('login_attempts_unknown.locked_until', '<=', policy.now)])),
      )
      .returning('locked_until')
      .executeTakeFirst();
  }

  async sweepUnknownEmailAttempts(policy: Pick<AttemptPolicy, 'now' | 'forgetBefore'>, limit = 500): Promise<number> {
    // The same test as `countAttempt` starting over, so only rows that no longer count go.
    const result = await sql`
      DELETE FROM login_attempts_unknown
      WHERE ctid = ANY (ARRAY(
        SELECT ctid FROM login_attempts_unknown
        WHERE last_attempt_at < ${policy.forgetBefore} AND (locked_until IS NULL OR locked_until <= ${policy.now})
        LIMIT ${limit}))`.execute(this.db);
    return Number(result.numAffectedRows ?? 0n);
  }

  /**
   * Lower-cased as `findByEmail` compares, and no further (not trimmed, say): two spellings one
   * account would not share must not share a count either, or the lock would tell them apart.
   */
  private async emailHmac(email: string): Promise<Buffer> {
    return createHmac('sha256', await this.emailKey()).update(email.toLowerCase()).digest();
  }

  private emailKey(): Promise<Buffer> {
    this.key ??= this.db
      .selectFrom('login_attempts_unknown_key')
      .select('key')
      .executeTakeFirstOrThrow()
      .then((row) => row.key)
      .catch((error: unknown) => {
        // Not cached: a failed read (the database briefly away) is tried again next time.
        this.key = undefined;
        throw error;
      });
    return this.key;
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

/**
 * The columns an attempt the lock check let through sets. A lock still on the row has ended, and
 * a count idle since before `forgetBefore` is forgotten: either way the count starts over. A count
 * without a time was kept by code from before the window (a rolling deploy): it is kept on. The
 * attempt that takes the last one allowed locks. Qualified, because in an upsert's DO UPDATE a
 * bare column is ambiguous between the row there and the one proposed.
 */
function countAttempt(table: 'credentials' | 'login_attempts_unknown', policy: AttemptPolicy) {
  const column = (name: 'failed_logins' | 'locked_until' | 'last_attempt_at') => sql.ref(`${table}.${name}`);
  const count = sql<number>`CASE WHEN ${column('locked_until')} IS NULL AND coalesce(${column('last_attempt_at')} >= ${policy.forgetBefore}, true)
    THEN ${column('failed_logins')} + 1 ELSE 1 END`;
  return {
    failed_logins: count,
    locked_until: sql<Date | null>`CASE WHEN ${count} >= ${policy.maxAttempts} THEN ${policy.lockUntil}::timestamptz END`,
    last_attempt_at: policy.now,
  };
}

/**
 * Two tries, because the lock may go between the reservation and the look at it (a success lifts
 * it, or it ends). `undefined` when there is no row to count in.
 */
async function reserveOrReadLock(
  reserve: () => Promise<{ readonly locked_until: Date | null } | undefined>,
  readLock: () => Promise<{ readonly locked_until: Date | null } | undefined>,
  now: Date,
): Promise<LoginAttempt | undefined> {
  for (let attempt = 0; attempt < 2; attempt += 1) {
    const reserved = await reserve();
    if (reserved) return { outcome: 'granted', lockedUntil: reserved.locked_until };
    const row = await readLock();
    if (!row) return undefined;
    if (row.locked_until && row.locked_until > now) return { outcome: 'locked', until: row.locked_until };
  }
  throw new Error('Login attempt neither reserved nor refused by a lock');
}
