import type { Kysely } from 'kysely';
import type { FastifyPluginAsyncZod } from 'fastify-type-provider-zod';
import { z } from 'zod';
import { requestRebuild } from '../../../projections/runtime/projection-checkpoints.queries.js';
import { eraseSubject, type ErasureDeps } from '../../../application/privacy/erase-subject.use-case.js';
import { commandOptions } from '../command-context.js';
import { commandResultSchema, emptyBodySchema, ifMatchHeaderSchema, sendCommandResult } from '../command-result.js';
import { HttpProblem } from '../problem.js';
import { requireRoles } from '../plugins/auth.plugin.js';

const rebuildResponse = z
  .object({ name: z.string(), generation: z.number().int().describe('The fresh copy being built; it replaces the live one when it has caught up') })
  .meta({ id: 'RebuildAccepted' });

export type AdminRoutesOptions = {
  /** The read-model database and its read models, for rebuilds; without it there is no such route. */
  readonly projections?: { readonly db: Kysely<unknown>; readonly names: readonly string[] };
  /** What erasing a person takes; without it there is no such route. */
  readonly erasure?: ErasureDeps;
};

/**
 * Admin operations of the command API (API.md): rebuilding a read model without downtime, and
 * erasing a person's personal data.
 */
export const adminRoutes: FastifyPluginAsyncZod<AdminRoutesOptions> = async (app, { projections, erasure }) => {
  if (projections) rebuildRoute(app, projections.db, projections.names);
  if (erasure) {
    app.post(
      '/subjects/:userId/erase',
      {
        onRequest: requireRoles('ADMIN'),
        schema: {
          tags: ['admin'],
          security: [{ bearerAuth: [] }],
          summary: "Erase a person's personal data (crypto-shredding); their history stays and shows it as [erased]",
          params: z.object({ userId: z.string().min(1).max(200) }),
          headers: ifMatchHeaderSchema,
          body: emptyBodySchema,
          response: { 200: commandResultSchema },
        },
      },
      async (request, reply) => sendCommandResult(reply, await eraseSubject(erasure, request.params.userId, commandOptions(request)), 200),
    );
  }
};

function rebuildRoute(app: Parameters<FastifyPluginAsyncZod>[0], db: Kysely<unknown>, projectionNames: readonly string[]): void {
  app.post(
    '/projections/:name/rebuild',
    {
      onRequest: requireRoles('ADMIN'),
      schema: {
        tags: ['admin'],
        security: [{ bearerAuth: [] }],
        summary: 'Rebuild a read model from the first event beside the live one, then swap it in',
        params: z.object({ name: z.string().min(1).max(40) }),
        body: emptyBodySchema,
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
}
