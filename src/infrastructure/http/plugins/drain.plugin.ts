import type { FastifyPluginAsync } from 'fastify';
import fp from 'fastify-plugin';
import { HttpProblem } from '../problem.js';
import { isOperationalPath } from './load-shedding.plugin.js';

declare module 'fastify' {
  interface FastifyInstance {
    /**
     * Starts a graceful stop: from now on new requests get 503 with `Retry-After` (a load
     * balancer moves them elsewhere), and the promise resolves when the requests already accepted
     * have been answered, or after `timeoutMs`. Then `close()` finds nothing in flight.
     */
    drain(timeoutMs: number): Promise<void>;
    /** True once `drain` has begun: `/health/ready` then answers 503. */
    readonly draining: boolean;
  }
  interface FastifyRequest {
    /** Counted among the requests a drain waits for. */
    drainCounted: boolean;
  }
}

const drainPluginImpl: FastifyPluginAsync = async (app) => {
  let draining = false;
  let inFlight = 0;
  let idle: (() => void) | undefined;

  app.decorateRequest('drainCounted', false);
  app.decorate('draining', {
    getter: () => draining,
  });
  app.addHook('onRequest', async (request, reply) => {
    // Probes and scrapes still answer: a load balancer must hear "not ready" as such.
    if (draining && !isOperationalPath(request.url)) {
      throw new HttpProblem(503, 'shutting-down', 'Shutting down', 'This instance is stopping; try again', {
        headers: { 'retry-after': '1', connection: 'close' },
      });
    }
    request.drainCounted = true;
    inFlight++;
    // Counted out when the response closes, sent or not: `onResponse` never runs for a request
    // whose client hung up, and each one left behind made every later drain wait its whole time.
    reply.raw.once('close', () => {
      inFlight--;
      if (inFlight === 0) idle?.();
    });
  });
  // While draining, answers close their connection: a keep-alive socket left open would keep
  // `close()` waiting for the client to hang up.
  app.addHook('onSend', async (_request, reply) => {
    if (draining) reply.header('connection', 'close');
  });

  app.decorate('drain', async (timeoutMs: number) => {
    draining = true;
    if (inFlight === 0) return;
    await new Promise<void>((resolve) => {
      const timer = setTimeout(resolve, timeoutMs);
      idle = () => {
        clearTimeout(timer);
        resolve();
      };
    });
  });
};

export const drainPlugin = fp(drainPluginImpl, { name: 'drain' });
