import { paymentStreamId, type PaymentState } from '../../domain/payment/payment.decider.js';
import type { PaymentCommand } from '../../domain/payment/payment.commands.js';
import { DomainError } from '../../domain/shared/domain-error.js';
import { chainMetadata, genesisHash } from '../audit/hash-chain.js';
import type { CommandSide } from '../command-handlers.js';
import type { CommandOptions } from '../command-handling/handle-command.js';
import { deterministicUuid } from '../ids.js';
import { eventMetadataSchema, type CommandContext } from '../metadata.js';
import type { EventStore } from '../ports/event-store.js';
import type { ProviderIntent, ProviderRefund } from '../ports/payment-gateway.js';

/**
 * What the payment provider told us, in our terms: the webhook translates Stripe's events into
 * these, and the simulated gateway sends the same ones. `eventId` is the provider's event id
 * (or one derived from it when one provider event reports several refunds).
 */
export type PaymentProviderEvent =
  | {
      readonly kind: 'payment-succeeded';
      readonly eventId: string;
      readonly paymentId: string;
      readonly intentId: string;
      readonly amount: number;
      readonly currency: string;
      /** When the provider took the money (ISO 8601, UTC), if it said: see `PaymentSucceeded`. */
      readonly capturedAt?: string;
    }
  | { readonly kind: 'payment-failed'; readonly eventId: string; readonly paymentId: string; readonly intentId: string; readonly reason: string }
  | { readonly kind: 'payment-canceled'; readonly eventId: string; readonly paymentId: string; readonly intentId: string }
  | { readonly kind: 'refund-succeeded'; readonly eventId: string; readonly paymentId: string; readonly refundId: string }
  | { readonly kind: 'refund-failed'; readonly eventId: string; readonly paymentId: string; readonly refundId: string; readonly reason: string }
  /** An event we expected to map to one of our payments and could not: kept for reconciliation. */
  | { readonly kind: 'unmatched'; readonly eventId: string; readonly eventType: string; readonly objectId: string; readonly reason: string };

/** Where provider events that match no payment are kept, one stream per provider event. */
export const unmatchedStreamId = (providerEventId: string) => `stripeUnmatched-${providerEventId}`;
/** The one event of an unmatched stream: kept for reconciliation, outside every aggregate. */
export const providerEventUnmatchedType = 'ProviderEventUnmatched';

export type ProviderEventDeps = { readonly side: CommandSide; readonly eventStore: EventStore };

/**
 * What the provider told us of an intent when we asked (its webhook may be late, lost, or never
 * sent), as the event its webhook would have brought; under an id of its own, which a later
 * webhook's event does not repeat, and the payment records an outcome once only.
 */
export function intentOutcomeLearned(paymentId: string, intentId: string, intent: ProviderIntent | undefined): PaymentProviderEvent | undefined {
  if (intent?.status === 'succeeded') {
    const { amountReceived: amount, currency, capturedAt } = intent;
    return { kind: 'payment-succeeded', eventId: `gateway:succeeded:${intentId}`, paymentId, intentId, amount, currency, ...(capturedAt === undefined ? {} : { capturedAt }) };
  }
  // Unknown to the provider: nothing of it can succeed any more.
  if (!intent || intent.status === 'canceled') return { kind: 'payment-canceled', eventId: `gateway:canceled:${intentId}`, paymentId, intentId };
  return undefined;
}

/** The provider acts as this actor in event metadata. */
export const paymentProviderActor = { id: 'system:payment-provider', roles: [] };

type MatchedEvent = Exclude<PaymentProviderEvent, { kind: 'unmatched' }>;

function commandFor(event: MatchedEvent): PaymentCommand {
  const { paymentId, eventId: providerEventId } = event;
  switch (event.kind) {
    case 'payment-succeeded': {
      const { amount, currency, capturedAt } = event;
      return { type: 'RecordPaymentSucceeded', data: { paymentId, providerEventId, amount, currency, ...(capturedAt === undefined ? {} : { capturedAt }) } };
    }
    case 'payment-failed':
      return { type: 'RecordPaymentFailed', data: { paymentId, providerEventId, reason: event.reason.slice(0, 500) } };
    case 'payment-canceled':
      return { type: 'RecordPaymentCanceled', data: { paymentId, providerEventId } };
    case 'refund-succeeded':
      return { type: 'RecordRefundSucceeded', data: { paymentId, refundId: event.refundId, providerEventId } };
    case 'refund-failed':
      return { type: 'RecordRefundFailed', data: { paymentId, refundId: event.refundId, providerEventId, reason: event.reason.slice(0, 500) } };
    default: {
      const _exhaustive: never = event;
      return _exhaustive;
    }
  }
}

/** An intent event for a payment made with another intent is not about this payment. */
function guardIntent(event: MatchedEvent, state: PaymentState): void {
  if (!('intentId' in event) || state.status === 'none') return;
  if (state.payment.providerIntentId !== event.intentId) {
    throw new DomainError('intent-mismatch', `payment ${event.paymentId} was made with intent ${state.payment.providerIntentId}, not ${event.intentId}`);
  }
}

/**
 * Records one provider event, exactly once in effect: the command id derives from the provider's
 * event id, so a redelivery (even a concurrent one) appends the same event ids and converges on
 * one append, and the payment decider ignores an event id it has recorded already. A refusal by
 * the payment's rules (an unknown payment, a success for a canceled intent) is not lost: it goes
 * to the unmatched stream, for someone to reconcile. Anything else throws, so the provider retries.
 */
export async function recordProviderEvent(deps: ProviderEventDeps, event: PaymentProviderEvent, context: CommandContext): Promise<void> {
  if (event.kind === 'unmatched') return recordUnmatched(deps, event, context);
  try {
    await recordOnPayment(deps.side, event, context);
  } catch (error) {
    if (!(error instanceof DomainError)) throw error;
    const objectId = 'intentId' in event ? event.intentId : event.refundId;
    const reason = `${error.code}: ${error.message}`;
    await recordUnmatched(deps, { kind: 'unmatched', eventId: event.eventId, eventType: event.kind, objectId, reason }, context);
  }
}

/** Records one provider event on its payment; a refusal by the payment's rules is thrown (a DomainError). */
export async function recordOnPayment(side: CommandSide, event: MatchedEvent, context: CommandContext): Promise<void> {
  const options: CommandOptions = { commandId: `provider-event:${event.eventId}`, context };
  await side.handlers.payment.handle(
    paymentStreamId(event.paymentId),
    (state) => {
      guardIntent(event, state);
      return commandFor(event);
    },
    options,
  );
}

async function recordUnmatched(
  deps: ProviderEventDeps,
  event: Extract<PaymentProviderEvent, { kind: 'unmatched' }>,
  context: CommandContext,
): Promise<void> {
  const metadata = eventMetadataSchema.parse({
    actorId: context.actor.id,
    actorRoles: [...context.actor.roles],
    correlationId: context.correlationId,
    causationId: context.causationId,
    requestId: context.requestId,
    occurredAt: deps.side.clock.now().toISOString(),
    schemaVersion: 1,
  });
  const { eventId, eventType, objectId, reason } = event;
  const type = providerEventUnmatchedType;
  const data = { providerEventId: eventId, eventType, objectId, reason: reason.slice(0, 500) };
  // One event id per provider event: a redelivery appends nothing. The stream's first and only
  // event, linked to the genesis like every stream's first: without its link, verification
  // reported the stream as tampered with.
  const streamId = unmatchedStreamId(eventId);
  const id = deterministicUuid('provider-event-unmatched', eventId);
  await deps.eventStore.appendToStream(streamId, [{ id, type, data, metadata: chainMetadata(genesisHash, { streamId, id, type, data, metadata, revision: 0 }) }], {
    expectedRevision: 'no_stream',
  });
}

/**
 * The command that records a refund's outcome as the provider answered it (a create, or a later
 * look), under the one provider event id both record it with; none while it is still pending.
 */
export function refundOutcome(paymentId: string, refundId: string, refund: ProviderRefund): PaymentCommand | undefined {
  if (refund.status === 'pending') return undefined;
  const providerEventId = `gateway:refund:${refund.providerRefundId}`;
  if (refund.status === 'succeeded') return { type: 'RecordRefundSucceeded', data: { paymentId, refundId, providerEventId } };
  const reason = (refund.failureReason ?? 'failed').slice(0, 500);
  return { type: 'RecordRefundFailed', data: { paymentId, refundId, providerEventId, reason } };
}
