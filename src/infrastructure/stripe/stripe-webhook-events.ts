import { createHash } from 'node:crypto';
import type Stripe from 'stripe';
import { z } from 'zod';
import type { PaymentProviderEvent } from '../../application/payments/provider-events.js';
import { stripeInstant } from './stripe-instant.js';

/**
 * The fields we read of Stripe's objects, checked: a signed event of another shape (an API
 * version we do not expect, a bug on either side) is kept as unmatched, not thrown over. A throw
 * answered 500, and Stripe sends a 500'd event again for days, each time to the same throw.
 * Ids, statuses and amounts are read strictly; a field read only for a reason's text falls back
 * to the default reason instead: it made a whole event unmatched, a failed refund pending for good.
 */
const metadataSchema = z.record(z.string(), z.string());

/** A reason's text, if it is one. */
const reasonText = z.string().nullish().catch(undefined);

const intentSchema = z.object({
  id: z.string().min(1),
  metadata: metadataSchema,
  amount_received: z.number().int().nonnegative().optional(),
  currency: z.string().min(1).optional(),
  last_payment_error: z.object({ decline_code: reasonText, code: reasonText, message: reasonText }).nullish().catch(undefined),
});
/** What was received, not what was asked, and in which currency: a success's amount must show. */
const succeededIntentSchema = intentSchema.extend({ amount_received: z.number().int().nonnegative(), currency: z.string().min(1) });

const refundSchema = z.object({
  id: z.string().min(1),
  status: z.string().nullish(),
  metadata: metadataSchema.nullish(),
  failure_reason: reasonText,
});

const chargeSchema = z.object({ id: z.string().min(1), refunds: z.object({ data: z.array(refundSchema) }).nullish() });

type Intent = z.infer<typeof intentSchema>;
type SucceededIntent = z.infer<typeof succeededIntentSchema>;
type Refund = z.infer<typeof refundSchema>;


/**
 * The integration edge: Stripe's events in our terms. Our ids travel in the metadata we set on
 * every intent and refund; an event of a type we follow whose object lacks them (made in the
 * dashboard, say), or whose object is not of the shape we read, comes out as `unmatched`, to be
 * kept for reconciliation. Types we do not follow come out as nothing.
 */
export function toProviderEvents(event: Stripe.Event): PaymentProviderEvent[] {
  switch (event.type) {
    case 'payment_intent.succeeded':
      return checked(event, succeededIntentSchema, (intent) => [fromSucceededIntent(event.id, event.type, intent, event.created)]);
    case 'payment_intent.payment_failed':
    case 'payment_intent.canceled':
      return checked(event, intentSchema, (intent) => [fromIntent(event.id, event.type, intent)]);
    case 'charge.refunded':
      return checked(event, chargeSchema, (charge) => fromCharge(event.id, charge));
    case 'refund.created':
    case 'refund.updated':
    case 'refund.failed':
      return checked(event, refundSchema, (refund) => fromRefund(event.id, event.type, refund));
    default:
      return [];
  }
}

const malformedPrefix = 'malformed: ';

/** Whether the event is one of a shape we could not read, kept unmatched: to be logged and counted, not only kept. */
export function isMalformed(event: PaymentProviderEvent): event is Extract<PaymentProviderEvent, { kind: 'unmatched' }> {
  return event.kind === 'unmatched' && event.reason.startsWith(malformedPrefix);
}

/**
 * The intent and our payment a payment-intent event names, read leniently (whatever else is amiss
 * in it): of an event we could not read, what to ask the provider about instead.
 */
export function intentNamedBy(event: Stripe.Event): { readonly intentId: string; readonly paymentId: string } | undefined {
  if (!String(event.type).startsWith('payment_intent.')) return undefined;
  const named = z.object({ id: z.string().min(1), metadata: z.object({ paymentId: z.string().min(1) }) });
  const parsed = z.object({ data: z.object({ object: named }) }).safeParse(event);
  return parsed.success ? { intentId: parsed.data.data.object.id, paymentId: parsed.data.data.object.metadata.paymentId } : undefined;
}

/** `translate` of the event's object if it has the shape `schema` reads; else the event kept as malformed, naming the first field amiss. */
function checked<T>(event: Stripe.Event, schema: z.ZodType<T>, translate: (object: T) => PaymentProviderEvent[]): PaymentProviderEvent[] {
  // The event's own id names what we record of it: without one, the event is malformed too.
  const parsed = z.object({ id: z.string().min(1), data: z.object({ object: schema }) }).safeParse(event);
  if (parsed.success) return translate(parsed.data.data.object);
  const [issue] = parsed.error.issues;
  const field = issue ? issue.path.map(String).join('.') : 'data.object';
  const eventId = typeof event.id === 'string' && event.id !== '' ? event.id : `unnamed:${createHash('sha256').update(JSON.stringify(event)).digest('hex').slice(0, 24)}`;
  return [unmatched(eventId, String(event.type), objectIdOf(event) ?? eventId, `${malformedPrefix}${field}: ${issue?.message ?? 'unexpected shape'}`)];
}

/** The object's id, if the event has one where Stripe puts it. */
function objectIdOf(event: Stripe.Event): string | undefined {
  const parsed = z.object({ data: z.object({ object: z.object({ id: z.string().min(1) }) }) }).safeParse(event);
  return parsed.success ? parsed.data.data.object.id : undefined;
}

function unmatched(eventId: string, eventType: string, objectId: string, reason: string): PaymentProviderEvent {
  return { kind: 'unmatched', eventId, eventType, objectId, reason };
}

/**
 * A success's capture time is the event's own `created`: Stripe makes `payment_intent.succeeded`
 * as the intent succeeds (a bank debit: when it clears, not when it was submitted). The object
 * names its charge by id only, and a card charge's own time is the same second.
 */
function fromSucceededIntent(eventId: string, type: string, intent: SucceededIntent, created: number): PaymentProviderEvent {
  const paymentId = intent.metadata.paymentId;
  if (!paymentId) return unmatched(eventId, type, intent.id, 'the intent carries no paymentId');
  const capturedAt = stripeInstant(created);
  const amount = { amount: intent.amount_received, currency: intent.currency.toUpperCase() };
  return { kind: 'payment-succeeded', eventId, paymentId, intentId: intent.id, ...amount, ...(capturedAt === undefined ? {} : { capturedAt }) };
}

/** A failed or canceled intent. */
function fromIntent(eventId: string, type: string, intent: Intent): PaymentProviderEvent {
  const paymentId = intent.metadata.paymentId;
  if (!paymentId) return unmatched(eventId, type, intent.id, 'the intent carries no paymentId');
  const ids = { eventId, paymentId, intentId: intent.id };
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
function fromCharge(eventId: string, charge: z.infer<typeof chargeSchema>): PaymentProviderEvent[] {
  const refunds = charge.refunds?.data ?? [];
  if (refunds.length === 0) return [unmatched(eventId, 'charge.refunded', charge.id, 'the charge lists no refunds')];
  // Every later charge.refunded lists the earlier refunds again: someone else's is kept once per
  // state it is seen in, not once per event that lists it.
  const listed = (refund: Refund) => (event: PaymentProviderEvent) =>
    event.kind === 'unmatched' ? { ...event, eventId: `charge-listed:${refund.id}:${refund.status ?? 'unknown'}` } : event;
  return refunds.flatMap((refund) => fromRefund(`${eventId}:${refund.id}`, 'charge.refunded', refund).map(listed(refund)));
}

function fromRefund(eventId: string, type: string, refund: Refund): PaymentProviderEvent[] {
  const { paymentId, refundId } = refund.metadata ?? {};
  if (!paymentId || !refundId) return [unmatched(eventId, type, refund.id, 'the refund carries no paymentId and refundId')];
  if (refund.status === 'succeeded') return [{ kind: 'refund-succeeded', eventId, paymentId, refundId }];
  if (refund.status === 'failed' || refund.status === 'canceled') {
    return [{ kind: 'refund-failed', eventId, paymentId, refundId, reason: refund.failure_reason ?? refund.status }];
  }
  // Pending: its outcome comes as another event.
  return [];
}
