import type { FastifyPluginAsync } from 'fastify';
import fp from 'fastify-plugin';
import { collectDefaultMetrics, Histogram, Registry } from 'prom-client';

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
  // Both APIs of one process publish into one registry: the second reuses the first's histogram.
  const existing = registry.getSingleMetric(name);
  const duration =
    existing instanceof Histogram
      ? existing
      : new Histogram({
          name,
          help: 'HTTP request duration in seconds, by method, route and status code',
          labelNames: ['method', 'route', 'status_code'],
          buckets: [0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1, 2.5, 5],
          registers: [registry],
        });

  app.addHook('onResponse', async (request, reply) => {
    const route = request.routeOptions.url ?? 'unmatched';
    duration.observe({ method: request.method, route, status_code: String(reply.statusCode) }, reply.elapsedTime / 1000);
  });

  const scraped = registry;
  app.get('/metrics', { config: { rateLimit: false }, schema: { hide: true } }, async (_request, reply) =>
    reply.type(scraped.contentType).send(await scraped.metrics()),
  );
};

export const metricsPlugin = fp(metrics, { name: 'metrics' });
