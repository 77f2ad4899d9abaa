import { z } from 'zod';

/**
 * Roles as access tokens carry them. Spelled out here as well as in the application because
 * the domain imports nothing from outside itself.
 */
export const roleSchema = z.enum(['CONSUMER', 'OWNER', 'PATIENT', 'DOCTOR', 'ADMIN', 'AUDITOR']);
export type Role = z.infer<typeof roleSchema>;

/**
 * Who sends a command, as the edge established it. Deciders need it where a rule is about who
 * may do something (only the owner, only the author, only an admin).
 */
export const actorSchema = z.object({ id: z.string().min(1), roles: z.array(roleSchema) });
export type Actor = z.infer<typeof actorSchema>;

export function hasRole(actor: Actor, role: Role): boolean {
  return actor.roles.includes(role);
}
