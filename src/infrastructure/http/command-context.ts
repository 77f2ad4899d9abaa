import type { FastifyRequest } from 'fastify';
import { anonymousActor } from '../../application/authorization/actors.js';
import type { CommandOptions } from '../../application/command-handling/handle-command.js';
import type { CommandContext } from '../../application/metadata.js';
import { expectedVersion } from './command-result.js';
import { externalIdPattern } from './request-id.js';

/**
 * Everything about a request that its events' metadata records. Call it after the route's auth
 * hook, so `actor` is the authenticated caller (or anonymous on a public route).
 */
export function commandContext(request: FastifyRequest): CommandContext {
  const correlation = request.headers['x-correlation-id'];
  return {
    actor: request.actor ?? anonymousActor,
    requestId: request.id,
    // A caller that started a larger flow passes its id along; otherwise this request starts one.
    correlationId: typeof correlation === 'string' && externalIdPattern.test(correlation) ? correlation : request.id,
    causationId: request.id,
    ip: request.ip,
    userAgent: request.headers['user-agent'],
  };
}

/** The command id, context and pinned version of a request: what every use case takes. */
export function commandOptions(request: FastifyRequest): CommandOptions {
  const version = expectedVersion(request);
  return {
    commandId: request.commandId,
    context: commandContext(request),
    ...(version === undefined ? {} : { expectedVersion: version }),
    // Without an Idempotency-Key the command id is a fresh UUID: this request cannot be a retry.
    ...(request.idempotencyClaim === null ? { freshCommandId: true } : {}),
  };
}
