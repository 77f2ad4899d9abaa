import underPressure from '@fastify/under-pressure';
import type { FastifyPluginAsync } from 'fastify';
import fp from 'fastify-plugin';
import { HttpProblem } from '../problem.js';

export type LoadSheddingOptions = {
  /** Event-loop delay (ms) past which new requests are turned away; 0 turns the check off. */
  readonly maxEventLoopDelayMs: number;
  /** Heap in use (bytes) past which new requests are turned away; 0 turns the check off. */
  readonly maxHeapUsedBytes: number;
  readonly retryAfterSeconds: number;
};

declare module 'fastify' {
  interface FastifyContextConfig {
    /**
     * `false` on a route whose callers must never be turned away for load: one whose refusal
     * costs more than its request (a payment provider's webhook, retried hours later).
     */
    shedding?: false;
  }
}

/** Probes and scrapes must still answer when the service is shedding or stopping: that is when they matter. */
export function isOperationalPath(url: string): boolean {
  return url.startsWith('/health/') || url.startsWith('/metrics');
}

/**
 * Under overload, a quick 503 with `Retry-After` for new requests beats every request timing out:
 * the ones already accepted still finish, and clients back off.
 */
const loadShedding: FastifyPluginAsync<LoadSheddingOptions> = async (app, options) => {
  await app.register(underPressure, {
    maxEventLoopDelay: options.maxEventLoopDelayMs,
    maxHeapUsedBytes: options.maxHeapUsedBytes,
    // under-pressure reads an interval in which the event loop took no sample at all as an
    // infinite delay, though it only shows a stall about as long as the interval: with 100 ms,
    // any stall past that (a GC pause, the cores busy with PostgreSQL) turned requests away, far
    // below the threshold. Sampled once per threshold, an empty interval is a delay past it.
    sampleInterval: options.maxEventLoopDelayMs > 0 ? options.maxEventLoopDelayMs : 1000,
    pressureHandler: async (request, _reply, type) => {
      if (isOperationalPath(request.url) || request.routeOptions.config.shedding === false) return;
      throw new HttpProblem(503, 'overloaded', 'Service overloaded', `The service is shedding load (${type}); try again shortly`, {
        headers: { 'retry-after': String(options.retryAfterSeconds) },
      });
    },
  });
};

export const loadSheddingPlugin = fp(loadShedding, { name: 'load-shedding' });
