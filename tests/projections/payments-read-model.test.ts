import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { requestBooking } from '../../src/application/bookings/booking.use-cases.js';
import { createListing } from '../../src/application/listings/listing.use-cases.js';
import { paymentStreamId } from '../../src/domain/payment/payment.decider.js';
import { bookingsProjection } from '../../src/projections/bookings/bookings.projection.js';
import { findBooking } from '../../src/projections/bookings/bookings.queries.js';
import { paymentsProjection } from '../../src/projections/payments/payments.projection.js';
import { findPayment } from '../../src/projections/payments/payments.queries.js';
import { as, consumer, listingInput, owner } from '../support/command-side.js';
import { startReadModels, type ReadModelHarness } from './support/read-models.harness.js';
import { payBooking, system } from './support/scenarios.js';

describe('payments read model', () => {
  let h: ReadModelHarness;
  let bookingId: string;
  const pay = (paymentId: string) => (command: Parameters<ReadModelHarness['side']['handlers']['payment']['handle']>[1]) =>
    h.side.handlers.payment.handle(paymentStreamId(paymentId), command, as(system));

  beforeAll(async () => {
    h = await startReadModels([paymentsProjection, bookingsProjection]);
    const listingId = (await createListing(h.side, listingInput, as(owner))).id;
    bookingId = (await requestBooking(h.side, { listingId, startDate: '2030-02-01', endDate: '2030-02-03' }, as(consumer))).id;
  });
  afterAll(() => h.close());

  it('given PaymentInitiated then PaymentFailed, then a failed payment of the booking, with the reason', async () => {
    await pay('pay-a')({ type: 'InitiatePayment', data: { paymentId: 'pay-a', bookingId, providerIntentId: 'pi_a', amount: 24_000, currency: 'EUR' } });
    await pay('pay-a')({ type: 'RecordPaymentFailed', data: { paymentId: 'pay-a', providerEventId: 'evt_1', reason: 'card_declined' } });
    await h.settle();
    expect(await findPayment(h.db, 'pay-a')).toMatchObject({
      id: 'pay-a',
      bookingId,
      amount: 24_000,
      status: 'failed',
      failureReason: 'card_declined',
      refunds: [],
      payerId: consumer.id,
      ownerId: owner.id,
    });
    expect((await findBooking(h.db, bookingId))?.payment).toMatchObject({ id: 'pay-a', status: 'failed' });
  });

  it('given a second payment that succeeds and a refund, then the booking shows the latest payment and the refunds', async () => {
    h.clock.advance(1000);
    await payBooking(h.side, bookingId, 'pay-b');
    await pay('pay-b')({ type: 'RequestRefund', data: { paymentId: 'pay-b', refundId: 'r-1', amount: 10_000 } });
    await pay('pay-b')({ type: 'RecordRefundSucceeded', data: { paymentId: 'pay-b', refundId: 'r-1', providerEventId: 'evt_r1' } });
    await pay('pay-b')({ type: 'RequestRefund', data: { paymentId: 'pay-b', refundId: 'r-2', amount: 5_000 } });
    await pay('pay-b')({ type: 'RecordRefundFailed', data: { paymentId: 'pay-b', refundId: 'r-2', providerEventId: 'evt_r2', reason: 'expired_card' } });
    await pay('pay-b')({ type: 'RecordPaymentSucceeded', data: { paymentId: 'pay-b', providerEventId: 'evt_x', amount: 1, currency: 'EUR' } });
    await h.settle();
    const payment = await findPayment(h.db, 'pay-b');
    expect(payment).toMatchObject({ status: 'succeeded', refundedAmount: 10_000 });
    expect(payment?.refunds.map((r) => [r.refundId, r.amount, r.status, r.failureReason])).toEqual([
      ['r-1', 10_000, 'succeeded', null],
      ['r-2', 5_000, 'failed', 'expired_card'],
    ]);
    expect((await findBooking(h.db, bookingId))?.payment).toMatchObject({ id: 'pay-b', status: 'succeeded', refundedAmount: 10_000 });
  });

  it('given PaymentCanceled on an open payment, then canceled', async () => {
    await pay('pay-c')({ type: 'InitiatePayment', data: { paymentId: 'pay-c', bookingId: 'other', providerIntentId: 'pi_c', amount: 100, currency: 'EUR' } });
    await pay('pay-c')({ type: 'RecordPaymentCanceled', data: { paymentId: 'pay-c', providerEventId: 'evt_c' } });
    await h.settle();
    expect(await findPayment(h.db, 'pay-c')).toMatchObject({ status: 'canceled', payerId: null, ownerId: null });
  });

  it('given PaymentMismatch and its refund, then mismatched, with the refund in the currency received', async () => {
    await pay('pay-d')({ type: 'InitiatePayment', data: { paymentId: 'pay-d', bookingId: 'other', providerIntentId: 'pi_d', amount: 100, currency: 'EUR' } });
    await pay('pay-d')({ type: 'RecordPaymentSucceeded', data: { paymentId: 'pay-d', providerEventId: 'evt_d', amount: 120, currency: 'USD' } });
    await pay('pay-d')({ type: 'RequestRefund', data: { paymentId: 'pay-d', refundId: 'r-d', amount: 120 } });
    await h.settle();
    expect(await findPayment(h.db, 'pay-d')).toMatchObject({ status: 'mismatched', mismatch: true, refunds: [{ refundId: 'r-d', amount: 120, currency: 'USD', status: 'pending' }] });
  });

  it('a replayed batch changes nothing', async () => {
    const before = await h.rows('payments', 'payments');
    await h.replay(paymentsProjection);
    expect(await h.rows('payments', 'payments')).toEqual(before);
  });
});
