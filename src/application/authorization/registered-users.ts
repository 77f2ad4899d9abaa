import { DomainError } from '../../domain/shared/domain-error.js';
import { streamIdOf as userStreamIdOf } from '../../domain/user/user.decider.js';
import type { CommandSide } from '../command-handlers.js';
import type { Actor, Role } from '../metadata.js';

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

/** Whether `userId` was registered and has since been erased (an id with no user stream was not). */
export async function isErased(side: CommandSide, userId: string): Promise<boolean> {
  const { state } = await side.handlers.user.read(userStreamIdOf(userId));
  return state.status === 'registered' && state.erased;
}

/** How the roles a token names are checked against the user's stream (a user handler's `read`). */
type UserReader = Pick<CommandSide['handlers']['user'], 'read'>;

/**
 * The roles of `actor`'s token that its user still holds: a token outlives the erasure of its
 * user, or a role taken away, for its lifetime, and what it grants must not outlive them (an
 * erased admin's token minting a new admin would keep its power for good).
 */
export async function currentRoles(users: UserReader, actor: Actor): Promise<Role[]> {
  return rolesStillHeld(actor, async (userId) => {
    const { state } = await users.read(userStreamIdOf(userId));
    return state.status === 'unregistered' ? undefined : state;
  });
}

/** A user as far as the roles of its tokens go; `undefined` for an id without one. */
type UserRoles = { readonly erased: boolean; readonly roles: readonly Role[] } | undefined;

/**
 * The roles of `actor`'s token that its user, as `userOf` knows it, still holds. A `system:`
 * actor (the seed, a tool) has no user to ask. An id without a user is taken as its token says:
 * login issues tokens to registered users only, so such a token is one the system made for
 * itself, or its user is too new for a read model to know yet.
 */
export async function rolesStillHeld(actor: Actor, userOf: (userId: string) => Promise<UserRoles>): Promise<Role[]> {
  if (actor.id.startsWith('system:')) return [...actor.roles];
  const user = await userOf(actor.id);
  if (!user) return [...actor.roles];
  if (user.erased) return [];
  return actor.roles.filter((role) => user.roles.includes(role));
}
