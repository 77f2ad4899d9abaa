import type { Kysely } from 'kysely';
import { rolesStillHeld } from '../../application/authorization/registered-users.js';
import type { Actor, Role } from '../../application/metadata.js';
import { erasedPlaceholder } from '../../domain/shared/personal-data.js';
import type { UserRole } from '../../domain/user/user.events.js';
import type { Database } from '../read-models.js';
import { isSqlState, undefinedTable } from '../shared/read-across-generations.js';

export type UserProfile = {
  readonly id: string;
  readonly email: string;
  readonly name: string;
  readonly roles: UserRole[];
  readonly registeredAt: string;
};

export async function findUserProfile(db: Kysely<Database>, userId: string): Promise<UserProfile | undefined> {
  const row = await db.selectFrom('rm_users.users').selectAll().where('user_id', '=', userId).executeTakeFirst();
  return row && { id: row.user_id, email: row.email, name: row.name, roles: row.roles, registeredAt: row.registered_at.toISOString() };
}

/**
 * The roles of `actor`'s token its user still holds as this read model knows them: a demotion
 * or an erasure counts here once projected, moments after it happened.
 */
export async function currentRolesOf(db: Kysely<Database>, actor: Actor): Promise<Role[]> {
  return rolesStillHeld(actor, async (userId) => {
    const row = await db
      .selectFrom('rm_users.users')
      .select(['email', 'roles'])
      .where('user_id', '=', userId)
      .executeTakeFirst()
      // A fresh deployment whose projector has not made the read model yet knows no user: the
      // token is taken as it says, as for a user too new to be projected, and an operator can
      // still look at the projections' status.
      .catch((error: unknown) => {
        if (isSqlState(error, undefinedTable)) return undefined;
        throw error;
      });
    // An erasure leaves the row, its personal fields reading the placeholder.
    return row && { erased: row.email === erasedPlaceholder, roles: row.roles };
  });
}
