import { Readable } from 'node:stream';
import type { FastifyPluginAsync, FastifyReply, FastifyRequest } from 'fastify';
import fp from 'fastify-plugin';
import { accessOutcome, type AccessLog } from '../../application/audit/access-log.js';
import { requireAuth } from '../http/plugins/auth.plugin.js';
import { problemContentType, problemDocument } from '../http/problem.js';

/**
 * Whose data a read concerns, where the request, a lookup or the answer (`payload`, as it is
 * about to be sent) can tell: one patient, several (a list answer: one record per patient, so
 * each patient's trail finds the read), or `null` (an empty list likewise) when none is known.
 */
export type PatientResolver = (request: FastifyRequest, payload: unknown) => Promise<string | readonly string[] | null>;

export type AccessLogPluginOptions = {
  readonly accessLog: AccessLog;
  readonly now: () => Date;
  /**
   * The routes (as declared, e.g. `/v1/appointments/:id`) whose every read is recorded, each
   * with how to find the patient concerned.
   */
  readonly audited: (routeUrl: string) => PatientResolver | undefined;
};

/**
 * Records every read of an audited route before its body leaves (`onSend`): granted, denied
 * (403) and hidden (404) alike; 401s are not recorded, as there is no one to attribute them to.
 * If the record cannot be written the reader gets a 503 instead of the body: no unlogged access.
 *
 * Registered with fastify-plugin, so the hook sits on the root instance and must be registered
 * before the routes it watches.
 */
const accessLogging: FastifyPluginAsync<AccessLogPluginOptions> = async (app, { accessLog, now, audited }) => {
  app.addHook('onSend', async (request, reply, payload) => {
    const routeUrl = request.routeOptions.url;
    const patientOf = routeUrl === undefined ? undefined : audited(routeUrl);
    if (!patientOf || reply.statusCode === 401) return payload;
    // A request refused before its preHandler ran (a malformed query, say) has not been
    // authenticated yet; the attempt is still worth recording if its token is good.
    const authenticated = request.actor ?? (await requireAuth(request).then(() => request.actor, () => null));
    if (!authenticated) return payload;
    try {
      const concerned = await patientOf(request, payload);
      const patients = concerned === null || typeof concerned === 'string' ? [concerned] : concerned.length > 0 ? concerned : [null];
      const at = now();
      // One after the other, in the answer's order. Should a later one fail, the earlier stay and
      // the read is refused: the log may then name a read that was not served, never the reverse.
      for (const patientId of patients) {
        await accessLog.record({
          at,
          actorId: authenticated.id,
          actorRoles: authenticated.roles,
          action: `${request.method} ${routeUrl}`,
          resource: request.url,
          patientId,
          outcome: accessOutcome(reply.statusCode),
          statusCode: reply.statusCode,
          ip: request.ip,
          userAgent: request.headers['user-agent'] ?? null,
          requestId: request.id,
        });
      }
      return payload;
    } catch (error) {
      request.log.error({ err: error }, 'access log not written; the read is refused');
      return refuse(request, reply, payload);
    }
  });
};

function refuse(request: FastifyRequest, reply: FastifyReply, payload: unknown): string {
  // A streamed body (the export) has not started flowing: end its reads of the store.
  if (payload instanceof Readable) payload.destroy();
  reply.code(503).type(problemContentType).header('retry-after', '5');
  reply.removeHeader('content-length');
  const problem = problemDocument(request, {
    status: 503,
    code: 'access-log-unavailable',
    title: 'Access log unavailable',
    detail: 'This read could not be recorded in the access log, so it was not served; try again shortly',
  });
  return JSON.stringify(problem);
}

export const accessLogPlugin = fp(accessLogging, { name: 'access-log' });
