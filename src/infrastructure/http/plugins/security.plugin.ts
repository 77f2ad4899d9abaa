import cors from '@fastify/cors';
import rateLimit from '@fastify/rate-limit';
import type { FastifyPluginAsync, onRequestAsyncHookHandler, preHandlerAsyncHookHandler } from 'fastify';
import fp from 'fastify-plugin';
import helmet, { type HelmetOptions } from 'helmet';
import { IncomingMessage, ServerResponse, type OutgoingHttpHeaders } from 'node:http';
import { Socket } from 'node:net';
import { HttpProblem } from '../problem.js';

export type SecurityOptions = {
  /** Origins allowed to call from a browser; empty: no cross-origin access. */
  readonly corsOrigins: readonly string[];
  /** Requests per minute per client IP, on every route that does not opt out. */
  readonly rateLimitMax: number;
  /** A stricter limit per client IP, shared by all routes under these prefixes (e.g. `/v1/auth/`). */
  readonly strict?: { readonly prefixes: readonly string[]; readonly max: number };
};

/** Headers a browser client may read from our responses. */
const exposedHeaders = ['ETag', 'Event-Position', 'Export-Position', 'X-Request-Id', 'Idempotent-Replayed', 'Retry-After', 'Location'];

/**
 * The headers helmet sets, computed once. They follow from its options alone (we use no CSP
 * nonces), yet @fastify/helmet builds helmet's whole middleware anew for every request: 40 of the
 * 71 µs of main-thread time a `GET /health/live` cost here, and a third of a cached read's. So
 * helmet runs once, at start-up, on a response that is never sent, and every reply gets what it
 * wrote there.
 */
export function helmetHeaders(options?: Readonly<HelmetOptions>): OutgoingHttpHeaders {
  const request = new IncomingMessage(new Socket());
  const response = new ServerResponse(request);
  let done = false;
  helmet(options)(request, response, (error?: unknown) => {
    if (error) throw error;
    done = true;
  });
  if (!done) throw new Error('helmet did not finish synchronously: its headers cannot be computed once');
  return response.getHeaders();
}

/**
 * Security headers, CORS and rate limits. Limits are counted in this process's memory, so
 * with several instances each allows its own share; a shared store is a `store` option away.
 */
const security: FastifyPluginAsync<SecurityOptions> = async (app, options) => {
  const securityHeaders = helmetHeaders();
  app.addHook('onRequest', (_request, reply, done) => {
    reply.headers(securityHeaders);
    done();
  });
  await app.register(cors, {
    origin: options.corsOrigins.length > 0 ? [...options.corsOrigins] : false,
    exposedHeaders,
    maxAge: 600,
  });

  const strict = options.strict;
  // One limiter for every route under the strict prefixes, so they share one count per client.
  // (A route's own `rateLimit` config gets a store of its own: each auth route had the whole
  // budget.) Made once the plugin is registered; routes are only called after that.
  let strictLimit: preHandlerAsyncHookHandler | undefined;
  if (strict) {
    // Runs before the rate limiter's own onRoute hook, which then leaves these routes to it.
    app.addHook('onRoute', (route) => {
      if (!strict.prefixes.some((prefix) => route.url.startsWith(prefix)) || route.config?.rateLimit === false) return;
      route.config = { ...route.config, rateLimit: false };
      const limit: onRequestAsyncHookHandler = async (request, reply) => strictLimit?.call(app, request, reply);
      route.onRequest = [limit, ...(route.onRequest === undefined ? [] : [route.onRequest].flat())];
    });
  }
  await app.register(rateLimit, {
    global: true,
    max: options.rateLimitMax,
    timeWindow: '1 minute',
    errorResponseBuilder: (_request, context) =>
      new HttpProblem(context.statusCode, 'rate-limited', 'Too many requests', `Rate limit exceeded; retry in ${context.after}`),
  });
  if (strict) strictLimit = app.rateLimit({ max: strict.max, timeWindow: '1 minute' });
};

export const securityPlugin = fp(security, { name: 'security' });
