import type { FastifyPluginAsync } from 'fastify';
import fp from 'fastify-plugin';
import type { ZodTypeProvider } from 'fastify-type-provider-zod';
import type pg from 'pg';
import { z } from 'zod';

/** Something the API needs in order to serve: checked on every `GET /health/ready`. */
export type ReadinessProbe = {
  /** Names the dependency in the answer, e.g. `database`. */
  readonly name: string;
  /** Resolves when the dependency answers; rejects (or takes too long) when it does not. */
  check(): Promise<void>;
};

export type HealthOptions = { readonly probes: readonly ReadinessProbe[]; readonly timeoutMs?: number };

export const postgresProbe = (pool: pg.Pool, name = 'database'): ReadinessProbe => ({
  name,
  check: async () => {
    await pool.query('SELECT 1');
  },
});

const readinessSchema = z.object({
  status: z.enum(['ready', 'unavailable']),
  checks: z.record(z.string(), z.string()).describe('"ok", or why the dependency is not usable'),
});

class ProbeTimeout extends Error {}

/** A probe's refusal whose message is fit for the answer itself: what is wrong, without hosts or SQL. */
export class NotReady extends Error {
  override readonly name = 'NotReady';
}

function reasonOf(error: unknown): string {
  if (error instanceof NotReady) return error.message;
  return error instanceof ProbeTimeout ? 'timed out' : 'unreachable';
}

function withTimeout(probe: ReadinessProbe, timeoutMs: number): Promise<void> {
  let timer: NodeJS.Timeout | undefined;
  const timeout = new Promise<never>((_resolve, reject) => {
    timer = setTimeout(() => reject(new ProbeTimeout(`timed out after ${timeoutMs} ms`)), timeoutMs);
  });
  return Promise.race([probe.check(), timeout]).finally(() => clearTimeout(timer));
}

/**
 * `live`: the process runs (restart it if not). `ready`: its dependencies answer (route traffic
 * to it only then). The reason a probe failed is reported generically and logged in full,
 * because an error message may carry hosts or SQL.
 */
const health: FastifyPluginAsync<HealthOptions> = async (fastify, options) => {
  const app = fastify.withTypeProvider<ZodTypeProvider>();
  const timeoutMs = options.timeoutMs ?? 2000;
  const config = { rateLimit: false as const };

  app.get('/health/live', { config, schema: { tags: ['health'], response: { 200: z.object({ status: z.literal('ok') }) } } }, async () => ({
    status: 'ok' as const,
  }));

  app.get('/health/ready', { config, schema: { tags: ['health'], response: { 200: readinessSchema, 503: readinessSchema } } }, async (request, reply) => {
    if (fastify.draining) return reply.code(503).send({ status: 'unavailable', checks: { shutdown: 'stopping' } });
    const results = await Promise.allSettled(options.probes.map((probe) => withTimeout(probe, timeoutMs)));
    const checks: Record<string, string> = {};
    results.forEach((result, index) => {
      const name = options.probes[index]?.name ?? String(index);
      if (result.status === 'rejected') request.log.warn({ err: result.reason, probe: name }, 'readiness probe failed');
      checks[name] = result.status === 'fulfilled' ? 'ok' : reasonOf(result.reason);
    });
    const ready = results.every((result) => result.status === 'fulfilled');
    return reply.code(ready ? 200 : 503).send({ status: ready ? 'ready' : 'unavailable', checks });
  });
};

export const healthPlugin = fp(health, { name: 'health' });
