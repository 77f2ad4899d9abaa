import { sql } from 'kysely';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { requestBooking } from '../../src/application/bookings/booking.use-cases.js';
import { createListing } from '../../src/application/listings/listing.use-cases.js';
import { paymentStreamId } from '../../src/domain/payment/payment.decider.js';
import { bookingsProjection } from '../../src/projections/bookings/bookings.projection.js';
import { findBooking } from '../../src/projections/bookings/bookings.queries.js';
import { paymentsProjection } from '../../src/projections/payments/payments.projection.js';
import { generationSchema } from '../../src/projections/runtime/projection.js';
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
    expect(payment).toMatchObject({ status: 'succeeded', received: null, refundedAmount: 10_000 });
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

  describe('a payment captured in another currency (EUR 10,000 asked, JPY 1,000,000 captured) and refunded in full', () => {
    let mismatchedBookingId: string;

    beforeAll(async () => {
      const listingId = (await createListing(h.side, listingInput, as(owner))).id;
      mismatchedBookingId = (await requestBooking(h.side, { listingId, startDate: '2030-03-01', endDate: '2030-03-03' }, as(consumer))).id;
      await pay('pay-e')({ type: 'InitiatePayment', data: { paymentId: 'pay-e', bookingId: mismatchedBookingId, providerIntentId: 'pi_e', amount: 10_000, currency: 'EUR' } });
      await pay('pay-e')({ type: 'RecordPaymentSucceeded', data: { paymentId: 'pay-e', providerEventId: 'evt_e', amount: 1_000_000, currency: 'JPY' } });
      await pay('pay-e')({ type: 'RequestRefund', data: { paymentId: 'pay-e', refundId: 'r-e', amount: 1_000_000 } });
      await pay('pay-e')({ type: 'RecordRefundSucceeded', data: { paymentId: 'pay-e', refundId: 'r-e', providerEventId: 'evt_re' } });
      await h.settle();
    });

    // refundedAmount is what was refunded in the payment's own currency: never yen added up as euros.
    const mismatchedView = {
      id: 'pay-e',
      amount: 10_000,
      currency: 'EUR',
      status: 'mismatched',
      received: { amount: 1_000_000, currency: 'JPY' },
      refundedAmount: 0,
      refunds: [{ refundId: 'r-e', amount: 1_000_000, currency: 'JPY', status: 'succeeded' }],
    };

    it('then the payment shows what was received, and refundedAmount counts no refund in yen', async () => {
      expect(await findPayment(h.db, 'pay-e')).toMatchObject(mismatchedView);
    });

    it("then the booking's payment shows the same", async () => {
      expect((await findBooking(h.db, mismatchedBookingId))?.payment).toMatchObject(mismatchedView);
    });

    it('while a version 2 generation still serves (tables without the received columns), answers received: null', async () => {
      const { rows } = await sql<{ generation: number }>`select generation from projection_checkpoints where name = 'payments' and active`.execute(h.db);
      const tables = sql.table(`${generationSchema('payments', rows[0]?.generation ?? 0)}.payments`);
      const columns = sql.raw('payment_id, booking_id, provider_intent_id, amount, currency, status, failure_reason, mismatch, refunds, initiated_at, updated_at, version');
      await sql`drop view rm_payments.payments`.execute(h.db);
      await sql`create view rm_payments.payments as select ${columns} from ${tables}`.execute(h.db);
      try {
        const olderView = { ...mismatchedView, received: null };
        expect(await findPayment(h.db, 'pay-e')).toMatchObject({ ...olderView, payerId: consumer.id, ownerId: owner.id });
        expect((await findBooking(h.db, mismatchedBookingId))?.payment).toMatchObject(olderView);
      } finally {
        await sql`drop view rm_payments.payments`.execute(h.db);
        await sql`create view rm_payments.payments as select * from ${tables}`.execute(h.db);
      }
      expect(await findPayment(h.db, 'pay-e')).toMatchObject(mismatchedView);
    });
  });

  it('given a mismatch in the asked currency (EUR 100 asked, EUR 150 captured) refunded, then refundedAmount counts the refund', async () => {
    await pay('pay-f')({ type: 'InitiatePayment', data: { paymentId: 'pay-f', bookingId: 'other', providerIntentId: 'pi_f', amount: 100, currency: 'EUR' } });
    await pay('pay-f')({ type: 'RecordPaymentSucceeded', data: { paymentId: 'pay-f', providerEventId: 'evt_f', amount: 150, currency: 'EUR' } });
    await pay('pay-f')({ type: 'RequestRefund', data: { paymentId: 'pay-f', refundId: 'r-f', amount: 150 } });
    await pay('pay-f')({ type: 'RecordRefundSucceeded', data: { paymentId: 'pay-f', refundId: 'r-f', providerEventId: 'evt_rf' } });
    await h.settle();
    expect(await findPayment(h.db, 'pay-f')).toMatchObject({ status: 'mismatched', received: { amount: 150, currency: 'EUR' }, refundedAmount: 150 });
  });

  it('a replayed batch changes nothing', async () => {
    const before = await h.rows('payments', 'payments');
    await h.replay(paymentsProjection);
    expect(await h.rows('payments', 'payments')).toEqual(before);
  });
});
