import { sql, type Kysely, type Transaction } from 'kysely';
import type { NewRefreshToken, RefreshTokenStore, RotationOutcome } from '../../application/identity/identity.ports.js';
import type { IdentityTables } from './identity.tables.js';

export class PgRefreshTokenStore implements RefreshTokenStore {
  constructor(private readonly db: Kysely<IdentityTables>) {}

  async startFamily(token: NewRefreshToken & { readonly familyId: string; readonly userId: string }): Promise<void> {
    await this.db
      .insertInto('refresh_tokens')
      .values({
        token_hash: token.tokenHash,
        family_id: token.familyId,
        user_id: token.userId,
        status: 'live',
        issued_at: token.issuedAt,
        expires_at: token.expiresAt,
      })
      .execute();
  }

  async ownerOf(tokenHash: string): Promise<string | undefined> {
    const row = await this.db.selectFrom('refresh_tokens').select('user_id').where('token_hash', '=', tokenHash).executeTakeFirst();
    return row?.user_id;
  }

  async liveOwnerOf(tokenHash: string, now: Date): Promise<string | undefined> {
    const row = await this.db
      .selectFrom('refresh_tokens')
      .select('user_id')
      .where('token_hash', '=', tokenHash)
      .where('status', '=', 'live')
      .where('expires_at', '>', now)
      .executeTakeFirst();
    return row?.user_id;
  }

  async rotate(oldHash: string, next: NewRefreshToken, now: Date): Promise<RotationOutcome> {
    return this.db.transaction().execute(async (trx) => {
      const family = await trx.selectFrom('refresh_tokens').select('family_id').where('token_hash', '=', oldHash).executeTakeFirst();
      if (!family) return { outcome: 'invalid' };
      await lockFamily(trx, family.family_id);
      // The locks make two uses of one token take turns: the second sees it retired, which is
      // exactly what a replayed stolen token looks like, so it revokes the family.
      const old = await trx
        .selectFrom('refresh_tokens')
        .select(['family_id', 'user_id', 'status', 'expires_at'])
        .where('token_hash', '=', oldHash)
        .forUpdate()
        .executeTakeFirst();
      if (!old || old.status === 'revoked') return { outcome: 'invalid' };
      if (old.status === 'retired') {
        await trx.updateTable('refresh_tokens').set({ status: 'revoked' }).where('family_id', '=', old.family_id).execute();
        return { outcome: 'reused', userId: old.user_id, familyId: old.family_id };
      }
      if (old.expires_at <= now) return { outcome: 'invalid' };
      await trx.updateTable('refresh_tokens').set({ status: 'retired' }).where('token_hash', '=', oldHash).execute();
      await trx
        .insertInto('refresh_tokens')
        .values({
          token_hash: next.tokenHash,
          family_id: old.family_id,
          user_id: old.user_id,
          status: 'live',
          issued_at: next.issuedAt,
          expires_at: next.expiresAt,
        })
        .execute();
      return { outcome: 'rotated', userId: old.user_id, familyId: old.family_id };
    });
  }

  async revokeFamily(tokenHash: string, userId: string): Promise<boolean> {
    return this.db.transaction().execute(async (trx) => {
      const family = await trx.selectFrom('refresh_tokens').select('family_id').where('token_hash', '=', tokenHash).where('user_id', '=', userId).executeTakeFirst();
      if (!family) return false;
      await lockFamily(trx, family.family_id);
      await trx.updateTable('refresh_tokens').set({ status: 'revoked' }).where('family_id', '=', family.family_id).execute();
      return true;
    });
  }
}

/**
 * Makes every change to a family take turns, until the transaction ends. A row lock is not
 * enough: a revocation waiting on the token a rotation retires re-checks only the rows it could
 * already see, so the token the rotation was issuing stayed live after a logout, or after the
 * family was revoked for a reused token. Taken before the revocation's UPDATE, this lock lets it
 * see that token. (1704: the namespace of refresh-token families; 1702 is streams, 1703 audit.)
 */
async function lockFamily(trx: Transaction<IdentityTables>, familyId: string): Promise<void> {
  await sql`select pg_advisory_xact_lock(1704, hashtext(${familyId}))`.execute(trx);
}
