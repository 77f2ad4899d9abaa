import { assertNever, type Decider } from '../shared/decider.js';
import { DomainError, NotFoundError } from '../shared/domain-error.js';
import { ForbiddenError } from '../shared/forbidden-error.js';
import { notPrintable, printable } from '../shared/printable-text.js';
import type { EraseSubject, GrantRoles, RecordErasure, RegisterUser, Requester, RevokeRoles, UserCommand } from './user.commands.js';
import { privilegedRoles, type UserEvent, type UserRole } from './user.events.js';

/**
 * A person's account as the write side knows it: that it exists, and its roles. Credentials
 * live outside the event log on purpose (a password hash must be deletable and never replayed).
 */
export type UserState =
  | { readonly status: 'unregistered' }
  | { readonly status: 'registered'; readonly userId: string; readonly roles: readonly UserRole[]; readonly erased: boolean };

export type UserErrorCode = 'user-already-registered' | 'invalid-name' | 'forbidden' | 'cannot-revoke-own-admin' | 'cannot-erase-self' | 'not-found';

export const initialState: UserState = { status: 'unregistered' };

export const streamIdOf = (userId: string): string => `user-${userId}`;

const isAdmin = (requester: Requester | null): boolean => requester?.roles.includes('ADMIN') === true;

/**
 * AUDITOR reads health data that ADMIN is not shown (README, "Beyond and beside API.md"): only an
 * admin who is an auditor too may make someone an auditor, or an admin could make themselves one
 * (a second account) and read it all; nor may an admin alone do away with an auditor, by erasing
 * them or by taking the role (which would also let them erase the former auditor next).
 */
function assertMayActOnAuditor(requester: Requester | null, roles: readonly UserRole[], action: string): void {
  if (roles.includes('AUDITOR') && requester?.roles.includes('AUDITOR') !== true) {
    throw new ForbiddenError(`Only an admin who is an auditor may ${action}`);
  }
}

/** The state of a person whose roles an admin may still change: registered and not erased. */
function existingUser(state: UserState): Extract<UserState, { status: 'registered' }> {
  // An erased person is gone as far as anyone acting on them goes; their history stays.
  if (state.status !== 'registered' || state.erased) throw new NotFoundError('User');
  return state;
}

const withReason = (reason: string | undefined) => (reason === undefined ? {} : { reason });

function registerUser({ data }: RegisterUser, state: UserState): UserEvent[] {
  if (state.status !== 'unregistered') throw new DomainError('user-already-registered', 'This user is already registered');
  // The command's schema says so too, but only its type is drawn from it: the rule holds here,
  // however a registration arrives. Events keep the looser rule, so older names still decode.
  if (!printable.test(data.name)) throw new DomainError('invalid-name', `name ${notPrintable}`);
  const privileged = data.roles.filter((role) => privilegedRoles.includes(role));
  if (privileged.length > 0 && !isAdmin(data.registeredBy)) {
    throw new ForbiddenError(`Only an admin may grant ${privileged.join(', ')}`);
  }
  assertMayActOnAuditor(data.registeredBy, data.roles, 'grant AUDITOR');
  const roles = [...new Set(data.roles)];
  return [{ type: 'UserRegistered', data: { userId: data.userId, email: data.email, name: data.name, roles } }];
}

function grantRoles({ data }: GrantRoles, state: UserState): UserEvent[] {
  const user = existingUser(state);
  if (!isAdmin(data.grantedBy)) throw new ForbiddenError('Only an admin may grant roles');
  const added = [...new Set(data.roles)].filter((role) => !user.roles.includes(role));
  assertMayActOnAuditor(data.grantedBy, added, 'grant AUDITOR');
  // Granting what is already held changes nothing, so a repeated request is harmless.
  if (added.length === 0) return [];
  return [{ type: 'RolesGranted', data: { userId: user.userId, roles: added, grantedBy: data.grantedBy.id, ...withReason(data.reason) } }];
}

function revokeRoles({ data }: RevokeRoles, state: UserState): UserEvent[] {
  const user = existingUser(state);
  if (!isAdmin(data.revokedBy)) throw new ForbiddenError('Only an admin may revoke roles');
  // An admin locking themselves out is never what they meant, and may leave nobody to undo it.
  if (data.revokedBy.id === user.userId && data.roles.includes('ADMIN')) {
    throw new DomainError('cannot-revoke-own-admin', 'An admin cannot revoke their own ADMIN role');
  }
  const removed = [...new Set(data.roles)].filter((role) => user.roles.includes(role));
  assertMayActOnAuditor(data.revokedBy, removed, 'revoke AUDITOR');
  if (removed.length === 0) return [];
  return [{ type: 'RolesRevoked', data: { userId: user.userId, roles: removed, revokedBy: data.revokedBy.id, ...withReason(data.reason) } }];
}

function eraseSubject({ data }: EraseSubject, state: UserState): UserEvent[] {
  if (state.status !== 'registered') throw new NotFoundError('User');
  if (!isAdmin(data.erasedBy)) throw new ForbiddenError("Only an admin may erase a person's data");
  // Like revoking one's own ADMIN, but for good: the last admin would leave nobody to act.
  if (data.erasedBy.id === state.userId) throw new DomainError('cannot-erase-self', 'An admin cannot erase themselves');
  assertMayActOnAuditor(data.erasedBy, state.roles, 'erase an auditor');
  return recordErasure({ type: 'RecordErasure', data }, state);
}

/** No rule on roles here: they were checked by `EraseSubject` before the key was destroyed. */
function recordErasure({ data }: RecordErasure, state: UserState): UserEvent[] {
  if (state.status !== 'registered') throw new NotFoundError('User');
  // Erasure is final: asking again finds nothing left to erase.
  if (state.erased) return [];
  const erasedAt = data.now.toISOString();
  return [{ type: 'SubjectErased', data: { userId: state.userId, erasedBy: data.erasedBy.id, erasedAt, ...withReason(data.reason) } }];
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
    case 'RecordErasure':
      return recordErasure(command, state);
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
