import { z } from 'zod';
import { notPrintable, printable } from '../shared/printable-text.js';
import { userRoleSchema } from './user.events.js';

/** Who is asking, as far as the rules care: an id and the roles the edge established. */
export const requesterSchema = z.object({
  id: z.string().min(1),
  roles: z.array(z.string()),
});
export type Requester = z.infer<typeof requesterSchema>;

/**
 * Why an admin changed someone's roles or erased them, as they wrote it: short, one line, no
 * control characters (it shows in the audit trail and in any terminal reading it).
 */
export const adminReasonSchema = z.string().trim().min(1).max(500).regex(printable, notPrintable);

export const registerUserSchema = z.object({
  type: z.literal('RegisterUser'),
  data: z.object({
    userId: z.string().min(1),
    email: z.email(),
    name: z.string().trim().min(1).max(200).regex(printable, notPrintable),
    roles: z.array(userRoleSchema).min(1),
    /** `null` for a self-service signup; an admin when someone registers another person. */
    registeredBy: requesterSchema.nullable(),
  }),
});
export type RegisterUser = z.infer<typeof registerUserSchema>;

export const grantRolesSchema = z.object({
  type: z.literal('GrantRoles'),
  data: z.object({
    userId: z.string().min(1),
    roles: z.array(userRoleSchema).min(1),
    grantedBy: requesterSchema,
    reason: adminReasonSchema.optional(),
  }),
});
export type GrantRoles = z.infer<typeof grantRolesSchema>;

export const revokeRolesSchema = z.object({
  type: z.literal('RevokeRoles'),
  data: z.object({
    userId: z.string().min(1),
    roles: z.array(userRoleSchema).min(1),
    revokedBy: requesterSchema,
    reason: adminReasonSchema.optional(),
  }),
});
export type RevokeRoles = z.infer<typeof revokeRolesSchema>;

/** Records that the person's personal data was erased; their data key is destroyed beforehand. */
export const eraseSubjectSchema = z.object({
  type: z.literal('EraseSubject'),
  data: z.object({
    userId: z.string().min(1),
    erasedBy: requesterSchema,
    now: z.date(),
    /** The request this answers (a ticket number): it outlives the person's key, so it must not be about them. */
    reason: adminReasonSchema.optional(),
  }),
});
export type EraseSubject = z.infer<typeof eraseSubjectSchema>;

/**
 * Records an erasure whose key is already destroyed: `EraseSubject` was decided, every rule held,
 * before the key went. Nothing then may refuse the record, or the person stays half erased (their
 * data unreadable, yet still in every read model) and no retry could finish it.
 */
export const recordErasureSchema = eraseSubjectSchema.extend({ type: z.literal('RecordErasure') });
export type RecordErasure = z.infer<typeof recordErasureSchema>;

export const userCommandSchema = z.discriminatedUnion('type', [registerUserSchema, grantRolesSchema, revokeRolesSchema, eraseSubjectSchema, recordErasureSchema]);
export type UserCommand = z.infer<typeof userCommandSchema>;
