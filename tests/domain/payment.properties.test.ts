import { fc, test } from '@fast-check/vitest';
import { expect } from 'vitest';
import { DomainError } from '../../src/domain/shared/domain-error.js';
import type { PaymentCommand } from '../../src/domain/payment/payment.commands.js';
import { capturedMoney, committedRefunds, isCaptured, paymentDecider, type PaymentState } from '../../src/domain/payment/payment.decider.js';
import type { PaymentEvent } from '../../src/domain/payment/payment.events.js';

const paymentId = 'pay-p';
const providerEventId = fc.constantFrom('evt_1', 'evt_2', 'evt_3', 'evt_4', 'evt_5', 'evt_6');
const refundId = fc.constantFrom('r1', 'r2', 'r3', 'r4', 'r5');
const captured = (state: PaymentState) => (state.status === 'none' ? 1_000 : isCaptured(state) ? capturedMoney(state).amount : state.payment.amount);

/** A command built against the current state, so that amounts are mostly plausible. */
type Build = (state: PaymentState) => PaymentCommand;

const initiate: fc.Arbitrary<Build> = fc
  .constantFrom(1_000, 30_000)
  .map((amount) => () => ({ type: 'InitiatePayment', data: { paymentId, bookingId: 'booking-1', providerIntentId: 'pi_1', amount, currency: 'EUR' } }));
const succeed: fc.Arbitrary<Build> = fc
  .record({ providerEventId, off: fc.constantFrom(0, 0, 0, -1), currency: fc.constantFrom('EUR', 'EUR', 'EUR', 'USD') })
  .map(({ providerEventId, off, currency }) => (state) => ({
    type: 'RecordPaymentSucceeded',
    data: { paymentId, providerEventId, amount: captured(state) + off, currency },
  }));
const fail: fc.Arbitrary<Build> = providerEventId.map((providerEventId) => () => ({
  type: 'RecordPaymentFailed',
  data: { paymentId, providerEventId, reason: 'card_declined' },
}));
const cancel: fc.Arbitrary<Build> = providerEventId.map((providerEventId) => () => ({ type: 'RecordPaymentCanceled', data: { paymentId, providerEventId } }));
const refund: fc.Arbitrary<Build> = fc
  .record({ refundId, share: fc.constantFrom(0.1, 0.25, 0.4, 0.5, 0.75, 1, 1.1) })
  .map(({ refundId, share }) => (state) => ({ type: 'RequestRefund', data: { paymentId, refundId, amount: Math.max(1, Math.round(captured(state) * share)) } }));
const refundOutcome: fc.Arbitrary<Build> = fc
  .record({ refundId, providerEventId, succeeded: fc.boolean() })
  .map(({ refundId, providerEventId, succeeded }) => () =>
    succeeded
      ? { type: 'RecordRefundSucceeded', data: { paymentId, refundId, providerEventId } }
      : { type: 'RecordRefundFailed', data: { paymentId, refundId, providerEventId, reason: 'declined' } },
  );

const builds = fc.tuple(
  initiate,
  fc.array(fc.oneof({ weight: 3, arbitrary: succeed }, fail, cancel, { weight: 5, arbitrary: refund }, { weight: 3, arbitrary: refundOutcome }, initiate), {
    maxLength: 30,
  }),
);

/** Where one event may take each state: never back to `initiated`, never out of `succeeded`, `mismatched` or `canceled`. */
const next: Record<PaymentState['status'], readonly PaymentState['status'][]> = {
  none: ['initiated'],
  initiated: ['initiated', 'succeeded', 'mismatched', 'failed', 'canceled'],
  failed: ['failed', 'succeeded', 'mismatched', 'canceled'],
  succeeded: ['succeeded'],
  mismatched: ['mismatched'],
  canceled: ['canceled'],
};

function decideOrKeep(command: PaymentCommand, state: PaymentState): PaymentEvent[] | undefined {
  try {
    return paymentDecider.decide(command, state);
  } catch (error) {
    if (error instanceof DomainError) return undefined;
    throw error;
  }
}

test.prop([builds])('refunds never exceed what was captured, states only move forward, provider events count once', ([first, rest]) => {
  let state = paymentDecider.initialState;
  for (const build of [first, ...rest]) {
    const command = build(state);
    const events = decideOrKeep(command, state);
    if (!events) continue;
    for (const event of events) {
      const after = paymentDecider.evolve(state, event);
      expect(next[state.status], `${state.status} → ${after.status} by ${event.type}`).toContain(after.status);
      state = after;
    }
    if (state.status === 'none') continue;
    expect(new Set(state.processedEventIds).size).toBe(state.processedEventIds.length);
    if (isCaptured(state)) expect(committedRefunds(state.refunds)).toBeLessThanOrEqual(capturedMoney(state).amount);
    // Whatever came from the provider, hearing it again changes nothing.
    if (command.type.startsWith('Record')) expect(paymentDecider.decide(command, state)).toEqual([]);
  }
});
