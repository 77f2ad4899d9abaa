import type { FastifyPluginAsyncZod } from 'fastify-type-provider-zod';
import { z } from 'zod';
import { roleSchema } from '../../../application/metadata.js';
import { findUserProfile } from '../../../projections/users/users.queries.js';
import { usersProjectionName } from '../../../projections/users/users.table.js';
import { requireAuth } from '../plugins/auth.plugin.js';
import { callerOf, consistencyHeaders, notFound, type QueryRoutesOptions } from '../query-context.js';

const profileSchema = z
  .object({ id: z.string(), email: z.string(), name: z.string(), roles: z.array(roleSchema), registeredAt: z.string() })
  .meta({ id: 'UserProfile' });

/** The caller's own profile and roles. */
export const userQueryRoutes: FastifyPluginAsyncZod<QueryRoutesOptions> = async (app, { db, consistentWith }) => {
  app.get(
    '/me',
    {
      onRequest: requireAuth,
      preHandler: consistentWith([usersProjectionName]),
      schema: { tags: ['users'], security: [{ bearerAuth: [] }], summary: 'My profile and roles', headers: consistencyHeaders, response: { 200: profileSchema } },
    },
    async (request) => {
      const profile = await findUserProfile(db, callerOf(request).id);
      if (!profile) throw notFound('profile for this user');
      return profile;
    },
  );
};
