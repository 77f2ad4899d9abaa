import type { FastifyReply, FastifyRequest } from 'fastify';
import { z } from 'zod';
import type { JsonValue } from '../../application/ports/event-store.js';

/** Where problem types live; the last path segment is the kebab-case code of the rule or error. */
export const problemTypeBase = 'https://bookable.example/problems/';

export const problemContentType = 'application/problem+json';

/** An RFC 9457 problem document as this service writes it; for /docs and for tests. */
export const problemSchema = z
  .looseObject({
    type: z.string(),
    title: z.string(),
    status: z.number().int(),
    detail: z.string(),
    instance: z.string(),
    requestId: z.string(),
    errors: z.array(z.object({ path: z.string(), message: z.string() })).optional(),
  })
  .meta({ id: 'Problem' });
export type Problem = z.infer<typeof problemSchema>;

/**
 * An error that already knows its HTTP answer: what hooks and plugins throw for conditions
 * that exist only at the edge (no token, a bad header, a reused idempotency key).
 */
export class HttpProblem extends Error {
  override readonly name = 'HttpProblem';
  constructor(
    readonly status: number,
    /** Kebab-case; the last segment of the problem `type`. */
    readonly code: string,
    readonly title: string,
    detail: string,
    readonly options: {
      readonly extensions?: Readonly<Record<string, JsonValue>>;
      readonly headers?: Readonly<Record<string, string>>;
    } = {},
  ) {
    super(detail);
  }
}

/** The problem document for `request`: every problem names its request, so a report can be traced. */
export function problemDocument(
  request: FastifyRequest,
  problem: { status: number; code: string; title: string; detail: string; extensions?: Readonly<Record<string, JsonValue>> | undefined },
): Problem {
  return {
    type: `${problemTypeBase}${problem.code}`,
    title: problem.title,
    status: problem.status,
    detail: problem.detail,
    instance: request.url.split('?')[0] ?? request.url,
    requestId: request.id,
    ...problem.extensions,
  };
}

export function sendProblem(reply: FastifyReply, problem: Problem, headers: Readonly<Record<string, string>> = {}): FastifyReply {
  return reply.code(problem.status).headers(headers).type(problemContentType).send(problem);
}
