import type { UserRole } from '../../domain/user/user.events.js';

/** One row per user: profile and current roles. `version`: the user stream's last revision applied. */
export type UsersTable = {
  user_id: string;
  email: string;
  name: string;
  roles: UserRole[];
  registered_at: Date;
  version: number;
};

export type UsersTables = { users: UsersTable };

export type UserRow = UsersTable;

export const usersProjectionName = 'users';
