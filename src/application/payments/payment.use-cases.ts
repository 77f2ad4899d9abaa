import { bookingStreamId, isRecorded, type BookingState } from '../../domain/booking/booking.decider.js';
import { isCaptured, paymentStreamId, refundable } from '../../domain/payment/payment.decider.js';
import { hasRole, type Actor } from '../../domain/shared/actor.js';
import { DomainError, NotFoundError } from '../../domain/shared/domain-error.js';
import { ForbiddenError } from '../../domain/shared/forbidden-error.js';
import type { CommandSide } from '../command-handlers.js';
import { outcome, type CommandOutcome } from '../command-handling/command-outcome.js';
import { assertExpectedVersion } from '../command-handling/errors.js';
import type { CommandOptions } from '../command-handling/handle-command.js';
import { deterministicUuid } from '../ids.js';
import { idempotencyKeys, type PaymentGateway, type ProviderIntent } from '../ports/payment-gateway.js';
import type { Position } from '../ports/position.js';
import { currentAttempt, isLive, type PaymentAttempt } from './payment-attempts.js';
import { intentOutcomeLearned, recordProviderEvent, type ProviderEventDeps } from './provider-events.js';

/** What the payment use cases run on: the command side, the provider, and the log for unmatched provider events. */
export type PaymentSide = ProviderEventDeps & { readonly gateway: PaymentGateway };

export type StartedPayment = {
  readonly paymentId: string;
  readonly clientSecret: string;
  /** `initiated`: waiting to be paid; `failed`: the last try failed, the same intent takes another. */
  readonly status: 'initiated' | 'failed';
  readonly position: Position;
  /** False when the booking's live intent was returned instead of a new one. */
  readonly created: boolean;
};

/**
 * Creates the intent first, then records it: the key derives from the payment id, so a retry
 * after a crash between the two (or a concurrent second request) gets the same intent from the
 * provider, and the command id derived from the payment id makes both records one.
 */
export async function startPayment(payments: PaymentSide, bookingId: string, request: CommandOptions, retried = false): Promise<StartedPayment> {
  const booking = await payableBooking(payments.side, bookingId, request);
  const current = await currentAttempt(payments.side, bookingId);
  if (current.state.status === 'succeeded') throw new DomainError('already-paid', `booking ${bookingId} is paid already`);
  if (isLive(current.state)) {
    const live = await liveIntent(payments, current, request);
    if (live) return live;
    // Its cancellation is recorded now, so the next look finds a fresh attempt.
    if (!retried) return startPayment(payments, bookingId, request, true);
    throw new DomainError('payment-in-progress', `booking ${bookingId} has a payment that is neither live nor over`);
  }
  const { total: amount, currency } = booking.booking;
  const intent = await payments.gateway.createIntent({
    paymentId: current.paymentId,
    bookingId,
    amount,
    currency,
    idempotencyKey: idempotencyKeys.createIntent(current.paymentId),
  });
  const result = await payments.side.handlers.payment.handle(
    paymentStreamId(current.paymentId),
    { type: 'InitiatePayment', data: { paymentId: current.paymentId, bookingId, providerIntentId: intent.intentId, amount, currency } },
    { commandId: `start-payment:${current.paymentId}`, context: request.context },
  );
  if (await recordedIfOver(payments, current.paymentId, intent, request)) {
    // The next look answers as for any live intent found over: paid, or a fresh attempt.
    if (!retried) return startPayment(payments, bookingId, request, true);
    throw new DomainError('payment-in-progress', `booking ${bookingId} has a payment that is neither live nor over`);
  }
  return { paymentId: current.paymentId, clientSecret: intent.clientSecret, status: 'initiated', position: result.position, created: true };
}

/**
 * The key gave back an intent an earlier start made before it crashed short of recording it, and
 * the intent is over already (the simulated gateway's pay themselves 1.5 s after creation): its
 * outcome was delivered while no payment existed, filed as unmatched, and is never sent again.
 * Recorded now, as `liveIntent` would. Whether it was over.
 */
async function recordedIfOver(payments: PaymentSide, paymentId: string, intent: ProviderIntent, request: CommandOptions): Promise<boolean> {
  const learned = intentOutcomeLearned(paymentId, intent.intentId, intent);
  if (learned) await recordProviderEvent(payments, learned, request.context);
  return learned !== undefined;
}

/**
 * The live intent's secret. If the provider says it is over and its webhook has not told us (on
 * its way, or lost), that is recorded now: succeeded for what was asked, the booking is paid;
 * anything else (canceled, or taken for another amount: a mismatch, refunded), `undefined`
 * (start another attempt).
 */
async function liveIntent(payments: PaymentSide, current: PaymentAttempt, request: CommandOptions): Promise<StartedPayment | undefined> {
  if (!isLive(current.state)) return undefined;
  const { providerIntentId, bookingId } = current.state.payment;
  const intent = await payments.gateway.retrieveIntent(providerIntentId);
  const learned = intentOutcomeLearned(current.paymentId, providerIntentId, intent);
  if (learned) {
    await recordProviderEvent(payments, learned, request.context);
    // The provider's "succeeded" pays the booking only if the payment took it as paid: another
    // amount is a mismatch, and telling the consumer it is paid made them stop while the hold ran out.
    const { state } = await payments.side.handlers.payment.read(paymentStreamId(current.paymentId));
    if (state.status === 'succeeded') throw new DomainError('already-paid', `booking ${bookingId} is paid already`);
    return undefined;
  }
  if (!intent) return undefined;
  if (intent.status === 'processing') throw new DomainError('payment-in-progress', `the payment of booking ${bookingId} is being processed`);
  const { position } = await payments.side.handlers.payment.read(paymentStreamId(current.paymentId));
  return { paymentId: current.paymentId, clientSecret: intent.clientSecret, status: current.state.status, position, created: false };
}

/**
 * Only the booking's consumer pays, only while the dates are held for it. A pinned version
 * (`If-Match`) is the booking's, the aggregate the route names, and refuses here, before the
 * provider is asked for an intent: a payment started for a booking the caller has not seen
 * cannot be taken back by a 412.
 */
async function payableBooking(side: CommandSide, bookingId: string, request: CommandOptions): Promise<Extract<BookingState, { status: 'requested' }>> {
  const streamId = bookingStreamId(bookingId);
  const { state, version } = await side.handlers.booking.read(streamId);
  const payable = () => payableState(side, bookingId, state, request.context.actor);
  assertExpectedVersion(streamId, request.expectedVersion, version, payable);
  return payable();
}

function payableState(side: CommandSide, bookingId: string, state: BookingState, actor: Actor): Extract<BookingState, { status: 'requested' }> {
  if (!isRecorded(state)) throw new NotFoundError(`booking ${bookingId}`);
  const { consumerId, ownerId } = state.booking;
  if (actor.id !== consumerId && actor.id !== ownerId && !hasRole(actor, 'ADMIN')) throw new NotFoundError(`booking ${bookingId}`);
  if (actor.id !== consumerId) throw new ForbiddenError('only the consumer who booked pays for a booking');
  if (state.status !== 'requested') throw new DomainError('booking-not-payable', `a ${state.status} booking takes no payment`);
  if (Date.parse(state.booking.holdExpiresAt) <= side.clock.now().getTime()) {
    throw new DomainError('hold-expired', `the dates were held for payment until ${state.booking.holdExpiresAt}`);
  }
  return state;
}

/**
 * Records the refund; the payment process manager sends it to the provider (so it resumes
 * after a crash) and records its outcome. Without an amount, everything not yet refunded.
 */
export async function refundPayment(
  side: CommandSide,
  paymentId: string,
  input: { amount?: number | undefined },
  request: CommandOptions,
): Promise<CommandOutcome> {
  const { state } = await side.handlers.payment.read(paymentStreamId(paymentId));
  if (state.status === 'none') throw new NotFoundError(`payment ${paymentId}`);
  const { state: booking } = await side.handlers.booking.read(bookingStreamId(state.payment.bookingId));
  const actor = request.context.actor;
  const owner = isRecorded(booking) && booking.booking.ownerId === actor.id;
  if (!owner && !hasRole(actor, 'ADMIN')) {
    // The payer sees the payment (GET answers them), so for them it exists: they may not refund it.
    const payer = isRecorded(booking) && booking.booking.consumerId === actor.id;
    if (payer) throw new ForbiddenError("only the listing's owner or an admin refunds a payment");
    throw new NotFoundError(`payment ${paymentId}`);
  }
  const refundId = deterministicUuid('refund', request.commandId);
  const result = await side.handlers.payment.handle(
    paymentStreamId(paymentId),
    (current) => {
      if (!isCaptured(current)) return { type: 'RequestRefund', data: { paymentId, refundId, amount: input.amount ?? 0 } };
      // "What is left", asked again by a retry of a refund that went through, is what it took.
      const amount = input.amount ?? current.refunds.find((refund) => refund.refundId === refundId)?.amount ?? refundable(current);
      if (amount === 0) throw new DomainError('nothing-to-refund', 'everything captured has been refunded');
      return { type: 'RequestRefund', data: { paymentId, refundId, amount } };
    },
    request,
  );
  return outcome(refundId, result);
}
