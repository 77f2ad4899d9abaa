import { Counter, type Registry } from 'prom-client';
import { registeredOnce } from './registered-once.js';
import type { WebhookOutcome } from '../http/routes/stripe-webhook.routes.js';

/**
 * Stripe's webhook deliveries by what became of them. `malformed` is the one to alert on: an
 * event of a shape we do not read, answered 200 (Stripe would only send the same bytes again)
 * and kept as unmatched, which nobody sees unless it is counted.
 */
export function webhookMetrics(registry: Registry): (outcome: WebhookOutcome) => void {
  const name = 'stripe_webhook_events_total';
  const events = registeredOnce(registry, name, Counter, () => new Counter({ name, help: 'Signed Stripe webhook events, by outcome', labelNames: ['outcome'], registers: [registry] }));
  return (outcome) => events.inc({ outcome });
}
