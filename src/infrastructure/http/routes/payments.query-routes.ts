import type { FastifyPluginAsyncZod } from 'fastify-type-provider-zod';
import { z } from 'zod';
import { hasRole } from '../../../domain/shared/actor.js';
import { bookingsProjectionName } from '../../../projections/bookings/bookings.table.js';
import { findPayment } from '../../../projections/payments/payments.queries.js';
import { paymentsProjectionName } from '../../../projections/payments/payments.table.js';
import { requireAuth } from '../plugins/auth.plugin.js';
import { callerOf, consistencyHeaders, idParams, notFound, type QueryRoutesOptions } from '../query-context.js';

export const paymentSchema = z
  .object({
    id: z.string(),
    bookingId: z.string(),
    amount: z.number().int().describe('Minor units of `currency`'),
    currency: z.string(),
    status: z.enum(['initiated', 'succeeded', 'mismatched', 'failed', 'canceled']).describe('`mismatched`: the provider took another amount or currency; it is refunded and the booking stays payable'),
    failureReason: z.string().nullable(),
    mismatch: z.boolean().describe('The provider reported another amount or currency'),
    received: z
      .object({ amount: z.number().int().describe('Minor units of `currency`'), currency: z.string() })
      .nullable()
      .describe('What the provider captured instead, while `mismatched`; null otherwise'),
    refundedAmount: z
      .number()
      .int()
      .describe('Minor units of `currency` refunded: the refunds that succeeded in that currency. Refunds of a `received` in another currency are listed in `refunds` only'),
    refunds: z.array(
      z.object({
        refundId: z.string(),
        amount: z.number().int(),
        currency: z.string(),
        status: z.enum(['pending', 'succeeded', 'failed']),
        failureReason: z.string().nullable(),
        requestedAt: z.string(),
      }),
    ),
    initiatedAt: z.string(),
    version: z.number().int(),
  })
  .meta({ id: 'Payment' });

/** One payment with its refunds, for the payer, the listing's owner and admins. */
export const paymentQueryRoutes: FastifyPluginAsyncZod<QueryRoutesOptions> = async (app, { db, cachedRead }) => {
  app.get(
    '/:id',
    {
      onRequest: requireAuth,
      preHandler: cachedRead([paymentsProjectionName, bookingsProjectionName]),
      schema: { tags: ['payments'], security: [{ bearerAuth: [] }], summary: 'One payment with its refunds', headers: consistencyHeaders, params: idParams, response: { 200: paymentSchema } },
    },
    async (request) => {
      const payment = await findPayment(db, request.params.id);
      const actor = callerOf(request);
      const party = payment && (actor.id === payment.payerId || actor.id === payment.ownerId || hasRole(actor, 'ADMIN'));
      if (!payment || !party) throw notFound(`payment ${request.params.id}`);
      const { payerId: _payer, ownerId: _owner, ...view } = payment;
      return view;
    },
  );
};
