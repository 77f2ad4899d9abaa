import { streamIdOf } from '../../domain/user/user.decider.js';
import type { UserRole } from '../../domain/user/user.events.js';
import { currentRoles } from '../authorization/registered-users.js';
import type { CommandSide } from '../command-handlers.js';
import { outcome, type CommandOutcome } from '../command-handling/command-outcome.js';
import type { CommandOptions } from '../command-handling/handle-command.js';

export type RoleChangeInput = { readonly roles: readonly UserRole[]; readonly reason: string };

/**
 * Who asks, with the roles their user still holds: the decider's rules on ADMIN and AUDITOR
 * must not take a token's word, which outlives its admin's demotion.
 */
async function requester(side: CommandSide, request: CommandOptions): Promise<{ id: string; roles: string[] }> {
  const { actor } = request.context;
  return { id: actor.id, roles: await currentRoles(side.handlers.user, actor) };
}

/** Gives `userId` the roles they do not hold yet (AUDITOR only from an admin who is an auditor too). */
export async function grantRoles(side: CommandSide, userId: string, input: RoleChangeInput, request: CommandOptions): Promise<CommandOutcome> {
  const grantedBy = await requester(side, request);
  const command = { type: 'GrantRoles' as const, data: { userId, roles: [...input.roles], reason: input.reason, grantedBy } };
  return outcome(userId, await side.handlers.user.handle(streamIdOf(userId), command, request));
}

/**
 * Takes roles away from `userId`; it counts on their very next request (the command API checks
 * every token naming ADMIN or AUDITOR against their user's stream). Never one's own ADMIN.
 */
export async function revokeRoles(side: CommandSide, userId: string, input: RoleChangeInput, request: CommandOptions): Promise<CommandOutcome> {
  const revokedBy = await requester(side, request);
  const command = { type: 'RevokeRoles' as const, data: { userId, roles: [...input.roles], reason: input.reason, revokedBy } };
  return outcome(userId, await side.handlers.user.handle(streamIdOf(userId), command, request));
}
