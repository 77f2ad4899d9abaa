import { Counter, type Registry } from 'prom-client';
import type { WebhookOutcome } from '../http/routes/stripe-webhook.routes.js';

/**
 * Stripe's webhook deliveries by what became of them. `malformed` is the one to alert on: an
 * event of a shape we do not read, answered 200 (Stripe would only send the same bytes again)
 * and kept as unmatched, which nobody sees unless it is counted.
 */
export function webhookMetrics(registry: Registry): (outcome: WebhookOutcome) => void {
  const name = 'stripe_webhook_events_total';
  // Both APIs of one process may publish into one registry: the second reuses the first's counter.
  const existing = registry.getSingleMetric(name);
  const events =
    existing instanceof Counter
      ? existing
      : new Counter({ name, help: 'Signed Stripe webhook events, by outcome', labelNames: ['outcome'], registers: [registry] });
  return (outcome) => events.inc({ outcome });
}
