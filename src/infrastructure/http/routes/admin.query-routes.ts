import type { FastifyPluginAsyncZod } from 'fastify-type-provider-zod';
import type { Kysely } from 'kysely';
import { z } from 'zod';
import { listCheckpoints } from '../../../projections/runtime/projection-checkpoints.queries.js';
import { requireRoles } from '../plugins/auth.plugin.js';

const checkpointSchema = z
  .object({
    name: z.string(),
    generation: z.number().int(),
    version: z.number().int(),
    active: z.boolean(),
    status: z.enum(['running', 'rebuilding', 'failed', 'retired']),
    position: z.string().describe('Last position processed, as `Event-Position` gives it'),
    eventsProcessed: z.string().describe('A decimal integer'),
    lastEventRecordedAt: z.string().nullable(),
    ageMs: z.number().int().nullable().describe('How long ago the last processed event was recorded'),
    updatedAt: z.string(),
    lastFailure: z
      .object({ at: z.string(), error: z.string(), eventPosition: z.string().nullable(), eventType: z.string().nullable(), eventId: z.string().nullable() })
      .nullable(),
  })
  .meta({ id: 'ProjectionCheckpoint' });

/**
 * Each projection generation's checkpoint, as the checkpoints table has it (so any query
 * instance can answer, not only the one running the projector).
 */
export const adminQueryRoutes: FastifyPluginAsyncZod<{ readonly checkpoints: Kysely<unknown>; readonly now: () => Date }> = async (app, { checkpoints, now }) => {
  app.get(
    '/projections',
    {
      preHandler: requireRoles('ADMIN'),
      schema: { tags: ['admin'], security: [{ bearerAuth: [] }], summary: 'Projection checkpoints and status', response: { 200: z.object({ items: z.array(checkpointSchema) }) } },
    },
    async () => {
      const at = now().getTime();
      const items = (await listCheckpoints(checkpoints)).map((row) => ({
        ...row,
        eventsProcessed: row.eventsProcessed.toString(),
        lastEventRecordedAt: row.lastEventRecordedAt?.toISOString() ?? null,
        ageMs: row.lastEventRecordedAt ? at - row.lastEventRecordedAt.getTime() : null,
        updatedAt: row.updatedAt.toISOString(),
        lastFailure: row.lastFailure && { ...row.lastFailure, at: row.lastFailure.at.toISOString() },
      }));
      return { items };
    },
  );
};
