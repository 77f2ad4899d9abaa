import type { Actor, Role } from '../metadata.js';

/**
 * The caller of a request that carried no access token. A real user id is a UUID, so this id
 * can never name an account.
 */
export const anonymousActor: Actor = Object.freeze({ id: 'anonymous', roles: [] });

export const isAnonymous = (actor: { readonly id: string }): boolean => actor.id === anonymousActor.id;

/** Whether `actor` holds at least one of `roles`. */
export const hasAnyRole = (actor: { readonly roles: readonly string[] }, roles: readonly Role[]): boolean =>
  roles.some((role) => actor.roles.includes(role));
