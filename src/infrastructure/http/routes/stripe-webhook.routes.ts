import type { FastifyPluginAsync } from 'fastify';
import Stripe from 'stripe';
import { paymentProviderActor, recordProviderEvent, type ProviderEventDeps } from '../../../application/payments/provider-events.js';
import { toProviderEvents } from '../../stripe/stripe-webhook-events.js';
import { HttpProblem } from '../problem.js';

export type StripeWebhookOptions = ProviderEventDeps & {
  /** `whsec_…`; unset, no request can be verified, so every one is refused. */
  readonly webhookSecret: string | undefined;
  /** Requests per client address and minute, counted apart from every other route's. */
  readonly rateLimitMax: number;
};

function invalidSignature(detail: string): HttpProblem {
  return new HttpProblem(400, 'invalid-signature', 'Invalid signature', detail);
}

/**
 * `POST /v1/webhooks/stripe`. The signature covers the exact bytes Stripe sent, so this plugin
 * parses every body as a raw buffer (scoped to itself: the rest of the API keeps its JSON
 * parser). A verified event is recorded before the answer and nothing slow happens here: the
 * process manager does the rest from the log. Stripe's own event id makes redeliveries no-ops,
 * so the route takes no Idempotency-Key. A signed event of a shape we cannot read is kept as
 * unmatched ("malformed", naming the field) and answered 200, not 400: Stripe retries any non-2xx
 * for days and then disables the endpoint, while a retry brings the same bytes; the log keeps it
 * for reconciliation, where a 400 would only show in Stripe's dashboard.
 */
export const stripeWebhookRoutes: FastifyPluginAsync<StripeWebhookOptions> = async (app, options) => {
  app.removeAllContentTypeParsers();
  app.addContentTypeParser('*', { parseAs: 'buffer' }, (_request, body, done) => done(null, body));

  app.post(
    '/v1/webhooks/stripe',
    {
      // The signature guards this route, not the clients' per-IP budget (Stripe sends every event
      // from a few addresses) nor load shedding: a 429 or 503 makes Stripe retry on its own
      // schedule, minutes to hours later, and a payment recorded after its booking's hold lapsed
      // is refunded, not booked. What Stripe sends grows with our payments only; a budget of its
      // own still bounds a flood of unsigned bodies.
      config: { idempotency: false, rateLimit: { max: options.rateLimitMax, timeWindow: '1 minute' }, shedding: false },
      // Stripe's event bodies (a charge with its refunds) can outgrow the API's 64 KiB for requests.
      bodyLimit: 512 * 1024,
      schema: { tags: ['payments'], summary: 'Stripe events (signature-verified, no JWT)' },
    },
    async (request, reply) => {
      const signature = request.headers['stripe-signature'];
      if (typeof signature !== 'string' || signature === '') throw invalidSignature('The Stripe-Signature header is missing');
      if (!Buffer.isBuffer(request.body) || options.webhookSecret === undefined) throw invalidSignature('The request cannot be verified');
      let event: Stripe.Event;
      try {
        event = Stripe.webhooks.constructEvent(request.body, signature, options.webhookSecret);
      } catch {
        throw invalidSignature('The signature does not match the body, or is too old');
      }
      const context = {
        actor: paymentProviderActor,
        requestId: request.id,
        correlationId: request.id,
        // A signed event without an id is malformed, not unsigned: kept under the request's.
        causationId: typeof event.id === 'string' && event.id !== '' ? event.id : request.id,
        ip: request.ip,
      };
      for (const providerEvent of toProviderEvents(event)) await recordProviderEvent(options, providerEvent, context);
      return reply.code(200).send({ received: true });
    },
  );
};
