import type { FastifyPluginAsyncZod } from 'fastify-type-provider-zod';
import type { Kysely } from 'kysely';
import { z } from 'zod';
import { listCheckpointsWithLag, type CheckpointLag, type CheckpointView } from '../../../projections/runtime/projection-checkpoints.queries.js';
import { requireRoles } from '../plugins/auth.plugin.js';

/**
 * Counting stops here: it walks the events table's global-order index, one entry per event
 * behind, so a generation far behind (a rebuild, a stopped projector) costs at most this.
 */
const lagCountCap = 10_000;

const checkpointSchema = z
  .object({
    name: z.string(),
    generation: z.number().int(),
    version: z.number().int(),
    active: z.boolean(),
    status: z.enum(['running', 'rebuilding', 'failed', 'retired']),
    position: z.string().describe('Last position processed, as `Event-Position` gives it'),
    eventsProcessed: z.string().describe('A decimal integer'),
    lagEvents: z
      .number()
      .int()
      .nonnegative()
      .nullable()
      .describe(`Events in the log after \`position\`: 0 when caught up. Counted up to ${lagCountCap} (see \`lagEventsCapped\`). Null when the event log is not in the read-model database (EventStoreDB)`),
    lagEventsCapped: z.boolean().describe(`True when more than \`lagEvents\` events are behind: counting stopped at ${lagCountCap}`),
    lagMs: z
      .number()
      .int()
      .nonnegative()
      .nullable()
      .describe('0 when caught up; else how long ago the oldest event not yet processed (the first after `position`) was recorded. Null with `lagEvents`'),
    lastEventRecordedAt: z.string().nullable(),
    ageMs: z
      .number()
      .int()
      .nullable()
      .describe('How long ago the last processed event was recorded. Not the lag: it grows on a caught-up projection too; see `lagMs`'),
    updatedAt: z.string(),
    lastFailure: z
      .object({ at: z.string(), error: z.string(), eventPosition: z.string().nullable(), eventType: z.string().nullable(), eventId: z.string().nullable() })
      .nullable(),
    requestedBy: z.string().nullable().describe('Who asked for this generation: an actor id, or `cli:<os user>` for the rebuild command. Null when nobody did (a first copy, a new version\'s, or one from before requesters were recorded)'),
    requestId: z.string().nullable().describe('The request that asked for it, as in the logs; null from the command line'),
    requestedAt: z.string().nullable(),
    reason: z.string().nullable().describe('Why, as the requester gave it'),
  })
  .meta({ id: 'ProjectionCheckpoint' });

type CheckpointBody = z.infer<typeof checkpointSchema>;

function toBody(row: CheckpointView & { readonly lag: CheckpointLag | null }, at: number): CheckpointBody {
  const { lag, ...view } = row;
  const oldest = lag?.oldestUnprocessedAt;
  return {
    ...view,
    eventsProcessed: view.eventsProcessed.toString(),
    lagEvents: lag ? lag.events : null,
    lagEventsCapped: lag?.capped ?? false,
    // Clamped: the store's clock recorded the event, ours reads it; a skew must not show as negative.
    lagMs: lag ? (oldest ? Math.max(0, at - oldest.getTime()) : 0) : null,
    lastEventRecordedAt: view.lastEventRecordedAt?.toISOString() ?? null,
    ageMs: view.lastEventRecordedAt ? at - view.lastEventRecordedAt.getTime() : null,
    updatedAt: view.updatedAt.toISOString(),
    lastFailure: view.lastFailure && { ...view.lastFailure, at: view.lastFailure.at.toISOString() },
    requestedAt: view.requestedAt?.toISOString() ?? null,
  };
}

/**
 * Each projection generation's checkpoint and how far it is behind the log, as the checkpoints
 * and events tables have them (so any query instance can answer, not only the one running the
 * projector).
 */
export const adminQueryRoutes: FastifyPluginAsyncZod<{ readonly checkpoints: Kysely<unknown>; readonly now: () => Date }> = async (app, { checkpoints, now }) => {
  app.get(
    '/projections',
    {
      onRequest: requireRoles('ADMIN'),
      schema: { tags: ['admin'], security: [{ bearerAuth: [] }], summary: 'Projection checkpoints, lag and status', response: { 200: z.object({ items: z.array(checkpointSchema) }) } },
    },
    async () => {
      const rows = await listCheckpointsWithLag(checkpoints, lagCountCap);
      const at = now().getTime();
      return { items: rows.map((row) => toBody(row, at)) };
    },
  );
};
