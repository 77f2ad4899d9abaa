import type { Kysely } from 'kysely';
import type { UserRole } from '../../domain/user/user.events.js';
import type { Database } from '../read-models.js';

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
