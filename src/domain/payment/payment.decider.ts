import { assertNever, type Decider } from '../shared/decider.js';
import { DomainError, NotFoundError } from '../shared/domain-error.js';
import { currencySchema } from '../shared/money.js';
import type {
  InitiatePayment,
  PaymentCommand,
  RecordPaymentCanceled,
  RecordPaymentFailed,
  RecordPaymentSucceeded,
  RecordRefundFailed,
  RecordRefundSucceeded,
  RequestRefund,
} from './payment.commands.js';
import type { PaymentEvent, PaymentInitiated } from './payment.events.js';

export const paymentStreamId = (paymentId: string) => `payment-${paymentId}`;

export type PaymentTerms = PaymentInitiated['data'];

export type Refund = { readonly refundId: string; readonly amount: number; readonly status: 'pending' | 'succeeded' | 'failed' };

/**
 * `processedEventIds` holds every provider event this payment has recorded. A payment hears
 * from the provider a handful of times, so the list stays short without any pruning.
 */
export type PaymentState =
  | { readonly status: 'none' }
  | { readonly status: 'initiated'; readonly payment: PaymentTerms; readonly processedEventIds: readonly string[] }
  | { readonly status: 'failed'; readonly payment: PaymentTerms; readonly processedEventIds: readonly string[]; readonly reason: string }
  | { readonly status: 'canceled'; readonly payment: PaymentTerms; readonly processedEventIds: readonly string[] }
  | {
      readonly status: 'succeeded';
      readonly payment: PaymentTerms;
      readonly processedEventIds: readonly string[];
      readonly refunds: readonly Refund[];
    }
  /**
   * The provider captured another amount or currency than the intent asked for. It pays for
   * nothing (the booking costs what it costs), and the intent is spent, so the money received
   * is refundable, in its own currency, and the booking takes a new attempt.
   */
  | {
      readonly status: 'mismatched';
      readonly payment: PaymentTerms;
      readonly processedEventIds: readonly string[];
      readonly received: { readonly amount: number; readonly currency: string };
      readonly refunds: readonly Refund[];
    };

export const initialState: PaymentState = { status: 'none' };

type ExistingPayment = Exclude<PaymentState, { status: 'none' }>;

function existing(state: PaymentState, paymentId: string): ExistingPayment {
  if (state.status === 'none') throw new NotFoundError(`payment ${paymentId}`);
  return state;
}

function alreadyProcessed(state: ExistingPayment, providerEventId: string): boolean {
  return state.processedEventIds.includes(providerEventId);
}

/** Refunds that are done or may still go through: together they may never exceed what was captured. */
export function committedRefunds(refunds: readonly Refund[]): number {
  return refunds.filter((refund) => refund.status !== 'failed').reduce((sum, refund) => sum + refund.amount, 0);
}

/** A payment that took money, which may be refunded. */
export type CapturedPayment = Extract<PaymentState, { status: 'succeeded' | 'mismatched' }>;

export function isCaptured(state: PaymentState): state is CapturedPayment {
  return state.status === 'succeeded' || state.status === 'mismatched';
}

/** The money the provider took: the asked amount for a success, whatever arrived for a mismatch. */
export function capturedMoney(payment: CapturedPayment): { readonly amount: number; readonly currency: string } {
  return payment.status === 'succeeded' ? payment.payment : payment.received;
}

/** What may still be refunded of a captured payment: what was captured, less the refunds committed. */
export function refundable(payment: CapturedPayment): number {
  return capturedMoney(payment).amount - committedRefunds(payment.refunds);
}

function isPositiveAmount(amount: number): boolean {
  return Number.isSafeInteger(amount) && amount > 0;
}

function illegal(state: ExistingPayment, what: string): DomainError {
  return new DomainError('illegal-transition', `a ${state.status} payment cannot be ${what}`);
}

function initiatePayment({ data }: InitiatePayment, state: PaymentState): PaymentEvent[] {
  if (state.status !== 'none') throw new DomainError('already-exists', `payment ${data.paymentId} already exists`);
  if (!isPositiveAmount(data.amount)) throw new DomainError('invalid-amount', 'a payment is for a positive whole number of minor units');
  const { paymentId, bookingId, providerIntentId, amount, currency } = data;
  return [{ type: 'PaymentInitiated', data: { paymentId, bookingId, providerIntentId, amount, currency } }];
}

/**
 * A success after a failure is accepted: the provider lets a customer retry the same intent,
 * and failure notices of earlier attempts may arrive late. Money that was captured is never
 * ignored: another amount or currency than asked is a mismatch, recorded to be refunded. An
 * intent captures once, so another notice after either changes nothing; a success for a
 * canceled intent cannot happen, so it is refused loudly.
 */
function recordPaymentSucceeded({ data }: RecordPaymentSucceeded, state: PaymentState): PaymentEvent[] {
  const current = existing(state, data.paymentId);
  if (alreadyProcessed(current, data.providerEventId) || isCaptured(current)) return [];
  if (current.status === 'canceled') throw illegal(current, 'succeeded');
  const { paymentId, providerEventId, amount, currency, capturedAt } = data;
  const expected = current.payment;
  if (amount !== expected.amount || currency !== expected.currency) {
    const amounts = { expectedAmount: expected.amount, expectedCurrency: expected.currency, receivedAmount: amount, receivedCurrency: currency };
    return [{ type: 'PaymentMismatch', data: { paymentId, providerEventId, ...amounts } }];
  }
  return [{ type: 'PaymentSucceeded', data: { paymentId, providerEventId, amount, currency, ...(capturedAt === undefined ? {} : { capturedAt }) } }];
}

/** After a capture or a cancellation a failure is old news about an earlier attempt: no events. */
function recordPaymentFailed({ data }: RecordPaymentFailed, state: PaymentState): PaymentEvent[] {
  const current = existing(state, data.paymentId);
  if (alreadyProcessed(current, data.providerEventId) || isCaptured(current) || current.status === 'canceled') return [];
  const { paymentId, providerEventId, reason } = data;
  return [{ type: 'PaymentFailed', data: { paymentId, providerEventId, reason } }];
}

function recordPaymentCanceled({ data }: RecordPaymentCanceled, state: PaymentState): PaymentEvent[] {
  const current = existing(state, data.paymentId);
  if (alreadyProcessed(current, data.providerEventId) || current.status === 'canceled') return [];
  if (isCaptured(current)) throw illegal(current, 'canceled');
  return [{ type: 'PaymentCanceled', data: { paymentId: data.paymentId, providerEventId: data.providerEventId } }];
}

function requestRefund({ data }: RequestRefund, state: PaymentState): PaymentEvent[] {
  const current = existing(state, data.paymentId);
  if (!isCaptured(current)) throw illegal(current, 'refunded');
  if (!isPositiveAmount(data.amount)) throw new DomainError('invalid-amount', 'a refund is a positive whole number of minor units');
  const { currency } = capturedMoney(current);
  // Only a mismatch can hold a currency the provider made up; no refund of ours could name it.
  if (!currencySchema.safeParse(currency).success) throw new DomainError('unknown-currency', `${currency} is no ISO 4217 currency to refund in`);
  const same = current.refunds.find((refund) => refund.refundId === data.refundId);
  if (same) {
    if (same.amount === data.amount) return [];
    throw new DomainError('refund-id-conflict', `refund ${data.refundId} was requested for ${same.amount}, not ${data.amount}`);
  }
  const room = refundable(current);
  if (data.amount > room) {
    throw new DomainError('refund-exceeds-captured', `at most ${room} ${currency} is left to refund`);
  }
  const { paymentId, refundId, amount } = data;
  return [{ type: 'RefundRequested', data: { paymentId, refundId, amount, currency } }];
}

function refundOf(state: ExistingPayment, refundId: string): Refund {
  const refund = isCaptured(state) ? state.refunds.find((r) => r.refundId === refundId) : undefined;
  if (!refund) throw new NotFoundError(`refund ${refundId} of payment ${state.payment.paymentId}`);
  return refund;
}

/**
 * The same outcome again is already true. A success after a failure is refused; a failure after
 * a success is not (see `recordRefundFailed`).
 */
function recordRefundSucceeded({ data }: RecordRefundSucceeded, state: PaymentState): PaymentEvent[] {
  const current = existing(state, data.paymentId);
  if (alreadyProcessed(current, data.providerEventId)) return [];
  const refund = refundOf(current, data.refundId);
  if (refund.status === 'succeeded') return [];
  if (refund.status === 'failed') throw new DomainError('illegal-transition', `refund ${data.refundId} has failed already`);
  const { paymentId, refundId, providerEventId } = data;
  return [{ type: 'RefundSucceeded', data: { paymentId, refundId, providerEventId } }];
}

/**
 * Stripe may fail a refund it reported as succeeded (the card was closed meanwhile): the money
 * never reached the customer, so the failure is recorded over the success and the amount counts
 * as refundable again, for the owner or an admin to refund another way.
 */
function recordRefundFailed({ data }: RecordRefundFailed, state: PaymentState): PaymentEvent[] {
  const current = existing(state, data.paymentId);
  if (alreadyProcessed(current, data.providerEventId)) return [];
  const refund = refundOf(current, data.refundId);
  if (refund.status === 'failed') return [];
  const { paymentId, refundId, providerEventId, reason } = data;
  return [{ type: 'RefundFailed', data: { paymentId, refundId, providerEventId, reason } }];
}

export function decide(command: PaymentCommand, state: PaymentState): PaymentEvent[] {
  switch (command.type) {
    case 'InitiatePayment':
      return initiatePayment(command, state);
    case 'RecordPaymentSucceeded':
      return recordPaymentSucceeded(command, state);
    case 'RecordPaymentFailed':
      return recordPaymentFailed(command, state);
    case 'RecordPaymentCanceled':
      return recordPaymentCanceled(command, state);
    case 'RequestRefund':
      return requestRefund(command, state);
    case 'RecordRefundSucceeded':
      return recordRefundSucceeded(command, state);
    case 'RecordRefundFailed':
      return recordRefundFailed(command, state);
    default:
      return assertNever(command);
  }
}

function settle(refunds: readonly Refund[], refundId: string, status: Refund['status']): Refund[] {
  return refunds.map((refund) => (refund.refundId === refundId ? { ...refund, status } : refund));
}

function remember(state: ExistingPayment, providerEventId: string): readonly string[] {
  return [...state.processedEventIds, providerEventId];
}

/** Total, and never backwards: an event that does not fit the state (never emitted by `decide`) leaves it as it is. */
export function evolve(state: PaymentState, event: PaymentEvent): PaymentState {
  switch (event.type) {
    case 'PaymentInitiated':
      return state.status === 'none' ? { status: 'initiated', payment: event.data, processedEventIds: [] } : state;
    case 'PaymentSucceeded':
      if (state.status !== 'initiated' && state.status !== 'failed') return state;
      return { status: 'succeeded', payment: state.payment, processedEventIds: remember(state, event.data.providerEventId), refunds: [] };
    case 'PaymentMismatch': {
      if (state.status === 'none') return state;
      const processedEventIds = remember(state, event.data.providerEventId);
      if (state.status !== 'initiated' && state.status !== 'failed') return { ...state, processedEventIds };
      const received = { amount: event.data.receivedAmount, currency: event.data.receivedCurrency };
      return { status: 'mismatched', payment: state.payment, processedEventIds, received, refunds: [] };
    }
    case 'PaymentFailed': {
      if (state.status !== 'initiated' && state.status !== 'failed') return state;
      const processedEventIds = remember(state, event.data.providerEventId);
      return { status: 'failed', payment: state.payment, processedEventIds, reason: event.data.reason };
    }
    case 'PaymentCanceled':
      if (state.status === 'none' || isCaptured(state)) return state;
      return { status: 'canceled', payment: state.payment, processedEventIds: remember(state, event.data.providerEventId) };
    case 'RefundRequested': {
      if (!isCaptured(state)) return state;
      const { refundId, amount } = event.data;
      return { ...state, refunds: [...state.refunds, { refundId, amount, status: 'pending' }] };
    }
    case 'RefundSucceeded':
    case 'RefundFailed': {
      if (!isCaptured(state)) return state;
      const { refundId, providerEventId } = event.data;
      const refunds = settle(state.refunds, refundId, event.type === 'RefundSucceeded' ? 'succeeded' : 'failed');
      return { ...state, processedEventIds: remember(state, providerEventId), refunds };
    }
    default:
      return assertNever(event);
  }
}

export const paymentDecider: Decider<PaymentCommand, PaymentEvent, PaymentState> = { initialState, decide, evolve };
