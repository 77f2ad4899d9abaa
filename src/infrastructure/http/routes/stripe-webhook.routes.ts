import type { FastifyBaseLogger, FastifyPluginAsync } from 'fastify';
import Stripe from 'stripe';
import { z } from 'zod';
import type { CommandContext } from '../../../application/metadata.js';
import {
  intentOutcomeLearned,
  paymentProviderActor,
  recordProviderEvent,
  type PaymentProviderEvent,
  type ProviderEventDeps,
} from '../../../application/payments/provider-events.js';
import { ProviderRefusedError, ProviderUnavailableError, quickLook, type PaymentGateway } from '../../../application/ports/payment-gateway.js';
import { intentNamedBy, isMalformed, toProviderEvents } from '../../stripe/stripe-webhook-events.js';
import { HttpProblem } from '../problem.js';

/** What became of one signed event: translated and recorded, kept unmatched, kept as malformed, or of a type we do not follow. */
export type WebhookOutcome = 'recorded' | 'unmatched' | 'malformed' | 'ignored';

export type StripeWebhookOptions = ProviderEventDeps & {
  /** `whsec_…`; unset, no request can be verified, so every one is refused. */
  readonly webhookSecret: string | undefined;
  /** Requests per client address and minute, counted apart from every other route's. */
  readonly rateLimitMax: number;
  /** Asked about the intent of a malformed payment-intent event; unset, such an event is only kept. */
  readonly gateway?: PaymentGateway;
  /** Told of each signed event's outcome, e.g. to count them in metrics. */
  readonly observeOutcome?: (outcome: WebhookOutcome) => void;
};

function invalidSignature(detail: string): HttpProblem {
  return new HttpProblem(400, 'invalid-signature', 'Invalid signature', detail);
}

function outcomeOf(translated: readonly PaymentProviderEvent[]): WebhookOutcome {
  if (translated.some(isMalformed)) return 'malformed';
  if (translated.some((event) => event.kind === 'unmatched')) return 'unmatched';
  return translated.length === 0 ? 'ignored' : 'recorded';
}

/**
 * A malformed event is kept as unmatched, and logged at error: someone must read it. Of a payment
 * intent's whose ids are readable, the provider is asked what the event would have told (one
 * look, its outcome recorded as `intentOutcomeLearned` makes it); a look that fails leaves the
 * outcome to whoever asks next (the payment start, the expiry, the payment process).
 */
async function afterMalformed(
  log: FastifyBaseLogger,
  options: StripeWebhookOptions,
  event: Stripe.Event,
  translated: readonly PaymentProviderEvent[],
  context: CommandContext,
): Promise<void> {
  for (const { eventId, eventType, objectId, reason } of translated.filter(isMalformed)) {
    log.error({ eventId, eventType, objectId, reason }, 'a signed Stripe event of a shape we do not read, kept as unmatched');
  }
  const named = intentNamedBy(event);
  if (!named || !options.gateway) return;
  try {
    const intent = await options.gateway.retrieveIntent(named.intentId, quickLook);
    const learned = intentOutcomeLearned(named.paymentId, named.intentId, intent);
    if (learned) await recordProviderEvent(options, learned, context);
  } catch (error) {
    if (!(error instanceof ProviderUnavailableError || error instanceof ProviderRefusedError)) throw error;
    log.warn({ err: error, eventId: event.id, intentId: named.intentId }, 'could not ask Stripe about the intent of a malformed event');
  }
}

/**
 * `POST /v1/webhooks/stripe`. The signature covers the exact bytes Stripe sent, so this plugin
 * parses every body as a raw buffer (scoped to itself: the rest of the API keeps its JSON
 * parser). A verified event is recorded before the answer and nothing slow happens here (but for
 * one look of at most 3 s at Stripe for a malformed payment-intent event, `afterMalformed`): the
 * process manager does the rest from the log. Stripe's own event id makes redeliveries no-ops,
 * so the route takes no Idempotency-Key. A signed event of a shape we cannot read is kept as
 * unmatched ("malformed", naming the field), logged at error, counted, and answered 200, not 400:
 * Stripe retries any non-2xx for days and then disables the endpoint, while a retry brings the
 * same bytes; the log keeps it for reconciliation, where a 400 would only show in Stripe's
 * dashboard.
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
      schema: {
        tags: ['payments'],
        summary: 'Stripe events (signature-verified, no JWT)',
        // An operator may give Stripe an endpoint URL with parameters of their own; unread, and not refused as a command's would be.
        querystring: z.looseObject({}),
      },
    },
    async (request, reply) => {
      const signature = request.headers['stripe-signature'];
      if (typeof signature !== 'string' || signature === '') throw invalidSignature('The Stripe-Signature header is missing');
      if (!Buffer.isBuffer(request.body) || options.webhookSecret === undefined) throw invalidSignature('The request cannot be verified');
      let signed: unknown;
      try {
        signed = Stripe.webhooks.constructEvent(request.body, signature, options.webhookSecret);
      } catch {
        throw invalidSignature('The signature does not match the body, or is too old');
      }
      // The SDK checks the signature, not the shape: signed JSON that is no object at all (`null`)
      // is malformed as `{}` is, and kept as such, not a 500 that Stripe would send again for days.
      const event = (typeof signed === 'object' && signed !== null ? signed : {}) as Stripe.Event;
      const context = {
        actor: paymentProviderActor,
        requestId: request.id,
        correlationId: request.id,
        // A signed event without an id is malformed, not unsigned: kept under the request's.
        causationId: typeof event.id === 'string' && event.id !== '' ? event.id : request.id,
        ip: request.ip,
      };
      const translated = toProviderEvents(event);
      for (const providerEvent of translated) await recordProviderEvent(options, providerEvent, context);
      options.observeOutcome?.(outcomeOf(translated));
      if (translated.some(isMalformed)) await afterMalformed(request.log, options, event, translated, context);
      return reply.code(200).send({ received: true });
    },
  );
};
