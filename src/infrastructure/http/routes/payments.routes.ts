import type { FastifyPluginAsync } from 'fastify';
import type { FastifyPluginAsyncZod } from 'fastify-type-provider-zod';
import { z } from 'zod';
import { refundPayment, startPayment, type PaymentSide } from '../../../application/payments/payment.use-cases.js';
import type { CommandSide } from '../../../application/command-handlers.js';
import type { EventStore } from '../../../application/ports/event-store.js';
import type { PaymentGateway } from '../../../application/ports/payment-gateway.js';
import { formatPosition } from '../../../application/ports/position.js';
import { commandOptions } from '../command-context.js';
import { commandResultSchema, emptyBodySchema, ifMatchHeaderSchema, sendCommandResult } from '../command-result.js';
import { requireRoles } from '../plugins/auth.plugin.js';
import { stripeWebhookRoutes, type WebhookOutcome } from './stripe-webhook.routes.js';

const startedPayment = z
  .object({
    paymentId: z.string(),
    clientSecret: z.string().describe("Confirm the payment with it in the browser (Stripe.js); never log it"),
    status: z.enum(['initiated', 'failed']).describe('failed: the last try failed; the same intent takes another card'),
    position: z.string().describe('Opaque, totally ordered; send it as Consistency-Position to the query API'),
  })
  .meta({ id: 'StartedPayment' });

// No body at all is a full refund, as `{}` is: the amount is the only thing a caller could say.
const refundBody = z
  .object({ amount: z.number().int().positive().max(Number.MAX_SAFE_INTEGER).optional().describe('Minor units; unset: all that is left') })
  .strict()
  .nullish()
  .describe('Optional; without it, or without an amount, all that is left is refunded')
  .meta({ id: 'RefundRequest' });

const params = z.object({ id: z.uuid() });
const security = [{ bearerAuth: [] }];

/** Starting a booking's payment, and refunds (API.md, command API). */
export const paymentRoutes: FastifyPluginAsyncZod<{ readonly payments: PaymentSide }> = async (app, { payments }) => {
  app.post(
    '/v1/bookings/:id/payments',
    {
      onRequest: requireRoles('CONSUMER'),
      schema: {
        tags: ['payments'],
        security,
        summary: "Start paying a held booking: a new intent, or the booking's live one (200)",
        params,
        // The booking's version: the aggregate the path names, checked before an intent is made.
        headers: ifMatchHeaderSchema,
        body: emptyBodySchema,
        response: { 201: startedPayment, 200: startedPayment },
      },
    },
    async (request, reply) => {
      const started = await startPayment(payments, request.params.id, commandOptions(request));
      const position = formatPosition(started.position);
      const { paymentId, clientSecret, status } = started;
      return reply.code(started.created ? 201 : 200).header('event-position', position).send({ paymentId, clientSecret, status, position });
    },
  );

  app.post(
    '/v1/payments/:id/refund',
    {
      onRequest: requireRoles('OWNER', 'ADMIN'),
      schema: {
        tags: ['payments'],
        security,
        summary: 'Refund all or part of a payment; the outcome follows as RefundSucceeded or RefundFailed',
        description: 'The body is optional: without one, or without an amount, all that is left is refunded.',
        params,
        headers: ifMatchHeaderSchema,
        body: refundBody,
        response: { 201: commandResultSchema },
      },
    },
    async (request, reply) => sendCommandResult(reply, await refundPayment(payments.side, request.params.id, request.body ?? {}, commandOptions(request)), 201),
  );
};

/**
 * The webhook's budget per client address and minute, of its own: ten times a client's, and
 * never below 6,000 (100 a second), far above what Stripe sends from one address for this
 * service, yet a bound on a flood of unsigned bodies, each one HMAC.
 */
const webhookRateLimit = (rateLimitMax: number): number => Math.max(6_000, 10 * rateLimitMax);

/** What the command API needs for payments, beyond its command side. */
export type PaymentApiDeps = {
  readonly gateway: PaymentGateway;
  /** For provider events that match no payment, kept for reconciliation. */
  readonly eventStore: EventStore;
  readonly webhookSecret: string | undefined;
  /** Told what became of each signed Stripe event (`webhookMetrics`). */
  readonly observeWebhook?: (outcome: WebhookOutcome) => void;
};

/** The payment routes and the Stripe webhook, each plugin in its own scope (the webhook parses raw bodies). */
export const paymentApi: FastifyPluginAsync<PaymentApiDeps & { readonly side: CommandSide; readonly rateLimitMax: number }> = async (app, deps) => {
  const payments: PaymentSide = { side: deps.side, eventStore: deps.eventStore, gateway: deps.gateway };
  await app.register(paymentRoutes, { payments });
  await app.register(stripeWebhookRoutes, {
    side: deps.side,
    eventStore: deps.eventStore,
    webhookSecret: deps.webhookSecret,
    rateLimitMax: webhookRateLimit(deps.rateLimitMax),
    gateway: deps.gateway,
    ...(deps.observeWebhook ? { observeOutcome: deps.observeWebhook } : {}),
  });
};
