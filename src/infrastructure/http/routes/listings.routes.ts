import type { FastifyPluginAsyncZod } from 'fastify-type-provider-zod';
import { z } from 'zod';
import type { CommandSide } from '../../../application/command-handlers.js';
import { createListing, setListingActive, updateListing } from '../../../application/listings/listing.use-cases.js';
import { submitReview } from '../../../application/reviews/review.use-cases.js';
import { newListingDetailsSchema, listingPriceSchema } from '../../../domain/listing/listing.events.js';
import { newCommentSchema } from '../../../domain/review/review.commands.js';
import { ratingSchema } from '../../../domain/review/review.events.js';
import { knownCurrencySchema } from '../../../domain/shared/money.js';
import { commandOptions } from '../command-context.js';
import { commandResultSchema, emptyBodySchema, ifMatchHeaderSchema, noIfMatchHeaderSchema, sendCommandResult } from '../command-result.js';
import { requireRoles } from '../plugins/auth.plugin.js';

/** The price as a request may set it: in a currency someone can pay in. */
const requestPriceSchema = listingPriceSchema.extend({ currency: knownCurrencySchema });

const createListingBody = newListingDetailsSchema
  .extend({
    timeZone: newListingDetailsSchema.shape.timeZone.optional(),
    ...requestPriceSchema.shape,
    ownerId: z.uuid().optional().describe("Admins only: the owner (a user with the OWNER role) whose listing this is; left out, the caller's own"),
  })
  .strict()
  .meta({ id: 'CreateListingRequest' });

const updateListingBody = newListingDetailsSchema
  .extend(requestPriceSchema.shape)
  .partial()
  .strict()
  .refine((body) => Object.keys(body).length > 0, 'name at least one field to change')
  .meta({ id: 'UpdateListingRequest' });

const reviewBody = z.object({ bookingId: z.uuid(), rating: ratingSchema, comment: newCommentSchema }).strict().meta({ id: 'ReviewRequest' });

const params = z.object({ id: z.uuid() });
const security = [{ bearerAuth: [] }];
const tags = ['listings'];

/** Listings and their reviews (API.md, command API). */
export const listingRoutes: FastifyPluginAsyncZod<{ readonly side: CommandSide }> = async (app, { side }) => {
  const owners = requireRoles('OWNER', 'ADMIN');

  app.post(
    '/',
    { onRequest: owners, schema: { tags, security, summary: 'Create a listing', headers: noIfMatchHeaderSchema, body: createListingBody, response: { 201: commandResultSchema } } },
    async (request, reply) => sendCommandResult(reply, await createListing(side, request.body, commandOptions(request)), 201),
  );

  app.post(
    '/:id/update',
    {
      onRequest: owners,
      schema: { tags, security, summary: 'Change details or price', params, headers: ifMatchHeaderSchema, body: updateListingBody, response: { 200: commandResultSchema } },
    },
    async (request, reply) => sendCommandResult(reply, await updateListing(side, request.params.id, request.body, commandOptions(request)), 200),
  );

  for (const [action, active] of [['deactivate', false], ['reactivate', true]] as const) {
    app.post(
      `/:id/${action}`,
      { onRequest: owners, schema: { tags, security, summary: `${action} a listing`, params, headers: ifMatchHeaderSchema, body: emptyBodySchema, response: { 200: commandResultSchema } } },
      async (request, reply) => sendCommandResult(reply, await setListingActive(side, request.params.id, active, commandOptions(request)), 200),
    );
  }

  app.post(
    '/:id/reviews',
    {
      onRequest: requireRoles('CONSUMER'),
      schema: { tags, security, summary: 'Review a completed stay', params, headers: noIfMatchHeaderSchema, body: reviewBody, response: { 201: commandResultSchema } },
    },
    async (request, reply) => sendCommandResult(reply, await submitReview(side, request.params.id, request.body, commandOptions(request)), 201),
  );
};
