import Fastify, { errorCodes, LogController } from 'fastify';
import type { ZodTypeProvider } from 'fastify-type-provider-zod';
import type { Registry } from 'prom-client';
import type { TrustedProxies } from '../config/trusted-proxies.js';
import type { Logger } from '../logging/logger.js';
import { answerClientError } from './client-error.js';
import { authPlugin, type AuthOptions } from './plugins/auth.plugin.js';
import { drainPlugin } from './plugins/drain.plugin.js';
import { errorHandlerPlugin } from './plugins/error-handler.plugin.js';
import { healthPlugin, type ReadinessProbe } from './plugins/health.plugin.js';
import { loadSheddingPlugin, type LoadSheddingOptions } from './plugins/load-shedding.plugin.js';
import { metricsPlugin } from './plugins/metrics.plugin.js';
import { openApiPlugin, type OpenApiOptions } from './plugins/openapi.plugin.js';
import { securityPlugin, type SecurityOptions } from './plugins/security.plugin.js';
import { problemDocument, sendProblem } from './problem.js';
import { requestIdFor } from './request-id.js';

/** API.md: bodies over 64 KiB answer 413. */
export const bodyLimit = 64 * 1024;

export type HttpServerOptions = {
  readonly logger: Logger;
  readonly openApi: OpenApiOptions;
  readonly security: SecurityOptions;
  readonly auth: AuthOptions;
  readonly probes: readonly ReadinessProbe[];
  readonly metricsRegistry?: Registry;
  /**
   * Behind reverse proxies: those whose `X-Forwarded-For` entries name the client (`TRUST_PROXY`).
   * Unset: none, the connection's address is the client's.
   */
  readonly trustProxy?: TrustedProxies;
  /** When to turn new requests away with 503; without it, never (the process's config sets it). */
  readonly loadShedding?: LoadSheddingOptions;
};

/**
 * What the command API and the query API share: request ids, the error handler, zod schemas
 * and /docs, security headers, CORS, rate limits, access tokens, health and metrics. The
 * caller adds its routes and listens; tests call `inject` or listen on port 0.
 */
export async function createHttpServer(options: HttpServerOptions) {
  const app = Fastify({
    loggerInstance: options.logger,
    genReqId: requestIdFor,
    requestIdHeader: false,
    logController: new LogController({ requestIdLogLabel: 'requestId' }),
    bodyLimit,
    trustProxy: options.trustProxy ? [...options.trustProxy] : false,
    // Plain objects only: a body of `{"__proto__": …}` must not reach a handler.
    onProtoPoisoning: 'error',
    onConstructorPoisoning: 'error',
    // `close()` comes after `drain()`: whatever connection is still open then (a request past the
    // grace period, a keep-alive socket whose request ended after it) is cut, not waited for.
    forceCloseConnections: true,
    // A path fastify cannot decode (`/v1/bookings/%zz`) or a parameter too long fails before
    // routing: no hook runs for it, error handler and onResponse included, and fastify logs no
    // completion. Answered, timed, counted and logged here as every other request is.
    frameworkErrors: (error, request, reply) => {
      const started = performance.now();
      reply.raw.once('finish', () => {
        const ms = performance.now() - started;
        request.server.observeRequest(request, reply, ms / 1000);
        request.log.info({ res: reply, responseTime: ms }, 'request completed');
      });
      const status = error.statusCode ?? 400;
      const problem = problemDocument(request, { status, code: 'bad-request', title: 'Bad request', detail: error.message });
      return sendProblem(reply, problem, { 'x-request-id': request.id });
    },
    // Earlier still, a request Node's HTTP parser refuses (headers over the limit, a raw
    // non-ASCII byte in the URL) is no request at all: answered problem+json on the socket.
    clientErrorHandler: answerClientError,
  }).withTypeProvider<ZodTypeProvider>();

  // JSON is the only body we speak; anything else is 415, not a string a schema then rejects.
  app.removeContentTypeParser('text/plain');
  const parseJson = app.getDefaultJsonParser('error', 'error');
  app.addContentTypeParser('application/json', { parseAs: 'string' }, (request, body, done) => {
    // JSON is UTF-8 (RFC 8259): a body declared in another charset was decoded as UTF-8 all the
    // same, and stored mangled ("Café" as "Caf�").
    const charset = /;\s*charset\s*=\s*"?([^";\s]+)/i.exec(request.headers['content-type'] ?? '')?.[1];
    if (charset !== undefined && !/^utf-?8$/i.test(charset)) {
      done(new errorCodes.FST_ERR_CTP_INVALID_MEDIA_TYPE(request.headers['content-type']), undefined);
      return;
    }
    // An empty body is no body: the routes that take none accept it, the others name the body
    // as missing. (Clients send `Content-Type: application/json` on every POST.)
    const text = body.toString();
    if (text === '') {
      done(null, undefined);
      return;
    }
    parseJson(request, text, done);
  });
  app.addHook('onRequest', async (request, reply) => {
    reply.header('x-request-id', request.id);
    // Answers asked for with a token are about someone (bookings, clinical notes, audit exports),
    // and answers to writes may carry tokens (login, refresh): a copy in a browser's or proxy's
    // cache is beyond erasure's reach and the access log's. Public reads stay cacheable.
    if (request.headers.authorization !== undefined || (request.method !== 'GET' && request.method !== 'HEAD')) {
      reply.header('cache-control', 'no-store');
    }
  });

  await app.register(errorHandlerPlugin);
  await app.register(drainPlugin);
  await app.register(openApiPlugin, options.openApi);
  await app.register(securityPlugin, options.security);
  await app.register(authPlugin, options.auth);
  await app.register(healthPlugin, { probes: options.probes });
  await app.register(metricsPlugin, options.metricsRegistry ? { registry: options.metricsRegistry } : {});
  if (options.loadShedding) await app.register(loadSheddingPlugin, options.loadShedding);
  return app;
}

export type HttpServer = Awaited<ReturnType<typeof createHttpServer>>;
