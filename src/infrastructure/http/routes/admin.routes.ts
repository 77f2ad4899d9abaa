import type { Kysely } from 'kysely';
import type { FastifyPluginAsyncZod } from 'fastify-type-provider-zod';
import { z } from 'zod';
import { requestRebuild } from '../../../projections/runtime/projection-checkpoints.queries.js';
import { eraseSubject, type ErasureDeps } from '../../../application/privacy/erase-subject.use-case.js';
import type { CommandSide } from '../../../application/command-handlers.js';
import { grantRoles, revokeRoles } from '../../../application/users/user-roles.use-cases.js';
import { adminReasonSchema } from '../../../domain/user/user.commands.js';
import { userRoleSchema } from '../../../domain/user/user.events.js';
import { commandContext, commandOptions } from '../command-context.js';
import { commandResultSchema, ifMatchHeaderSchema, sendCommandResult } from '../command-result.js';
import { HttpProblem } from '../problem.js';
import { requireRoles } from '../plugins/auth.plugin.js';

const rebuildResponse = z
  .object({ name: z.string(), generation: z.number().int().describe('The fresh copy being built; it replaces the live one when it has caught up') })
  .meta({ id: 'RebuildAccepted' });

/**
 * A body with only an optional `reason` (`why` describes it), for a command that took no body
 * before: nullish, so no body, an empty one and {} are still accepted.
 */
const optionalReasonBody = (id: string, why: string) =>
  z.object({ reason: adminReasonSchema.optional().describe(why) }).strict().nullish().meta({ id });

const rebuildRequest = optionalReasonBody('RebuildRequest', 'Why, for auditors: kept on the new generation');

const eraseRequest = optionalReasonBody(
  'EraseSubjectRequest',
  'The request this erasure answers, as a reference (a ticket number): never personal data of the person, for it is kept in the clear for good',
);

const roleChangeRequest = z
  .object({
    roles: z
      .array(userRoleSchema)
      .min(1)
      .refine((roles) => new Set(roles).size === roles.length, 'must not name a role twice'),
    reason: adminReasonSchema.describe('Why, for auditors (a ticket number, a few words); kept in the event, sealed as personal data of the user'),
  })
  .strict()
  .meta({ id: 'RoleChangeRequest' });

export type AdminRoutesOptions = {
  /** The read-model database and its read models, for rebuilds; without it there is no such route. */
  readonly projections?: { readonly db: Kysely<unknown>; readonly names: readonly string[] };
  /** What erasing a person takes; without it there is no such route. */
  readonly erasure?: ErasureDeps;
  /** The command handlers, for granting and revoking roles; without them there are no such routes. */
  readonly side?: CommandSide;
};

/**
 * Admin operations of the command API (API.md): rebuilding a read model without downtime, and
 * erasing a person's personal data; beyond API.md, granting and revoking roles, so that an admin
 * can be cut off without an erasure, which nothing undoes.
 */
export const adminRoutes: FastifyPluginAsyncZod<AdminRoutesOptions> = async (app, { projections, erasure, side }) => {
  if (projections) rebuildRoute(app, projections.db, projections.names);
  if (side) roleRoutes(app, side);
  if (erasure) {
    app.post(
      '/subjects/:userId/erase',
      {
        onRequest: requireRoles('ADMIN'),
        schema: {
          tags: ['admin'],
          security: [{ bearerAuth: [] }],
          summary: "Erase a person's personal data (crypto-shredding); their history stays and shows it as [erased]",
          description:
            'Final: nothing undoes it (to stop an admin, revoke ADMIN instead). An admin cannot erase themselves (409 cannot-erase-self), ' +
            'and only an admin who is an auditor too may erase an AUDITOR (403). The optional `reason` is recorded in `SubjectErased` ' +
            'after the key is destroyed, in the clear and for good: give a request reference (a ticket number), never personal data.',
          params: z.object({ userId: z.string().min(1).max(200) }),
          headers: ifMatchHeaderSchema,
          body: eraseRequest,
          response: { 200: commandResultSchema },
        },
      },
      async (request, reply) => {
        const result = await eraseSubject(erasure, request.params.userId, commandOptions(request), { reason: request.body?.reason });
        return sendCommandResult(reply, result, 200);
      },
    );
  }
};

const roleChanges = {
  grant: {
    run: grantRoles,
    summary: 'Grant roles to a user',
    description:
      'Adds the roles the user does not hold yet (one already held changes nothing); their tokens name them once refreshed. ' +
      'AUDITOR only from an admin who is an auditor too (403). 404 for a user who does not exist or was erased. ' +
      '`reason` is recorded in `RolesGranted`.',
  },
  revoke: {
    run: revokeRoles,
    summary: 'Revoke roles from a user',
    description:
      'Takes roles away, reversibly (unlike an erasure): a token naming ADMIN or AUDITOR loses it on its next request to the command API, ' +
      'and on the query API once the users read model has it (moments later). An admin cannot revoke their own ADMIN ' +
      '(409 cannot-revoke-own-admin). 404 for a user who does not exist or was erased. `reason` is recorded in `RolesRevoked`.',
  },
} as const;

function roleRoutes(app: Parameters<FastifyPluginAsyncZod>[0], side: CommandSide): void {
  for (const [change, { run, summary, description }] of Object.entries(roleChanges)) {
    app.post(
      `/users/:id/roles/${change}`,
      {
        onRequest: requireRoles('ADMIN'),
        schema: {
          tags: ['admin'],
          security: [{ bearerAuth: [] }],
          summary,
          description,
          params: z.object({ id: z.string().min(1).max(200) }),
          headers: ifMatchHeaderSchema,
          body: roleChangeRequest,
          response: { 200: commandResultSchema },
        },
      },
      async (request, reply) => sendCommandResult(reply, await run(side, request.params.id, request.body, commandOptions(request)), 200),
    );
  }
}

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
        body: rebuildRequest,
        response: { 202: rebuildResponse },
      },
    },
    async (request, reply) => {
      const { name } = request.params;
      if (!projectionNames.includes(name)) throw new HttpProblem(404, 'not-found', 'Not found', `No read model is called ${name}`);
      const { actor, requestId } = commandContext(request);
      const asked = { requestedBy: actor.id, requestId, reason: request.body?.reason ?? null };
      const { generation } = await requestRebuild(db, name, undefined, asked).catch((error: unknown) => {
        // No projector has built a first copy yet: there is nothing to rebuild beside.
        if (error instanceof RangeError) throw new HttpProblem(409, 'projection-not-started', 'Projection not started', error.message);
        throw error;
      });
      // Ids only: the reason is free text, kept in the database rather than copied into logs.
      request.log.info({ actorId: actor.id, projection: name, generation }, 'read model rebuild requested');
      return reply.code(202).send({ name, generation });
    },
  );
}
