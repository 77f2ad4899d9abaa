import Fastify from 'fastify';
import type { Registry } from 'prom-client';
import type { Logger } from '../logging/logger.js';
import { answerClientError } from './client-error.js';
import { drainPlugin } from './plugins/drain.plugin.js';
import { errorHandlerPlugin } from './plugins/error-handler.plugin.js';
import { healthPlugin, type ReadinessProbe } from './plugins/health.plugin.js';
import { metricsPlugin } from './plugins/metrics.plugin.js';
import { requestValidatorCompiler } from './request-validator.js';
import { responseSerializerCompiler } from './response-serializer.js';

/**
 * For a role with no API of its own (the projector): `/health/live`, `/health/ready` and
 * `/metrics`, so an orchestrator can watch it and Prometheus can scrape its projections'
 * checkpoints, lag and throughput, which only that process knows.
 */
export async function createOperationsServer(options: { logger: Logger; probes: readonly ReadinessProbe[]; metricsRegistry: Registry }) {
  // A request Node's HTTP parser refuses is answered problem+json here too, as on both APIs.
  const app = Fastify({ loggerInstance: options.logger, disableRequestLogging: true, forceCloseConnections: true, clientErrorHandler: answerClientError });
  app.setValidatorCompiler(requestValidatorCompiler);
  app.setSerializerCompiler(responseSerializerCompiler);
  await app.register(errorHandlerPlugin);
  await app.register(drainPlugin);
  await app.register(healthPlugin, { probes: options.probes });
  await app.register(metricsPlugin, { registry: options.metricsRegistry });
  return app;
}
