import { z } from 'zod';
import { personal } from '../shared/personal-data.js';

/**
 * The roles a user may hold. The same list as `roleSchema` in `src/application/metadata.ts`,
 * repeated because the domain imports nothing outside itself; a test keeps the two equal.
 */
export const userRoleSchema = z.enum(['CONSUMER', 'OWNER', 'PATIENT', 'DOCTOR', 'ADMIN', 'AUDITOR']);
export type UserRole = z.infer<typeof userRoleSchema>;

/** Roles that let a person act on other people's data: only an admin hands them out. */
export const privilegedRoles: readonly UserRole[] = ['ADMIN', 'AUDITOR'];

// Event data is validated loosely (plain strings, not emails): an erased subject's personal
// fields come back as placeholders, and reading its history must still work.
export const userRegisteredSchema = z.object({
  type: z.literal('UserRegistered'),
  data: z.object({
    userId: z.string().min(1),
    email: personal(z.string()),
    name: personal(z.string()),
    roles: z.array(userRoleSchema),
  }),
});
export type UserRegistered = z.infer<typeof userRegisteredSchema>;

export const rolesGrantedSchema = z.object({
  type: z.literal('RolesGranted'),
  data: z.object({
    userId: z.string().min(1),
    roles: z.array(userRoleSchema).min(1),
    grantedBy: z.string().min(1),
    /**
     * Why, as the admin wrote it; absent from events stored before it was asked for. Free text
     * about the person, so sealed with their key like any such text.
     */
    reason: personal(z.string()).optional(),
  }),
});
export type RolesGranted = z.infer<typeof rolesGrantedSchema>;

export const rolesRevokedSchema = z.object({
  type: z.literal('RolesRevoked'),
  data: z.object({
    userId: z.string().min(1),
    roles: z.array(userRoleSchema).min(1),
    revokedBy: z.string().min(1),
    /** As `RolesGranted`'s. */
    reason: personal(z.string()).optional(),
  }),
});
export type RolesRevoked = z.infer<typeof rolesRevokedSchema>;

/**
 * The person's personal data was erased on request (GDPR Art. 17): their data key is destroyed,
 * so every personal field ever written for them now reads `[erased]`. Carries no personal data.
 */
export const subjectErasedSchema = z.object({
  type: z.literal('SubjectErased'),
  data: z.object({
    userId: z.string().min(1),
    erasedBy: z.string().min(1),
    erasedAt: z.iso.datetime({ offset: true }),
    /**
     * The request this erasure answers (a ticket number), when given; absent from events stored
     * before it was asked for. Not sealed: it is written after the key is gone and must stay
     * readable, so it must not be personal data.
     */
    reason: z.string().optional(),
  }),
});
export type SubjectErased = z.infer<typeof subjectErasedSchema>;
/** Readers that keep personal data watch for this type beside their own. */
export const subjectErasedType = subjectErasedSchema.shape.type.value;

export const userEventSchema = z.discriminatedUnion('type', [userRegisteredSchema, rolesGrantedSchema, rolesRevokedSchema, subjectErasedSchema]);
export type UserEvent = z.infer<typeof userEventSchema>;
