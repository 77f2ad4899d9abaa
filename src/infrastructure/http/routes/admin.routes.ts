import type { Kysely } from 'kysely';
import type { FastifyPluginAsyncZod } from 'fastify-type-provider-zod';
import { z } from 'zod';
import { requestRebuild } from '../../../projections/runtime/projection-checkpoints.queries.js';
import { HttpProblem } from '../problem.js';
import { requireRoles } from '../plugins/auth.plugin.js';

const rebuildResponse = z
  .object({ name: z.string(), generation: z.number().int().describe('The fresh copy being built; it replaces the live one when it has caught up') })
  .meta({ id: 'RebuildAccepted' });

/** Admin operations of the command API (API.md): rebuilding a read model without downtime. */
export const adminRoutes: FastifyPluginAsyncZod<{ readonly db: Kysely<unknown>; readonly projectionNames: readonly string[] }> = async (
  app,
  { db, projectionNames },
) => {
  app.post(
    '/projections/:name/rebuild',
    {
      preHandler: requireRoles('ADMIN'),
      schema: {
        tags: ['admin'],
        security: [{ bearerAuth: [] }],
        summary: 'Rebuild a read model from the first event beside the live one, then swap it in',
        params: z.object({ name: z.string().min(1).max(40) }),
        response: { 202: rebuildResponse },
      },
    },
    async (request, reply) => {
      const { name } = request.params;
      if (!projectionNames.includes(name)) throw new HttpProblem(404, 'not-found', 'Not found', `No read model is called ${name}`);
      const { generation } = await requestRebuild(db, name).catch((error: unknown) => {
        // No projector has built a first copy yet: there is nothing to rebuild beside.
        if (error instanceof RangeError) throw new HttpProblem(409, 'projection-not-started', 'Projection not started', error.message);
        throw error;
      });
      return reply.code(202).send({ name, generation });
    },
  );
};
