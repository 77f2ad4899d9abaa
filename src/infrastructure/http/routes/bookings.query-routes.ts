import type { FastifyPluginAsyncZod } from 'fastify-type-provider-zod';
import { z } from 'zod';
import { hasRole } from '../../../domain/shared/actor.js';
import { bookingStatusSchema } from '../../../domain/booking/booking.status.js';
import { bookingsOfConsumer, bookingsOfOwner, findBooking } from '../../../projections/bookings/bookings.queries.js';
import { bookingsProjectionName } from '../../../projections/bookings/bookings.table.js';
import { paymentsProjectionName } from '../../../projections/payments/payments.table.js';
import { requireAuth, requireRoles } from '../plugins/auth.plugin.js';
import { paymentSchema } from './payments.query-routes.js';
import { callerOf, consistencyHeaders, cursorScope, idParams, notFound, paged, pageQuery, pageSchema, type QueryRoutesOptions } from '../query-context.js';

export const bookingSchema = z
  .object({
    id: z.string(),
    listingId: z.string(),
    consumerId: z.string(),
    ownerId: z.string(),
    startDate: z.string(),
    endDate: z.string().describe('Exclusive: the check-out day'),
    nights: z.number().int(),
    pricePerNight: z.number().int(),
    total: z.number().int().describe('Minor units of `currency`'),
    currency: z.string(),
    status: bookingStatusSchema,
    holdExpiresAt: z.string(),
    requestedAt: z.string(),
    paidAmount: z.number().int().nullable(),
    cancellation: z.object({ cancelledBy: z.string(), refundPercent: z.number().int(), refundAmount: z.number().int() }).nullable(),
    version: z.number().int(),
  })
  .meta({ id: 'Booking' });

const bookingDetailsSchema = bookingSchema.extend({ payment: paymentSchema.nullable().describe("The booking's latest payment") }).meta({ id: 'BookingDetails' });

const bookingsQuery = pageQuery.extend({ status: bookingStatusSchema.optional() });
const bookingSortKey = z.object({ requestedAt: z.iso.datetime(), bookingId: z.string().max(200) });

/** A consumer's bookings, an owner's, and one booking for its parties and admins. */
export const bookingQueryRoutes: FastifyPluginAsyncZod<QueryRoutesOptions> = async (app, { db, cursors, cachedRead }) => {
  const tags = ['bookings'];
  const security = [{ bearerAuth: [] }];
  const headers = consistencyHeaders;
  const consistent = cachedRead([bookingsProjectionName]);
  const withPayment = cachedRead([bookingsProjectionName, paymentsProjectionName]);

  app.get(
    '/me',
    {
      onRequest: requireRoles('CONSUMER'),
      preHandler: consistent,
      schema: { tags, security, summary: 'My bookings, newest first', headers, querystring: bookingsQuery, response: { 200: pageSchema(bookingSchema) } },
    },
    async (request) => {
      const { limit, cursor, ...filter } = request.query;
      const consumerId = callerOf(request).id;
      const scope = cursorScope('bookings-me', consumerId, filter);
      return paged(cursors, scope, { limit, cursor }, bookingSortKey, (page) => bookingsOfConsumer(db, consumerId, filter, page));
    },
  );

  app.get(
    '/owner',
    {
      onRequest: requireRoles('OWNER'),
      preHandler: consistent,
      schema: { tags, security, summary: 'Bookings of my listings, newest first', headers, querystring: bookingsQuery, response: { 200: pageSchema(bookingSchema) } },
    },
    async (request) => {
      const { limit, cursor, ...filter } = request.query;
      const ownerId = callerOf(request).id;
      const scope = cursorScope('bookings-owner', ownerId, filter);
      return paged(cursors, scope, { limit, cursor }, bookingSortKey, (page) => bookingsOfOwner(db, ownerId, filter, page));
    },
  );

  app.get(
    '/:id',
    {
      onRequest: requireAuth,
      preHandler: withPayment,
      schema: { tags, security, summary: 'One booking with its payment state (its consumer, the owner, admins)', headers, params: idParams, response: { 200: bookingDetailsSchema } },
    },
    async (request) => {
      const booking = await findBooking(db, request.params.id);
      const actor = callerOf(request);
      const party = booking && (actor.id === booking.consumerId || actor.id === booking.ownerId || hasRole(actor, 'ADMIN'));
      if (!booking || !party) throw notFound(`booking ${request.params.id}`);
      return booking;
    },
  );
};
