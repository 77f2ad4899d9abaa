import type { Kysely } from 'kysely';
import type { FastifyPluginAsyncZod } from 'fastify-type-provider-zod';
import { z } from 'zod';
import type { IdentityTables } from '../../identity/identity.tables.js';
import { requireRoles } from '../plugins/auth.plugin.js';
import { inTimeOrder, inTimeOrderIssue, rangeBound, timeRange } from '../range-bound.js';
import { callerOf, cursorScope, paged, pageQuery, pageSchema, type CursorCodec } from '../query-context.js';

const securityEventSchema = z
  .object({
    id: z.string(),
    occurredAt: z.string(),
    type: z.string().describe('login_failed, login_while_locked, account_locked, refresh_token_reused, …'),
    userId: z.string().nullable(),
    requestId: z.string(),
    ip: z.string().nullable(),
    userAgent: z.string().nullable(),
    details: z.record(z.string(), z.unknown()),
  })
  .meta({ id: 'SecurityEvent' });

const query = pageQuery.extend({ userId: z.string().min(1).max(200).optional(), ...timeRange }).refine(inTimeOrder, inTimeOrderIssue);

/** `GET /v1/audit/security-events`: failed logins, lockouts, refresh-token reuse (AUDITOR, ADMIN). */
export const securityEventRoutes: FastifyPluginAsyncZod<{ readonly db: Kysely<IdentityTables>; readonly cursors: CursorCodec }> = async (
  app,
  { db, cursors },
) => {
  app.get(
    '/security-events',
    {
      onRequest: requireRoles('AUDITOR', 'ADMIN'),
      schema: {
        tags: ['audit'],
        security: [{ bearerAuth: [] }],
        summary: 'Security events of the identity service, oldest first',
        querystring: query,
        response: { 200: pageSchema(securityEventSchema) },
      },
    },
    async (request) => {
      const { userId, from, to } = request.query;
      const scope = cursorScope('audit-security-events', callerOf(request).id, { userId, from, to });
      return paged(cursors, scope, request.query, z.string().regex(/^\d{1,19}$/), async ({ limit, after }) => {
        let select = db.selectFrom('security_events').selectAll().orderBy('id').limit(limit + 1);
        if (userId !== undefined) select = select.where('user_id', '=', userId);
        const since = rangeBound(from);
        const until = rangeBound(to);
        if (since !== undefined) select = select.where('occurred_at', '>=', since);
        if (until !== undefined) select = select.where('occurred_at', '<', until);
        if (after !== undefined) select = select.where('id', '>', after);
        const rows = await select.execute();
        const items = rows.slice(0, limit).map((row) => ({
          id: String(row.id),
          occurredAt: row.occurred_at.toISOString(),
          type: row.type,
          userId: row.user_id,
          requestId: row.request_id,
          ip: row.ip,
          userAgent: row.user_agent,
          details: row.details,
        }));
        const last = items.at(-1);
        return { items, next: rows.length > limit && last ? last.id : null };
      });
    },
  );
};
