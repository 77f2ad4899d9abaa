import { assertNever, type Decider } from '../shared/decider.js';
import { DomainError, NotFoundError } from '../shared/domain-error.js';
import { notPrintable, printable } from '../shared/printable-text.js';
import type { EraseSubject, GrantRoles, RegisterUser, Requester, RevokeRoles, UserCommand } from './user.commands.js';
import { privilegedRoles, type UserEvent, type UserRole } from './user.events.js';

/**
 * A person's account as the write side knows it: that it exists, and its roles. Credentials
 * live outside the event log on purpose (a password hash must be deletable and never replayed).
 */
export type UserState =
  | { readonly status: 'unregistered' }
  | { readonly status: 'registered'; readonly userId: string; readonly roles: readonly UserRole[]; readonly erased: boolean };

export type UserErrorCode = 'user-already-registered' | 'invalid-name' | 'forbidden' | 'cannot-revoke-own-admin' | 'not-found';

export const initialState: UserState = { status: 'unregistered' };

export const streamIdOf = (userId: string): string => `user-${userId}`;

const isAdmin = (requester: Requester | null): boolean => requester?.roles.includes('ADMIN') === true;

/**
 * AUDITOR reads health data that ADMIN is not shown (README, "Beyond and beside API.md"): only an
 * admin who is an auditor too may make someone an auditor, or an admin could make themselves one
 * (a second account) and read it all.
 */
function assertMayGrantAuditor(requester: Requester | null, roles: readonly UserRole[]): void {
  if (roles.includes('AUDITOR') && requester?.roles.includes('AUDITOR') !== true) {
    throw new DomainError('forbidden', 'Only an admin who is an auditor may grant AUDITOR');
  }
}

function registerUser({ data }: RegisterUser, state: UserState): UserEvent[] {
  if (state.status !== 'unregistered') throw new DomainError('user-already-registered', 'This user is already registered');
  // The command's schema says so too, but only its type is drawn from it: the rule holds here,
  // however a registration arrives. Events keep the looser rule, so older names still decode.
  if (!printable.test(data.name)) throw new DomainError('invalid-name', `name ${notPrintable}`);
  const privileged = data.roles.filter((role) => privilegedRoles.includes(role));
  if (privileged.length > 0 && !isAdmin(data.registeredBy)) {
    throw new DomainError('forbidden', `Only an admin may grant ${privileged.join(', ')}`);
  }
  assertMayGrantAuditor(data.registeredBy, data.roles);
  const roles = [...new Set(data.roles)];
  return [{ type: 'UserRegistered', data: { userId: data.userId, email: data.email, name: data.name, roles } }];
}

function grantRoles({ data }: GrantRoles, state: UserState): UserEvent[] {
  if (state.status !== 'registered') throw new NotFoundError('User');
  if (!isAdmin(data.grantedBy)) throw new DomainError('forbidden', 'Only an admin may grant roles');
  const added = [...new Set(data.roles)].filter((role) => !state.roles.includes(role));
  assertMayGrantAuditor(data.grantedBy, added);
  // Granting what is already held changes nothing, so a repeated request is harmless.
  if (added.length === 0) return [];
  return [{ type: 'RolesGranted', data: { userId: state.userId, roles: added, grantedBy: data.grantedBy.id } }];
}

function revokeRoles({ data }: RevokeRoles, state: UserState): UserEvent[] {
  if (state.status !== 'registered') throw new NotFoundError('User');
  if (!isAdmin(data.revokedBy)) throw new DomainError('forbidden', 'Only an admin may revoke roles');
  // An admin locking themselves out is never what they meant, and may leave nobody to undo it.
  if (data.revokedBy.id === state.userId && data.roles.includes('ADMIN')) {
    throw new DomainError('cannot-revoke-own-admin', 'An admin cannot revoke their own ADMIN role');
  }
  const removed = [...new Set(data.roles)].filter((role) => state.roles.includes(role));
  if (removed.length === 0) return [];
  return [{ type: 'RolesRevoked', data: { userId: state.userId, roles: removed, revokedBy: data.revokedBy.id } }];
}

function eraseSubject({ data }: EraseSubject, state: UserState): UserEvent[] {
  if (state.status !== 'registered') throw new NotFoundError('User');
  if (!isAdmin(data.erasedBy)) throw new DomainError('forbidden', 'Only an admin may erase a person\'s data');
  // Erasure is final: asking again finds nothing left to erase.
  if (state.erased) return [];
  return [{ type: 'SubjectErased', data: { userId: state.userId, erasedBy: data.erasedBy.id, erasedAt: data.now.toISOString() } }];
}

export function decide(command: UserCommand, state: UserState): UserEvent[] {
  switch (command.type) {
    case 'RegisterUser':
      return registerUser(command, state);
    case 'GrantRoles':
      return grantRoles(command, state);
    case 'RevokeRoles':
      return revokeRoles(command, state);
    case 'EraseSubject':
      return eraseSubject(command, state);
    default: {
      const _exhaustive: never = command;
      return assertNever(_exhaustive);
    }
  }
}

export function evolve(state: UserState, event: UserEvent): UserState {
  switch (event.type) {
    case 'UserRegistered':
      return { status: 'registered', userId: event.data.userId, roles: event.data.roles, erased: false };
    case 'RolesGranted':
      if (state.status !== 'registered') return state;
      return { ...state, roles: [...state.roles, ...event.data.roles.filter((role) => !state.roles.includes(role))] };
    case 'RolesRevoked':
      if (state.status !== 'registered') return state;
      return { ...state, roles: state.roles.filter((role) => !event.data.roles.includes(role)) };
    case 'SubjectErased':
      if (state.status !== 'registered') return state;
      return { ...state, erased: true };
    default: {
      const _exhaustive: never = event;
      return assertNever(_exhaustive);
    }
  }
}

export const userDecider: Decider<UserCommand, UserEvent, UserState> = { initialState, decide, evolve };
