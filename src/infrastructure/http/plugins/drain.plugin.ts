import type { FastifyPluginAsync } from 'fastify';
import fp from 'fastify-plugin';
import { HttpProblem } from '../problem.js';

declare module 'fastify' {
  interface FastifyInstance {
    /**
     * Starts a graceful stop: from now on new requests get 503 with `Retry-After` (a load
     * balancer moves them elsewhere), and the promise resolves when the requests already accepted
     * have been answered, or after `timeoutMs`. Then `close()` finds nothing in flight.
     */
    drain(timeoutMs: number): Promise<void>;
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
  app.addHook('onRequest', async (request) => {
    if (draining) {
      throw new HttpProblem(503, 'shutting-down', 'Shutting down', 'This instance is stopping; try again', {
        headers: { 'retry-after': '1', connection: 'close' },
      });
    }
    request.drainCounted = true;
    inFlight++;
  });
  app.addHook('onResponse', async (request) => {
    if (!request.drainCounted) return;
    inFlight--;
    if (inFlight === 0) idle?.();
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
