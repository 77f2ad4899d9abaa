import { fc, test as property } from '@fast-check/vitest';
import { describe, expect, it } from 'vitest';
import { roleSchema } from '../../src/application/metadata.js';
import { DomainError } from '../../src/domain/shared/domain-error.js';
import { isPersonal } from '../../src/domain/shared/personal-data.js';
import type { Requester, UserCommand } from '../../src/domain/user/user.commands.js';
import { userDecider, type UserState } from '../../src/domain/user/user.decider.js';
import { userRegisteredSchema, userRoleSchema, type UserEvent, type UserRole } from '../../src/domain/user/user.events.js';
import { deciderSpec } from '../support/decider-spec.js';

const spec = deciderSpec(userDecider);
const userId = 'u-1';
const admin = { id: 'admin-1', roles: ['ADMIN'] };
const adminAuditor = { id: 'admin-2', roles: ['ADMIN', 'AUDITOR'] };
const consumer = { id: 'c-1', roles: ['CONSUMER'] };

const registered = (roles: UserRole[] = ['CONSUMER']): UserEvent => ({
  type: 'UserRegistered',
  data: { userId, email: 'ada@example.com', name: 'Ada', roles },
});
const register = (roles: UserRole[], registeredBy: { id: string; roles: string[] } | null = null): UserCommand => ({
  type: 'RegisterUser',
  data: { userId, email: 'ada@example.com', name: 'Ada', roles, registeredBy },
});
const grant = (roles: UserRole[], grantedBy = admin): UserCommand => ({ type: 'GrantRoles', data: { userId, roles, grantedBy } });
const revoke = (roles: UserRole[], revokedBy = admin): UserCommand => ({ type: 'RevokeRoles', data: { userId, roles, revokedBy } });

describe('User decider', () => {
  describe('RegisterUser', () => {
    it('registers a self-service user with the roles asked for, once each', () => {
      spec.given([]).when(register(['CONSUMER', 'OWNER', 'CONSUMER'])).then([registered(['CONSUMER', 'OWNER'])]);
    });

    it('refuses to register the same user twice', () => {
      spec.given([registered()]).when(register(['CONSUMER'])).thenFails('user-already-registered');
    });

    it('refuses a name with a control character: no name a person means has one, and it would show in every listing of them', () => {
      for (const name of ['Ada\u0001', '\u001b[2J', 'Ada\nLovelace', 'Ada\u007f']) {
        spec.given([]).when({ type: 'RegisterUser', data: { userId, email: 'ada@example.com', name, roles: ['DOCTOR'], registeredBy: null } }).thenFails('invalid-name');
      }
    });

    it('refuses ADMIN or AUDITOR on a self-service signup', () => {
      spec.given([]).when(register(['AUDITOR'])).thenFails('forbidden');
      spec.given([]).when(register(['CONSUMER', 'ADMIN'], consumer)).thenFails('forbidden');
    });

    it('lets an admin who is an auditor register an auditor; an admin alone may not (auditors read health data admins are not shown)', () => {
      spec.given([]).when(register(['AUDITOR'], adminAuditor)).then([registered(['AUDITOR'])]);
      spec.given([]).when(register(['AUDITOR'], admin)).thenFails('forbidden');
      spec.given([]).when(register(['ADMIN'], admin)).then([registered(['ADMIN'])]);
    });
  });

  describe('GrantRoles', () => {
    it('grants only the roles not yet held', () => {
      spec.given([registered(['CONSUMER'])]).when(grant(['CONSUMER', 'OWNER'])).then([
        { type: 'RolesGranted', data: { userId, roles: ['OWNER'], grantedBy: admin.id } },
      ]);
    });

    it('changes nothing when every role is already held', () => {
      spec.given([registered(['CONSUMER'])]).when(grant(['CONSUMER'])).then([]);
    });

    it('is for admins only', () => {
      spec.given([registered()]).when(grant(['OWNER'], consumer)).thenFails('forbidden');
    });

    it('grants AUDITOR only by an admin who is an auditor too', () => {
      spec.given([registered()]).when(grant(['AUDITOR'], admin)).thenFails('forbidden');
      spec.given([registered()]).when(grant(['AUDITOR'], adminAuditor)).then([
        { type: 'RolesGranted', data: { userId, roles: ['AUDITOR'], grantedBy: adminAuditor.id } },
      ]);
      // Already held: nothing is granted, so nothing is refused.
      spec.given([registered(['AUDITOR'])]).when(grant(['AUDITOR', 'OWNER'], admin)).then([
        { type: 'RolesGranted', data: { userId, roles: ['OWNER'], grantedBy: admin.id } },
      ]);
    });

    it('needs an existing user', () => {
      spec.given([]).when(grant(['OWNER'])).thenFails('not-found');
    });
  });

  describe('RevokeRoles', () => {
    it('revokes only the roles held', () => {
      spec.given([registered(['CONSUMER', 'OWNER'])]).when(revoke(['OWNER', 'DOCTOR'])).then([
        { type: 'RolesRevoked', data: { userId, roles: ['OWNER'], revokedBy: admin.id } },
      ]);
    });

    it('is for admins only', () => {
      spec.given([registered(['CONSUMER', 'OWNER'])]).when(revoke(['OWNER'], consumer)).thenFails('forbidden');
    });

    it('keeps an admin from revoking their own ADMIN role', () => {
      const self = { id: userId, roles: ['ADMIN'] };
      spec.given([registered(['ADMIN'])]).when(revoke(['ADMIN'], self)).thenFails('cannot-revoke-own-admin');
    });
  });

  describe('EraseSubject', () => {
    const now = new Date('2031-05-01T10:00:00Z');
    const erase = (erasedBy: { id: string; roles: string[] } = admin): UserCommand => ({ type: 'EraseSubject', data: { userId, erasedBy, now } });
    const erased: UserEvent = { type: 'SubjectErased', data: { userId, erasedBy: admin.id, erasedAt: now.toISOString() } };

    it('records the erasure, with no personal data in it', () => {
      spec.given([registered()]).when(erase()).then([erased]);
    });

    it('is final: erasing again records nothing more', () => {
      spec.given([registered(), erased]).when(erase()).then([]);
    });

    it('is for admins only', () => {
      spec.given([registered()]).when(erase(consumer)).thenFails('forbidden');
    });

    it('needs an existing user', () => {
      spec.given([]).when(erase()).thenFails('not-found');
    });
  });

  it('marks email and name as personal data', () => {
    const shape = userRegisteredSchema.shape.data.shape;
    expect(isPersonal(shape.email)).toBe(true);
    expect(isPersonal(shape.name)).toBe(true);
    expect(isPersonal(shape.roles)).toBe(false);
  });

  it('knows the same roles as the application', () => {
    expect(userRoleSchema.options).toEqual(roleSchema.options);
  });

  const requester = fc.record({ id: fc.constantFrom(userId, 'admin-1', 'c-1'), roles: fc.subarray(['ADMIN', 'AUDITOR', 'CONSUMER']) });
  // Repeats included: a command may name a role twice, and each is still held once.
  const roles = fc.array(fc.constantFrom(...userRoleSchema.options), { minLength: 1, maxLength: 6 });
  const registration = fc.tuple(roles, fc.option(requester)).map(([r, by]) => register(r, by));
  const command: fc.Arbitrary<UserCommand> = fc.oneof(
    registration,
    fc.tuple(roles, requester).map(([r, by]) => grant(r, by)),
    fc.tuple(roles, requester).map(([r, by]) => revoke(r, by)),
    requester.map((by): UserCommand => ({ type: 'EraseSubject', data: { userId, erasedBy: by, now: new Date('2031-05-01T10:00:00Z') } })),
  );
  /** Who asked for the command, whichever field names them. */
  const requesterOf = (command: UserCommand): Requester | null => {
    switch (command.type) {
      case 'RegisterUser':
        return command.data.registeredBy;
      case 'GrantRoles':
        return command.data.grantedBy;
      case 'RevokeRoles':
        return command.data.revokedBy;
      case 'EraseSubject':
        return command.data.erasedBy;
      default: {
        const _exhaustive: never = command;
        return _exhaustive;
      }
    }
  };

  // Every run starts with a registration, so that the later commands mostly have a user to act on.
  const history = fc.tuple(registration, fc.array(command, { maxLength: 20 })).map(([first, rest]) => [first, ...rest]);

  property.prop([history], { numRuns: 300 })('evolves without error, keeps roles unique and leaves ADMIN and AUDITOR to admins under any commands', (commands) => {
    let state: UserState = userDecider.initialState;
    let erasedOnce = false;
    for (const next of commands) {
      let events: UserEvent[] = [];
      try {
        events = userDecider.decide(next, state);
      } catch (error) {
        expect(error).toBeInstanceOf(DomainError);
      }
      for (const event of events) {
        const named = event.type === 'SubjectErased' ? [] : event.data.roles;
        expect(new Set(named).size, `${event.type} names each role once`).toBe(named.length);
        const given = event.type === 'UserRegistered' || event.type === 'RolesGranted' ? event.data.roles : [];
        const taken = event.type === 'RolesRevoked' ? event.data.roles : [];
        // ADMIN is registered, granted and revoked only by an admin, who never revokes their own.
        if (given.includes('ADMIN') || taken.includes('ADMIN')) expect(requesterOf(next)?.roles).toContain('ADMIN');
        if (taken.includes('ADMIN')) expect(requesterOf(next)?.id).not.toBe(userId);
        // AUDITOR comes only from an admin who is an auditor too.
        if (given.includes('AUDITOR')) expect(requesterOf(next)?.roles).toEqual(expect.arrayContaining(['ADMIN', 'AUDITOR']));
        state = userDecider.evolve(state, event);
      }
      if (state.status === 'registered') expect(new Set(state.roles).size).toBe(state.roles.length);
      // Erasure is never undone.
      if (state.status === 'registered' && state.erased) erasedOnce = true;
      if (erasedOnce) expect(state).toMatchObject({ erased: true });
    }
  });
});
