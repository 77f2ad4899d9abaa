import { bookingStreamId, type BookingState } from '../../domain/booking/booking.decider.js';
import { paymentStreamId, type PaymentState } from '../../domain/payment/payment.decider.js';
import { DomainError } from '../../domain/shared/domain-error.js';
import type { CommandSide } from '../command-handlers.js';
import type { CommandContext } from '../metadata.js';
import { deterministicUuid } from '../ids.js';
import { ProviderRefusedError, ProviderUnavailableError, quickLook } from '../ports/payment-gateway.js';
import { intentOutcomeLearned, recordOnPayment, recordProviderEvent, type PaymentProviderEvent } from './provider-events.js';

/**
 * A booking's payments are its attempts 1, 2, 3 … with ids derived from the booking and the
 * number, so anyone (a request, a retry of it after a crash, the process manager) finds them
 * without an index, and two requests starting "the next attempt" name the same payment. A new
 * attempt is only needed once the last intent is spent without paying: canceled, or captured
 * another amount than asked (a mismatch, refunded). A failed intent takes another card, so it
 * stays the live one.
 */
export const paymentIdFor = (bookingId: string, attempt: number): string => deterministicUuid('payment', bookingId, String(attempt));

/** Far more than a real booking sees; only a bug or abuse would reach it. */
const maxAttempts = 10;

export type PaymentAttempt = { readonly attempt: number; readonly paymentId: string; readonly state: PaymentState };

/** Every attempt the booking has, oldest first; stops at the first id without a stream. */
export async function paymentAttempts(side: CommandSide, bookingId: string): Promise<PaymentAttempt[]> {
  const attempts: PaymentAttempt[] = [];
  for (let attempt = 1; attempt <= maxAttempts; attempt++) {
    const paymentId = paymentIdFor(bookingId, attempt);
    const { state } = await side.handlers.payment.read(paymentStreamId(paymentId));
    if (state.status === 'none') return attempts;
    attempts.push({ attempt, paymentId, state });
  }
  return attempts;
}

/** The attempt a new start should use or reuse: the last one unless it was spent without paying, then a fresh one. */
export async function currentAttempt(side: CommandSide, bookingId: string): Promise<PaymentAttempt> {
  const attempts = await paymentAttempts(side, bookingId);
  const last = attempts.at(-1);
  if (last && last.state.status !== 'canceled' && last.state.status !== 'mismatched') return last;
  const attempt = attempts.length + 1;
  if (attempt > maxAttempts) throw new DomainError('too-many-payment-attempts', `booking ${bookingId} has had ${maxAttempts} payment attempts`);
  return { attempt, paymentId: paymentIdFor(bookingId, attempt), state: { status: 'none' } };
}

/** Intents someone could still pay: initiated, or failed and waiting for another card. */
export function isLive(state: PaymentState): state is Extract<PaymentState, { status: 'initiated' | 'failed' }> {
  return state.status === 'initiated' || state.status === 'failed';
}

/**
 * Where a booking stands, and whether it is paid for: marked paid (or on past it), or still
 * requested with its provider's success already in the log, because the payment process may
 * be behind (retrying a provider call) and not have marked it yet. Whoever would take its dates
 * away, as lapsed, asks this first: taking them refunded a consumer who paid in time.
 */
export async function bookingPayment(side: CommandSide, bookingId: string): Promise<{ readonly status: BookingState['status']; readonly paid: boolean }> {
  const { status } = (await side.handlers.booking.read(bookingStreamId(bookingId))).state;
  if (status === 'paid' || status === 'confirmed' || status === 'completed') return { status, paid: true };
  if (status !== 'requested') return { status, paid: false };
  return { status, paid: (await paymentAttempts(side, bookingId)).some(({ state }) => state.status === 'succeeded') };
}

/**
 * Whether the provider took the booking's price within its hold on one of its live attempts
 * though our log does not say so yet (the webhook late, or lost): asked of the side's gateway, if
 * it has one, and a success it reports is recorded as its webhook would be, so that the payment
 * process marks the booking paid and confirms it. Another amount taken is recorded too, as a
 * mismatch: not paid, and refunded. A look the provider fails or refuses, and money taken after
 * the hold, count as not paid: the booking expires on our log alone, and a success learned later
 * is refunded, as before the look. Waiting for the provider instead held the booking (and its
 * payable intent) open for as long as it was down.
 */
export async function paidAtProvider(side: CommandSide, bookingId: string, context: CommandContext): Promise<boolean> {
  const gateway = side.paymentGateway?.();
  if (!gateway) return false;
  const { state: booking } = await side.handlers.booking.read(bookingStreamId(bookingId));
  if (booking.status !== 'requested') return false;
  const holdEnd = Date.parse(booking.booking.holdExpiresAt);
  let paid = false;
  for (const { paymentId, state } of await paymentAttempts(side, bookingId)) {
    // Its webhook recorded since the caller last read the log: paid, as the log now says.
    if (state.status === 'succeeded') paid = true;
    if (!isLive(state)) continue;
    const intentId = state.payment.providerIntentId;
    const intent = await gateway.retrieveIntent(intentId, quickLook).catch((error: unknown) => {
      if (!(error instanceof ProviderUnavailableError || error instanceof ProviderRefusedError)) throw error;
      side.onError?.(error, `ask the payment provider about intent ${intentId} of booking ${bookingId} at its expiry (it expires on our log alone)`);
      return 'unanswered' as const;
    });
    if (intent === 'unanswered') continue;
    const learned = intentOutcomeLearned(paymentId, intentId, intent);
    if (learned?.kind !== 'payment-succeeded') continue;
    if (learned.capturedAt !== undefined && Date.parse(learned.capturedAt) > holdEnd) continue;
    await recordLearned(side, learned, context);
    if ((await side.handlers.payment.read(paymentStreamId(paymentId))).state.status === 'succeeded') paid = true;
  }
  return paid;
}

/**
 * A success learned by asking, recorded as `recordProviderEvent` records its webhook: one the
 * payment's rules refuse (recorded otherwise meanwhile, say) is kept as unmatched where the side
 * keeps them, not dropped unseen.
 */
async function recordLearned(side: CommandSide, learned: Extract<PaymentProviderEvent, { kind: 'payment-succeeded' }>, context: CommandContext): Promise<void> {
  const eventStore = side.providerEventStore;
  if (eventStore) return recordProviderEvent({ side, eventStore }, learned, context);
  await recordOnPayment(side, learned, context).catch((error: unknown) => {
    if (!(error instanceof DomainError)) throw error;
    side.onError?.(error, `record payment ${learned.paymentId}'s success learned from the provider`);
  });
}
