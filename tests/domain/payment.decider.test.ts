import { describe, expect, it } from 'vitest';
import { fold } from '../../src/domain/shared/decider.js';
import type { PaymentCommand } from '../../src/domain/payment/payment.commands.js';
import { paymentDecider, paymentStreamId, refundable } from '../../src/domain/payment/payment.decider.js';
import type { PaymentEvent } from '../../src/domain/payment/payment.events.js';
import { deciderSpec } from '../support/decider-spec.js';

const spec = deciderSpec(paymentDecider);
const paymentId = 'pay-1';

const initiate = (amount = 30_000): PaymentCommand => ({
  type: 'InitiatePayment',
  data: { paymentId, bookingId: 'booking-1', providerIntentId: 'pi_1', amount, currency: 'EUR' },
});
const initiated: PaymentEvent = {
  type: 'PaymentInitiated',
  data: { paymentId, bookingId: 'booking-1', providerIntentId: 'pi_1', amount: 30_000, currency: 'EUR' },
};
const succeed = (providerEventId = 'evt_s1', amount = 30_000, currency = 'EUR'): PaymentCommand => ({
  type: 'RecordPaymentSucceeded',
  data: { paymentId, providerEventId, amount, currency },
});
const succeeded = (providerEventId = 'evt_s1'): PaymentEvent => ({
  type: 'PaymentSucceeded',
  data: { paymentId, providerEventId, amount: 30_000, currency: 'EUR' },
});
const fail = (providerEventId = 'evt_f1'): PaymentCommand => ({ type: 'RecordPaymentFailed', data: { paymentId, providerEventId, reason: 'card_declined' } });
const failed = (providerEventId = 'evt_f1'): PaymentEvent => ({ type: 'PaymentFailed', data: { paymentId, providerEventId, reason: 'card_declined' } });
const cancel = (providerEventId = 'evt_c1'): PaymentCommand => ({ type: 'RecordPaymentCanceled', data: { paymentId, providerEventId } });
const canceled = (providerEventId = 'evt_c1'): PaymentEvent => ({ type: 'PaymentCanceled', data: { paymentId, providerEventId } });
const refund = (refundId: string, amount: number): PaymentCommand => ({ type: 'RequestRefund', data: { paymentId, refundId, amount } });
const refundRequested = (refundId: string, amount: number): PaymentEvent => ({
  type: 'RefundRequested',
  data: { paymentId, refundId, amount, currency: 'EUR' },
});
const refundSucceed = (refundId: string, providerEventId: string): PaymentCommand => ({
  type: 'RecordRefundSucceeded',
  data: { paymentId, refundId, providerEventId },
});
const refundSucceeded = (refundId: string, providerEventId: string): PaymentEvent => ({
  type: 'RefundSucceeded',
  data: { paymentId, refundId, providerEventId },
});
const refundFail = (refundId: string, providerEventId: string): PaymentCommand => ({
  type: 'RecordRefundFailed',
  data: { paymentId, refundId, providerEventId, reason: 'insufficient_funds' },
});
const refundFailed = (refundId: string, providerEventId: string): PaymentEvent => ({
  type: 'RefundFailed',
  data: { paymentId, refundId, providerEventId, reason: 'insufficient_funds' },
});
const mismatch = (receivedAmount: number, receivedCurrency: string): PaymentEvent => ({
  type: 'PaymentMismatch',
  data: { paymentId, providerEventId: 'evt_s1', expectedAmount: 30_000, expectedCurrency: 'EUR', receivedAmount, receivedCurrency },
});
const captured = [initiated, succeeded()];

describe('payment stream', () => {
  it('is named payment-<id>', () => expect(paymentStreamId('abc')).toBe('payment-abc'));
});

describe('InitiatePayment', () => {
  it('starts a payment', () => spec.given([]).when(initiate()).then([initiated]));
  it('refuses a payment id that exists', () => spec.given([initiated]).when(initiate()).thenFails('already-exists'));
  it.each([0, -1, 1.5])('refuses amount %s', (amount) => spec.given([]).when(initiate(amount)).thenFails('invalid-amount'));
});

describe('RecordPaymentSucceeded', () => {
  it('records the success', () => spec.given([initiated]).when(succeed()).then([succeeded()]));
  it('records a success after a failed attempt', () => spec.given([initiated, failed()]).when(succeed()).then([succeeded()]));
  it('records when the provider captured the money, when it said', () => {
    const capturedAt = '2031-03-01T10:00:00.000Z';
    const command: PaymentCommand = { type: 'RecordPaymentSucceeded', data: { paymentId, providerEventId: 'evt_s1', amount: 30_000, currency: 'EUR', capturedAt } };
    spec.given([initiated]).when(command).then([{ type: 'PaymentSucceeded', data: { paymentId, providerEventId: 'evt_s1', amount: 30_000, currency: 'EUR', capturedAt } }]);
  });
  it('changes nothing when the same provider event comes again', () => spec.given(captured).when(succeed()).then([]));
  it('changes nothing on another success notice', () => spec.given(captured).when(succeed('evt_s2')).then([]));

  it('records a mismatch, not a success, for another amount or currency', () => {
    spec.given([initiated]).when(succeed('evt_s1', 29_000)).then([mismatch(29_000, 'EUR')]);
    spec.given([initiated]).when(succeed('evt_s1', 30_000, 'USD')).then([mismatch(30_000, 'USD')]);
    spec.given([initiated, failed()]).when(succeed('evt_s1', 29_000)).then([mismatch(29_000, 'EUR')]);
    expect(fold(paymentDecider, [initiated, mismatch(29_000, 'EUR')])).toMatchObject({ status: 'mismatched', received: { amount: 29_000, currency: 'EUR' } });
  });

  it('changes nothing on any notice after a mismatch: the intent has captured', () => {
    const afterMismatch = [initiated, mismatch(29_000, 'EUR')];
    spec.given(afterMismatch).when(succeed('evt_s1', 29_000)).then([]);
    spec.given(afterMismatch).when(succeed('evt_s2')).then([]);
    spec.given(afterMismatch).when(fail('evt_f2')).then([]);
    spec.given(afterMismatch).when(cancel()).thenFails('illegal-transition');
  });

  it('refuses a success for a canceled payment', () => spec.given([initiated, canceled()]).when(succeed()).thenFails('illegal-transition'));
  it('refuses a payment that does not exist', () => spec.given([]).when(succeed()).thenFails('not-found'));
});

describe('RecordPaymentFailed', () => {
  it('records the failure', () => spec.given([initiated]).when(fail()).then([failed()]));
  it('records another failed attempt', () => spec.given([initiated, failed()]).when(fail('evt_f2')).then([failed('evt_f2')]));
  it('changes nothing when the same provider event comes again', () => spec.given([initiated, failed()]).when(fail()).then([]));
  it('ignores a failure that arrives after the success', () => {
    spec.given(captured).when(fail()).then([]);
    expect(fold(paymentDecider, captured).status).toBe('succeeded');
  });
  it('ignores a failure after a cancellation', () => spec.given([initiated, canceled()]).when(fail()).then([]));
  it('refuses a payment that does not exist', () => spec.given([]).when(fail()).thenFails('not-found'));
});

describe('RecordPaymentCanceled', () => {
  it('records the cancellation', () => spec.given([initiated]).when(cancel()).then([canceled()]));
  it('records a cancellation after a failed attempt', () => spec.given([initiated, failed()]).when(cancel()).then([canceled()]));
  it('changes nothing when canceled already', () => {
    spec.given([initiated, canceled()]).when(cancel()).then([]);
    spec.given([initiated, canceled()]).when(cancel('evt_c2')).then([]);
  });
  it('refuses to cancel a succeeded payment', () => spec.given(captured).when(cancel()).thenFails('illegal-transition'));
  it('refuses a payment that does not exist', () => spec.given([]).when(cancel()).thenFails('not-found'));
});

describe('RequestRefund', () => {
  it('requests a partial or a full refund', () => {
    spec.given(captured).when(refund('r1', 10_000)).then([refundRequested('r1', 10_000)]);
    spec.given(captured).when(refund('r1', 30_000)).then([refundRequested('r1', 30_000)]);
  });
  it('refuses more than is left after succeeded and pending refunds', () => {
    const refunded = [...captured, refundRequested('r1', 10_000), refundSucceeded('r1', 'evt_r1'), refundRequested('r2', 15_000)];
    spec.given(refunded).when(refund('r3', 5_000)).then([refundRequested('r3', 5_000)]);
    spec.given(refunded).when(refund('r3', 5_001)).thenFails('refund-exceeds-captured');
  });
  it('does not count failed refunds', () =>
    spec
      .given([...captured, refundRequested('r1', 30_000), refundFailed('r1', 'evt_r1')])
      .when(refund('r2', 30_000))
      .then([refundRequested('r2', 30_000)]));
  it('is already true when the same refund is requested again', () => spec.given([...captured, refundRequested('r1', 10_000)]).when(refund('r1', 10_000)).then([]));
  it('refuses a refund id reused for another amount', () =>
    spec.given([...captured, refundRequested('r1', 10_000)]).when(refund('r1', 12_000)).thenFails('refund-id-conflict'));
  it.each([0, -5, 0.5])('refuses amount %s', (amount) => spec.given(captured).when(refund('r1', amount)).thenFails('invalid-amount'));
  it('refunds what a mismatch received, in its currency, and no more', () => {
    const inDollars = [initiated, mismatch(24_000, 'USD')];
    spec.given(inDollars).when(refund('r1', 24_000)).then([{ type: 'RefundRequested', data: { paymentId, refundId: 'r1', amount: 24_000, currency: 'USD' } }]);
    spec.given(inDollars).when(refund('r1', 24_001)).thenFails('refund-exceeds-captured');
    const refunded = [...inDollars, { type: 'RefundRequested', data: { paymentId, refundId: 'r1', amount: 24_000, currency: 'USD' } } as const];
    const state = fold(paymentDecider, [...refunded, refundSucceeded('r1', 'evt_r1')]);
    expect(state).toMatchObject({ status: 'mismatched', refunds: [{ refundId: 'r1', status: 'succeeded' }] });
    expect(state.status === 'mismatched' && refundable(state)).toBe(0);
  });
  it('refuses to refund a mismatch in a currency that is no ISO code', () =>
    spec.given([initiated, mismatch(100, 'euro')]).when(refund('r1', 100)).thenFails('unknown-currency'));
  it('refuses a payment that did not succeed', () => {
    spec.given([initiated]).when(refund('r1', 100)).thenFails('illegal-transition');
    spec.given([initiated, failed()]).when(refund('r1', 100)).thenFails('illegal-transition');
    spec.given([initiated, canceled()]).when(refund('r1', 100)).thenFails('illegal-transition');
  });
  it('refuses a payment that does not exist', () => spec.given([]).when(refund('r1', 100)).thenFails('not-found'));
});

describe('RecordRefundSucceeded', () => {
  const pending = [...captured, refundRequested('r1', 10_000)];
  it('records the refund', () => spec.given(pending).when(refundSucceed('r1', 'evt_r1')).then([refundSucceeded('r1', 'evt_r1')]));
  it('changes nothing when the same provider event comes again', () =>
    spec.given([...pending, refundSucceeded('r1', 'evt_r1')]).when(refundSucceed('r1', 'evt_r1')).then([]));
  it('is already true on another success notice', () =>
    spec.given([...pending, refundSucceeded('r1', 'evt_r1')]).when(refundSucceed('r1', 'evt_r2')).then([]));
  it('refuses a refund that failed', () =>
    spec.given([...pending, refundFailed('r1', 'evt_r1')]).when(refundSucceed('r1', 'evt_r2')).thenFails('illegal-transition'));
  it('refuses an unknown refund', () => {
    spec.given(pending).when(refundSucceed('r9', 'evt_r1')).thenFails('not-found');
    spec.given([initiated]).when(refundSucceed('r1', 'evt_r1')).thenFails('not-found');
    spec.given([]).when(refundSucceed('r1', 'evt_r1')).thenFails('not-found');
  });
});

describe('RecordRefundFailed', () => {
  const pending = [...captured, refundRequested('r1', 10_000)];
  it('records the failure', () => spec.given(pending).when(refundFail('r1', 'evt_r1')).then([refundFailed('r1', 'evt_r1')]));
  it('changes nothing when the same provider event comes again', () =>
    spec.given([...pending, refundFailed('r1', 'evt_r1')]).when(refundFail('r1', 'evt_r1')).then([]));
  it('is already true on another failure notice', () => spec.given([...pending, refundFailed('r1', 'evt_r1')]).when(refundFail('r1', 'evt_r2')).then([]));
  it('records a failure after a success (Stripe fails refunds it reported as succeeded), and the amount is refundable again', () => {
    spec.given([...pending, refundSucceeded('r1', 'evt_r1')]).when(refundFail('r1', 'evt_r2')).then([refundFailed('r1', 'evt_r2')]);
    const state = fold(paymentDecider, [...pending, refundSucceeded('r1', 'evt_r1'), refundFailed('r1', 'evt_r2')]);
    expect(state.status === 'succeeded' && refundable(state)).toBe(30_000);
  });
  it('refuses an unknown refund', () => {
    spec.given(pending).when(refundFail('r9', 'evt_r1')).thenFails('not-found');
    spec.given([]).when(refundFail('r1', 'evt_r1')).thenFails('not-found');
  });
});
