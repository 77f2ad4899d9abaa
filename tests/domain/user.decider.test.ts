import { fc, test as property } from '@fast-check/vitest';
import { describe, expect, it } from 'vitest';
import { aggregates } from '../../src/application/aggregates/aggregates.js';
import { roleSchema } from '../../src/application/metadata.js';
import type { JsonObject } from '../../src/application/ports/event-store.js';
import { DomainError } from '../../src/domain/shared/domain-error.js';
import { isPersonal } from '../../src/domain/shared/personal-data.js';
import type { Requester, UserCommand } from '../../src/domain/user/user.commands.js';
import { userDecider, type UserState } from '../../src/domain/user/user.decider.js';
import {
  rolesGrantedSchema,
  rolesRevokedSchema,
  subjectErasedSchema,
  userRegisteredSchema,
  userRoleSchema,
  type UserEvent,
  type UserRole,
} from '../../src/domain/user/user.events.js';
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
const grant = (roles: UserRole[], grantedBy = admin, reason?: string): UserCommand => ({
  type: 'GrantRoles',
  data: { userId, roles, grantedBy, ...(reason === undefined ? {} : { reason }) },
});
const revoke = (roles: UserRole[], revokedBy = admin, reason?: string): UserCommand => ({
  type: 'RevokeRoles',
  data: { userId, roles, revokedBy, ...(reason === undefined ? {} : { reason }) },
});
const erasedAt = new Date('2031-05-01T10:00:00Z');
const subjectErased: UserEvent = { type: 'SubjectErased', data: { userId, erasedBy: admin.id, erasedAt: erasedAt.toISOString() } };

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

    it('records why, as the admin gave it: who did it and why is what an auditor asks', () => {
      spec.given([registered(['CONSUMER'])]).when(grant(['OWNER'], admin, 'TICKET-42: runs the harbour flats')).then([
        { type: 'RolesGranted', data: { userId, roles: ['OWNER'], grantedBy: admin.id, reason: 'TICKET-42: runs the harbour flats' } },
      ]);
    });

    it('grants nothing to an erased person: they are gone as far as roles go', () => {
      spec.given([registered(), subjectErased]).when(grant(['OWNER'], admin, 'back again')).thenFails('not-found');
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

    it('records why, as the admin gave it', () => {
      spec.given([registered(['ADMIN'])]).when(revoke(['ADMIN'], admin, 'left the company')).then([
        { type: 'RolesRevoked', data: { userId, roles: ['ADMIN'], revokedBy: admin.id, reason: 'left the company' } },
      ]);
    });

    it('revokes AUDITOR only by an admin who is an auditor too: else an admin alone could demote an auditor, then erase them', () => {
      spec.given([registered(['AUDITOR', 'OWNER'])]).when(revoke(['AUDITOR'], admin)).thenFails('forbidden');
      spec.given([registered(['AUDITOR', 'OWNER'])]).when(revoke(['AUDITOR', 'OWNER'], admin)).thenFails('forbidden');
      spec.given([registered(['AUDITOR', 'OWNER'])]).when(revoke(['AUDITOR'], adminAuditor)).then([
        { type: 'RolesRevoked', data: { userId, roles: ['AUDITOR'], revokedBy: adminAuditor.id } },
      ]);
      // Not held: nothing is revoked, so nothing is refused.
      spec.given([registered(['OWNER'])]).when(revoke(['AUDITOR', 'OWNER'], admin)).then([
        { type: 'RolesRevoked', data: { userId, roles: ['OWNER'], revokedBy: admin.id } },
      ]);
    });

    it('needs an existing user, not an erased one', () => {
      spec.given([]).when(revoke(['OWNER'])).thenFails('not-found');
      spec.given([registered(['OWNER']), subjectErased]).when(revoke(['OWNER'])).thenFails('not-found');
    });
  });

  describe('EraseSubject', () => {
    const erase = (erasedBy: { id: string; roles: string[] } = admin, reason?: string): UserCommand => ({
      type: 'EraseSubject',
      data: { userId, erasedBy, now: erasedAt, ...(reason === undefined ? {} : { reason }) },
    });
    const erased = subjectErased;

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

    it('records the request it answers, when given (a reference such as a ticket number)', () => {
      spec.given([registered()]).when(erase(admin, 'GDPR-2031-117')).then([
        { type: 'SubjectErased', data: { userId, erasedBy: admin.id, erasedAt: erasedAt.toISOString(), reason: 'GDPR-2031-117' } },
      ]);
    });

    it('keeps an admin from erasing themselves: the last admin would leave none, and nothing undoes it', () => {
      spec.given([registered(['ADMIN'])]).when(erase({ id: userId, roles: ['ADMIN'] })).thenFails('cannot-erase-self');
    });

    it('erases an auditor only by an admin who is an auditor too, as only such an admin makes one', () => {
      spec.given([registered(['AUDITOR'])]).when(erase(admin)).thenFails('forbidden');
      spec.given([registered(['AUDITOR'])]).when(erase(adminAuditor)).then([
        { type: 'SubjectErased', data: { userId, erasedBy: adminAuditor.id, erasedAt: erasedAt.toISOString() } },
      ]);
    });
  });

  describe('RecordErasure (the key is destroyed already; EraseSubject was decided before it was)', () => {
    const record = (erasedBy: { id: string; roles: string[] } = admin, reason?: string): UserCommand => ({
      type: 'RecordErasure',
      data: { userId, erasedBy, now: erasedAt, ...(reason === undefined ? {} : { reason }) },
    });

    it('records the erasure with the request it answers', () => {
      spec.given([registered()]).when(record(admin, 'GDPR-2031-117')).then([
        { type: 'SubjectErased', data: { userId, erasedBy: admin.id, erasedAt: erasedAt.toISOString(), reason: 'GDPR-2031-117' } },
      ]);
    });

    it('records it though the person was made an auditor after the check: the key is gone, and a refusal would leave them half erased', () => {
      spec.given([registered(), { type: 'RolesGranted', data: { userId, roles: ['AUDITOR'], grantedBy: adminAuditor.id } }]).when(record(admin)).then([subjectErased]);
    });

    it('records nothing more once recorded, and needs an existing user', () => {
      spec.given([registered(), subjectErased]).when(record()).then([]);
      spec.given([]).when(record()).thenFails('not-found');
    });
  });

  it('reads role changes and erasures stored before reasons were recorded', () => {
    const stored: { type: string; data: JsonObject }[] = [
      { type: 'RolesGranted', data: { userId, roles: ['OWNER'], grantedBy: admin.id } },
      { type: 'RolesRevoked', data: { userId, roles: ['OWNER'], revokedBy: admin.id } },
      { type: 'SubjectErased', data: { userId, erasedBy: admin.id, erasedAt: erasedAt.toISOString() } },
    ];
    for (const event of stored) expect(aggregates.user.codec.decode({ ...event, metadata: { schemaVersion: 1 } })).toEqual(event);
  });

  it('seals the reason for a role change as personal data; an erasure\'s reference is not, as it outlives the key', () => {
    expect(isPersonal(rolesGrantedSchema.shape.data.shape.reason.unwrap())).toBe(true);
    expect(isPersonal(rolesRevokedSchema.shape.data.shape.reason.unwrap())).toBe(true);
    expect(isPersonal(subjectErasedSchema.shape.data.shape.reason.unwrap())).toBe(false);
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
  const reason = fc.option(fc.constantFrom('TICKET-1', 'left the company'), { nil: undefined });
  const command: fc.Arbitrary<UserCommand> = fc.oneof(
    registration,
    fc.tuple(roles, requester, reason).map(([r, by, why]) => grant(r, by, why)),
    fc.tuple(roles, requester, reason).map(([r, by, why]) => revoke(r, by, why)),
    fc.tuple(fc.constantFrom('EraseSubject' as const, 'RecordErasure' as const), requester, reason).map(([type, by, why]): UserCommand => ({
      type,
      data: { userId, erasedBy: by, now: erasedAt, ...(why === undefined ? {} : { reason: why }) },
    })),
  );
  /** The reason a command gave, which its event must carry as it is. */
  const reasonOf = (command: UserCommand): string | undefined => (command.type === 'RegisterUser' ? undefined : command.data.reason);
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
      case 'RecordErasure':
        return command.data.erasedBy;
      default: {
        const _exhaustive: never = command;
        return _exhaustive;
      }
    }
  };

  // Every run starts with a registration, so that the later commands mostly have a user to act on.
  const history = fc.tuple(registration, fc.array(command, { maxLength: 20 })).map(([first, rest]) => [first, ...rest]);

  property.prop([history], { numRuns: 300 })('evolves without error, keeps roles unique, leaves ADMIN and AUDITOR to admins (AUDITOR, granted or revoked, to auditor-admins) and erasure to others under any commands', (commands) => {
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
        // AUDITOR comes and goes only by an admin who is an auditor too.
        if (given.includes('AUDITOR') || taken.includes('AUDITOR')) expect(requesterOf(next)?.roles).toEqual(expect.arrayContaining(['ADMIN', 'AUDITOR']));
        // Nobody erases themselves; an auditor is erased only by an admin who is an auditor too.
        // (RecordErasure only records what an EraseSubject, decided before the key went, allowed.)
        if (event.type === 'SubjectErased' && next.type === 'EraseSubject') {
          expect(requesterOf(next)?.id).not.toBe(userId);
          if (state.status === 'registered' && state.roles.includes('AUDITOR')) expect(requesterOf(next)?.roles).toContain('AUDITOR');
        }
        // An erased person's roles change no more.
        if (event.type === 'RolesGranted' || event.type === 'RolesRevoked') expect(state).toMatchObject({ erased: false });
        if (event.type !== 'UserRegistered') expect(event.data.reason).toBe(reasonOf(next));
        state = userDecider.evolve(state, event);
      }
      if (state.status === 'registered') expect(new Set(state.roles).size).toBe(state.roles.length);
      // Erasure is never undone.
      if (state.status === 'registered' && state.erased) erasedOnce = true;
      if (erasedOnce) expect(state).toMatchObject({ erased: true });
    }
  });
});
