import Stripe from 'stripe';

// Stripe's webhook deliveries as Stripe makes them, for anything that plays Stripe's part over
// HTTP (the payment specs, the soak). No test framework here: the soak runs it as a plain script.

type EventObject = { id: string; object: string; [key: string]: unknown };

/** A Stripe event as its webhook delivers it. */
export function stripeEvent(id: string, type: string, object: EventObject): string {
  return JSON.stringify({ id, object: 'event', type, api_version: '2025-01-27', created: Math.floor(Date.now() / 1000), livemode: false, data: { object } });
}

export function intentObject(intentId: string, paymentId: string, fields: Record<string, unknown> = {}): EventObject {
  return { id: intentId, object: 'payment_intent', amount: 0, amount_received: 0, currency: 'eur', status: 'succeeded', metadata: { paymentId }, last_payment_error: null, ...fields };
}

export function refundObject(refundId: string, paymentId: string, fields: Record<string, unknown> = {}): EventObject {
  return { id: `re_${refundId}`, object: 'refund', amount: 0, currency: 'eur', status: 'succeeded', metadata: { paymentId, refundId }, ...fields };
}

/** The `Stripe-Signature` header of `payload`, made by the SDK's own test helper. */
export function stripeSignature(payload: string, secret: string, timestamp?: number): string {
  return Stripe.webhooks.generateTestHeaderString({ payload, secret, ...(timestamp ? { timestamp } : {}) });
}
