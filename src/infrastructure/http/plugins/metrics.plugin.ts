import type { FastifyPluginAsync, FastifyReply, FastifyRequest } from 'fastify';
import fp from 'fastify-plugin';
import { collectDefaultMetrics, Histogram, Registry } from 'prom-client';
import { registeredOnce } from '../../metrics/registered-once.js';

declare module 'fastify' {
  interface FastifyInstance {
    /**
     * Counts one answered request in the request histogram. The onResponse hook calls it for
     * every routed request and every 404; an answer given before routing (`frameworkErrors`: a
     * path fastify cannot decode, a parameter too long) runs no hook, so its sender calls it.
     */
    observeRequest(request: FastifyRequest, reply: FastifyReply, seconds: number): void;
    /**
     * The same count for an answer that has no request or reply object: one Node's HTTP parser
     * refused (headers over the limit, a raw byte it rejects), answered on the bare socket.
     */
    observeAnswer(labels: { readonly method: string; readonly route: string; readonly statusCode: number }, seconds: number): void;
  }
}

export type MetricsOptions = {
  /** Default: a fresh registry with Node's default metrics, so two APIs in one process do not clash. */
  readonly registry?: Registry;
};

/**
 * `GET /metrics` in Prometheus text format: the process's default metrics and how long requests
 * take, by method, route pattern (not the raw URL, which would make a series per id) and status.
 */
const metrics: FastifyPluginAsync<MetricsOptions> = async (app, options) => {
  let registry = options.registry;
  if (!registry) {
    registry = new Registry();
    collectDefaultMetrics({ register: registry });
  }
  const name = 'http_request_duration_seconds';
  const duration = registeredOnce(
    registry,
    name,
    Histogram,
    () =>
      new Histogram({
        name,
        help: 'HTTP request duration in seconds, by method, route and status code',
        labelNames: ['method', 'route', 'status_code'],
        buckets: [0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1, 2.5, 5],
        registers: [registry],
      }),
  );

  // A request no route matched (404, or refused before routing) has no pattern: one `unmatched`
  // series per method and status, however many URLs are tried.
  app.decorate('observeAnswer', (labels: { readonly method: string; readonly route: string; readonly statusCode: number }, seconds: number) => {
    duration.observe({ method: labels.method, route: labels.route, status_code: String(labels.statusCode) }, seconds);
  });
  app.decorate('observeRequest', (request: FastifyRequest, reply: FastifyReply, seconds: number) => {
    app.observeAnswer({ method: request.method, route: request.routeOptions.url ?? 'unmatched', statusCode: reply.statusCode }, seconds);
  });
  app.addHook('onResponse', async (request, reply) => app.observeRequest(request, reply, reply.elapsedTime / 1000));

  const scraped = registry;
  app.get('/metrics', { config: { rateLimit: false }, schema: { hide: true } }, async (_request, reply) =>
    reply.type(scraped.contentType).send(await scraped.metrics()),
  );
};

export const metricsPlugin = fp(metrics, { name: 'metrics' });
