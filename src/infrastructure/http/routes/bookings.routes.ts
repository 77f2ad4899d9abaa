import type { FastifyPluginAsyncZod } from 'fastify-type-provider-zod';
import { z } from 'zod';
import { cancelBooking, completeBooking, requestBooking } from '../../../application/bookings/booking.use-cases.js';
import type { CommandSide } from '../../../application/command-handlers.js';
import { maxNights } from '../../../domain/listing-calendar/stay-range.rules.js';
import { requestDateSchema } from '../../../domain/shared/calendar-date.js';
import { nights } from '../../../domain/shared/date-range.js';
import { commandOptions } from '../command-context.js';
import { commandResultSchema, emptyBodySchema, ifMatchHeaderSchema, noIfMatchHeaderSchema, sendCommandResult } from '../command-result.js';
import { requireAuth, requireRoles } from '../plugins/auth.plugin.js';

const requestBookingBody = z
  .object({
    listingId: z.uuid(),
    startDate: requestDateSchema.describe('First night, YYYY-MM-DD'),
    endDate: requestDateSchema.describe('Check-out day, YYYY-MM-DD (exclusive)'),
  })
  .strict()
  // What the request alone shows wrong is a 400 naming the field; the calendar's rules that
  // depend on state (taken, in the past) stay 409s.
  .refine(({ startDate, endDate }) => endDate > startDate, { message: 'must be after startDate', path: ['endDate'] })
  .refine(({ startDate, endDate }) => endDate <= startDate || nights({ startDate, endDate }) <= maxNights, {
    message: `a stay is at most ${maxNights} nights`,
    path: ['endDate'],
  })
  .meta({ id: 'RequestBookingRequest' });

export const reasonBody = z.object({ reason: z.string().trim().min(1).max(1000) }).strict().meta({ id: 'CancelRequest' });

const params = z.object({ id: z.uuid() });
const security = [{ bearerAuth: [] }];
const tags = ['bookings'];

/** Bookings (API.md, command API); who may act on which booking is the application's call. */
export const bookingRoutes: FastifyPluginAsyncZod<{ readonly side: CommandSide }> = async (app, { side }) => {
  app.post(
    '/',
    {
      onRequest: requireRoles('CONSUMER'),
      schema: { tags, security, summary: 'Request a booking; holds the dates', headers: noIfMatchHeaderSchema, body: requestBookingBody, response: { 201: commandResultSchema } },
    },
    async (request, reply) => sendCommandResult(reply, await requestBooking(side, request.body, commandOptions(request)), 201),
  );

  app.post(
    '/:id/cancel',
    {
      onRequest: requireAuth,
      schema: { tags, security, summary: 'Cancel, refunding per policy', params, headers: ifMatchHeaderSchema, body: reasonBody, response: { 200: commandResultSchema } },
    },
    async (request, reply) => sendCommandResult(reply, await cancelBooking(side, request.params.id, request.body, commandOptions(request)), 200),
  );

  app.post(
    '/:id/complete',
    {
      onRequest: requireRoles('OWNER', 'ADMIN'),
      schema: { tags, security, summary: 'Mark the stay as completed', params, headers: ifMatchHeaderSchema, body: emptyBodySchema, response: { 200: commandResultSchema } },
    },
    async (request, reply) => sendCommandResult(reply, await completeBooking(side, request.params.id, commandOptions(request)), 200),
  );
};
