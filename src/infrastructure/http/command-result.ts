import type { FastifyReply, FastifyRequest } from 'fastify';
import { z } from 'zod';
import { refusalPosition, type CommandOutcome } from '../../application/command-handling/command-outcome.js';
import { formatPosition } from '../../application/ports/position.js';
import { HttpProblem } from './problem.js';

/** What a handled command reports: the aggregate it touched, its new version, and where in the log. */
export type CommandResult = CommandOutcome;

export const commandResultSchema = z
  .object({
    id: z.string(),
    streamId: z.string(),
    version: z.number().int().nonnegative(),
    position: z.string().describe('Opaque, totally ordered; send it as Consistency-Position to the query API'),
  })
  .meta({ id: 'CommandResult' });

const ifMatchPattern = /^"(\d{1,15})"$/;
const ifMatchMessage = 'must be one quoted version, e.g. "3"';

/**
 * For a route's `schema.headers`, so /docs shows the header; `expectedVersion` reads it either
 * way. Checked here too, not only in the handler: validation runs before the Idempotency-Key is
 * claimed, so a malformed header does not spend the key on a stored 400.
 */
export const ifMatchHeaderSchema = z.object({
  'if-match': z
    .string()
    .regex(ifMatchPattern, ifMatchMessage)
    .optional()
    .describe('The ETag of the version this command was decided against, e.g. "3"; a newer version answers 412'),
});

/**
 * For a create route's `schema.headers`: there is no resource yet whose version a client could
 * have seen (API.md: If-Match is for "a command on an existing aggregate"), so any If-Match is a
 * 400 naming the header rather than a precondition silently dropped; refused, like a malformed
 * one, before the Idempotency-Key is claimed.
 */
export const noIfMatchHeaderSchema = z.object({
  'if-match': z
    .never({ error: 'applies to an existing resource; a create has none to match, so send no If-Match' })
    .optional()
    .describe('Not accepted: If-Match applies to an existing resource'),
});

/**
 * The body of a command that takes none: nothing, or `{}`. Strict, as every other body is, so a
 * field a client meant to send is refused (400 naming it) rather than ignored.
 */
export const emptyBodySchema = z.object({}).strict().nullish().describe('None, or {}').meta({ id: 'EmptyRequest' });

/**
 * The query string of a command, which takes none: each parameter is a 400 naming it, as on the
 * query API, rather than ignored (`POST /v1/bookings?dryRun=true` would book). Validation runs
 * before the Idempotency-Key is claimed, so the refusal does not spend the key.
 */
export const noQuerySchema = z.strictObject({});

/** The version pinned by `If-Match: "<n>"`, `undefined` without the header; 400 for anything else. */
export function expectedVersion(request: FastifyRequest): number | undefined {
  const header = request.headers['if-match'];
  if (header === undefined) return undefined;
  const match = typeof header === 'string' ? ifMatchPattern.exec(header.trim()) : null;
  if (!match?.[1]) {
    const extensions = { errors: [{ path: 'headers.if-match', message: ifMatchMessage }] };
    throw new HttpProblem(400, 'validation-failed', 'Validation failed', 'The If-Match header is malformed', { extensions });
  }
  return Number(match[1]);
}

/** Sends a command's result the way API.md fixes it: body, `ETag` and `Event-Position`. */
export function sendCommandResult(reply: FastifyReply, result: CommandResult, status: 200 | 201): FastifyReply {
  const position = formatPosition(result.position);
  return reply
    .code(status)
    .header('etag', `"${result.version}"`)
    .header('event-position', position)
    .send({ id: result.id, streamId: result.streamId, version: result.version, position });
}

/**
 * `Event-Position` for the answer to a command refused after it appended steps and their undoing
 * (a slot taken, then given back), in the form an accepted command's answer has it: a read that
 * waits for it sees the undoing. None for a refusal that appended nothing.
 */
export function refusalHeaders(error: unknown): Record<string, string> {
  const position = refusalPosition(error);
  return position ? { 'event-position': formatPosition(position) } : {};
}
