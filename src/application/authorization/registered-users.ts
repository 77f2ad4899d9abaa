import { DomainError } from '../../domain/shared/domain-error.js';
import { streamIdOf as userStreamIdOf } from '../../domain/user/user.decider.js';
import type { CommandSide } from '../command-handlers.js';
import type { Role } from '../metadata.js';

/**
 * What an admin does in someone else's name (a listing for an owner, a schedule for a doctor)
 * goes only to a registered, unerased user holding the role; otherwise `code` (409) says so.
 */
export async function requireUserWithRole(side: CommandSide, userId: string, role: Role, code: string): Promise<void> {
  const { state } = await side.handlers.user.read(userStreamIdOf(userId));
  if (state.status !== 'registered' || state.erased || !state.roles.includes(role)) {
    throw new DomainError(code, `${userId} is not a user with the ${role} role`);
  }
}
