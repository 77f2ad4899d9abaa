import type Stripe from 'stripe';
import type { PaymentProviderEvent } from '../../application/payments/provider-events.js';
import { stripeInstant } from './stripe-instant.js';

/**
 * The integration edge: Stripe's events in our terms. Our ids travel in the metadata we set on
 * every intent and refund; an event of a type we follow whose object lacks them (made in the
 * dashboard, say) comes out as `unmatched`, to be kept for reconciliation. Types we do not
 * follow come out as nothing.
 */
export function toProviderEvents(event: Stripe.Event): PaymentProviderEvent[] {
  switch (event.type) {
    case 'payment_intent.succeeded':
    case 'payment_intent.payment_failed':
    case 'payment_intent.canceled':
      return [fromIntent(event.id, event.type, event.data.object, event.created)];
    case 'charge.refunded':
      return fromCharge(event.id, event.data.object);
    case 'refund.created':
    case 'refund.updated':
    case 'refund.failed':
      return fromRefund(event.id, event.type, event.data.object);
    default:
      return [];
  }
}

function unmatched(eventId: string, eventType: string, objectId: string, reason: string): PaymentProviderEvent {
  return { kind: 'unmatched', eventId, eventType, objectId, reason };
}

/**
 * A success's capture time is the event's own `created`: Stripe makes `payment_intent.succeeded`
 * as the intent succeeds (a bank debit: when it clears, not when it was submitted). The object
 * names its charge by id only, and a card charge's own time is the same second.
 */
function fromIntent(eventId: string, type: string, intent: Stripe.PaymentIntent, created: number): PaymentProviderEvent {
  const paymentId = intent.metadata.paymentId;
  if (!paymentId) return unmatched(eventId, type, intent.id, 'the intent carries no paymentId');
  const ids = { eventId, paymentId, intentId: intent.id };
  if (type === 'payment_intent.succeeded') {
    // What was received, not what was asked: a mismatch must show.
    const capturedAt = stripeInstant(created);
    return { kind: 'payment-succeeded', ...ids, amount: intent.amount_received, currency: intent.currency.toUpperCase(), ...(capturedAt === undefined ? {} : { capturedAt }) };
  }
  if (type === 'payment_intent.canceled') return { kind: 'payment-canceled', ...ids };
  const failure = intent.last_payment_error;
  const reason = failure?.decline_code ?? failure?.code ?? failure?.message ?? 'payment_failed';
  return { kind: 'payment-failed', ...ids, reason };
}

/**
 * `charge.refunded` lists its refunds only when the API version still expands them; each one is
 * reported alone, as its own refund event would be: ours on their payment (under an id derived
 * from the event's), anyone else's (a dashboard refund beside ours) kept for reconciliation, a
 * pending one of ours left to the refund event that settles it. Only a charge that lists none
 * tells us nothing about which refund it was, so the charge itself is kept.
 */
function fromCharge(eventId: string, charge: Stripe.Charge): PaymentProviderEvent[] {
  const refunds = charge.refunds?.data ?? [];
  if (refunds.length === 0) return [unmatched(eventId, 'charge.refunded', charge.id, 'the charge lists no refunds')];
  // Every later charge.refunded lists the earlier refunds again: someone else's is kept once per
  // state it is seen in, not once per event that lists it.
  const listed = (refund: Stripe.Refund) => (event: PaymentProviderEvent) =>
    event.kind === 'unmatched' ? { ...event, eventId: `charge-listed:${refund.id}:${refund.status ?? 'unknown'}` } : event;
  return refunds.flatMap((refund) => fromRefund(`${eventId}:${refund.id}`, 'charge.refunded', refund).map(listed(refund)));
}

function fromRefund(eventId: string, type: string, refund: Stripe.Refund): PaymentProviderEvent[] {
  const { paymentId, refundId } = refund.metadata ?? {};
  if (!paymentId || !refundId) return [unmatched(eventId, type, refund.id, 'the refund carries no paymentId and refundId')];
  if (refund.status === 'succeeded') return [{ kind: 'refund-succeeded', eventId, paymentId, refundId }];
  if (refund.status === 'failed' || refund.status === 'canceled') {
    return [{ kind: 'refund-failed', eventId, paymentId, refundId, reason: refund.failure_reason ?? refund.status }];
  }
  // Pending: its outcome comes as another event.
  return [];
}
