import { randomUUID } from 'node:crypto';
import { afterAll, beforeAll, beforeEach, describe, expect, it } from 'vitest';
import { cancelBooking, expireUnpaidBooking, requestBooking } from '../../src/application/bookings/booking.use-cases.js';
import type { CommandSide } from '../../src/application/command-handlers.js';
import { createListing } from '../../src/application/listings/listing.use-cases.js';
import { refundPayment, startPayment, type PaymentSide } from '../../src/application/payments/payment.use-cases.js';
import { paymentProviderActor, recordProviderEvent, unmatchedStreamId } from '../../src/application/payments/provider-events.js';
import type { EventStore, RecordedEvent } from '../../src/application/ports/event-store.js';
import { comparePositions, type Position } from '../../src/application/ports/position.js';
import { HoldExpiryProcess } from '../../src/application/process-managers/hold-expiry.process.js';
import { PaymentProcess, paymentProcessEventTypes, paymentProcessName } from '../../src/application/process-managers/payment.process.js';
import { RefundReconciliation } from '../../src/application/process-managers/refund-reconciliation.process.js';
import type { Actor } from '../../src/domain/shared/actor.js';
import { createKysely } from '../../src/infrastructure/postgres/database.js';
import { PgProcessCheckpoints, type ProcessCheckpointTables } from '../../src/infrastructure/process-checkpoints/pg-process-checkpoints.js';
import { ProviderUnavailableError, type PaymentGateway } from '../../src/application/ports/payment-gateway.js';
import { StripePaymentGateway } from '../../src/infrastructure/stripe/stripe-payment-gateway.js';
import { startBackend, type TestBackend } from '../http/support/command-api.fixture.js';
import { as, createTestSide, eventTypes, fakeClock, listingInput, streamEvents } from '../support/command-side.js';
import { trackingStore } from '../projections/support/read-models.harness.js';
import { FakeStripeServer } from '../stripe/support/fake-stripe-server.js';
import { sleep } from '../../src/application/sleep.js';

const person = (roles: Actor['roles']): Actor => ({ id: randomUUID(), roles });
const owner = person(['OWNER']);
const consumer = person(['CONSUMER']);
const webhook = { actor: paymentProviderActor, requestId: 'webhook', correlationId: 'webhook', causationId: 'webhook' };

describe('payment process manager (booking ⇄ payment)', () => {
  let backend: TestBackend;
  let stripe: FakeStripeServer;
  let clock: ReturnType<typeof fakeClock>;
  let side: CommandSide;
  let payments: PaymentSide;
  let process: PaymentProcess;
  let listingId: string;
  let cursor: Position | undefined;
  let tracked: ReturnType<typeof trackingStore>;
  let month = 0;

  /**
   * Hands every new event the process follows to it, in log order, until the log is exhausted.
   * The store shows an event only once no older transaction anywhere on the server is still open
   * (other suites run beside this one), so it waits until it has seen all that was appended.
   */
  async function drain(handle = true): Promise<void> {
    while (!cursor || comparePositions(cursor, tracked.head()) < 0) {
      let seen = false;
      for await (const event of backend.eventStore.readAll(cursor ? { after: cursor } : {})) {
        if (handle && paymentProcessEventTypes.includes(event.type)) await process.handle(event);
        cursor = event.position;
        seen = true;
      }
      if (!seen) await sleep(10);
    }
  }

  /** A fresh booking starting in 3 days (so a consumer's cancellation gets 50 %; 1 day: nothing), with its payment started. */
  async function bookAndStartPaying(daysAhead = 3) {
    month += 1;
    const startDate = new Date(clock.now().getTime() + daysAhead * 86_400_000).toISOString().slice(0, 10);
    const endDate = new Date(clock.now().getTime() + (daysAhead + 2) * 86_400_000).toISOString().slice(0, 10);
    const listing = month === 1 ? listingId : (await createListing(side, listingInput, as(owner))).id;
    const booking = await requestBooking(side, { listingId: listing, startDate, endDate }, as(consumer));
    const started = await startPayment(payments, booking.id, as(consumer));
    const intentId = stripe.intentsFor(started.paymentId)[0]?.id ?? '';
    return { bookingId: booking.id, listingId: listing, paymentId: started.paymentId, intentId };
  }

  async function pay(paymentId: string, intentId: string, amount = 24_000, currency = 'EUR'): Promise<void> {
    stripe.setIntentStatus(intentId, 'succeeded');
    await recordProviderEvent(payments, { kind: 'payment-succeeded', eventId: `evt_${randomUUID()}`, paymentId, intentId, amount, currency }, webhook);
  }

  /** The customer pays at Stripe `at`, and its webhook (an event Stripe created then) is recorded now. */
  async function payAt(paymentId: string, intentId: string, at: Date): Promise<void> {
    stripe.setIntentStatus(intentId, 'succeeded', at);
    const capturedAt = new Date(Math.floor(at.getTime() / 1000) * 1000).toISOString();
    await recordProviderEvent(payments, { kind: 'payment-succeeded', eventId: `evt_${randomUUID()}`, paymentId, intentId, amount: 24_000, currency: 'EUR', capturedAt }, webhook);
  }

  /** `ms` later, the hold-expiry process sweeps the whole log, and the payment process follows. */
  function sweepHoldsAfter(ms: number): Promise<void> {
    clock.advance(ms);
    return sweepWholeLog(new HoldExpiryProcess({ eventStore: backend.eventStore, side, orphanSlotGraceMs: 60_000 }));
  }

  /** `ms` later, the refund reconciliation sweeps the whole log (15 min grace), and the payment process follows. */
  function reconcileRefundsAfter(ms: number): Promise<void> {
    clock.advance(ms);
    const gateway = side.paymentGateway?.();
    if (!gateway) throw new Error('the test side has a gateway');
    return sweepWholeLog(new RefundReconciliation({ eventStore: backend.eventStore, side, gateway, graceMs: 15 * 60_000 }));
  }

  async function sweepWholeLog(sweeper: { observe(event: RecordedEvent): void; sweep(): Promise<unknown> }): Promise<void> {
    // As `drain`: the newest events show only once no older transaction on the server is open,
    // and a sweep that has not seen this test's hold (or its payment) decides on an older log.
    let seen: Position | undefined;
    while (!seen || comparePositions(seen, tracked.head()) < 0) {
      const before = seen;
      for await (const event of backend.eventStore.readAll(seen ? { after: seen } : {})) {
        sweeper.observe(event);
        seen = event.position;
      }
      if (seen === before) await sleep(10);
    }
    await sweeper.sweep();
    await drain();
  }

  const bookingStatus = async (bookingId: string) => (await side.handlers.booking.read(`booking-${bookingId}`)).state.status;

  beforeAll(async () => {
    backend = await startBackend();
    tracked = trackingStore(backend.eventStore);
    stripe = await new FakeStripeServer().start();
  });
  afterAll(async () => {
    await stripe.stop();
    await backend.close();
  });
  beforeEach(async () => {
    stripe.reset();
    clock = fakeClock('2031-03-01T10:00:00Z');
    const gateway = StripePaymentGateway.fromOptions({ secretKey: 'sk_test_fake', apiBase: stripe.apiBase, timeoutMs: 2_000 });
    side = { ...createTestSide(tracked.store, clock, 15), paymentGateway: () => gateway, providerEventStore: tracked.store };
    payments = { side, eventStore: tracked.store, gateway };
    process = new PaymentProcess({ eventStore: tracked.store, side, gateway, checkpoints: new PgProcessCheckpoints(createKysely(backend.pool)) });
    month = 0;
    listingId = (await createListing(side, listingInput, as(owner))).id;
    // Each test starts from the end of the log: earlier tests' events are theirs.
    await drain(false);
  });

  it('payment succeeded → booking paid, dates booked firm, booking confirmed', async () => {
    const { bookingId, paymentId, intentId, listingId: listing } = await bookAndStartPaying();
    await pay(paymentId, intentId);
    await drain();

    expect(await eventTypes(backend.eventStore, `booking-${bookingId}`)).toEqual(['BookingRequested', 'BookingPaid', 'BookingConfirmed']);
    expect(await eventTypes(backend.eventStore, `listingCalendar-${listing}`)).toEqual(['DatesHeld', 'DatesBooked']);
  });

  it('payment failed → still held; the hold expires → booking expired, dates released, intent canceled', async () => {
    const { bookingId, paymentId, intentId, listingId: listing } = await bookAndStartPaying();
    await recordProviderEvent(payments, { kind: 'payment-failed', eventId: `evt_${randomUUID()}`, paymentId, intentId, reason: 'card_declined' }, webhook);
    await drain();
    expect(await bookingStatus(bookingId)).toBe('requested');

    await sweepHoldsAfter(16 * 60_000);

    expect(await bookingStatus(bookingId)).toBe('expired');
    expect(await eventTypes(backend.eventStore, `listingCalendar-${listing}`)).toEqual(['DatesHeld', 'DatesReleased']);
    expect(stripe.intents.get(intentId)?.status).toBe('canceled');
    expect(stripe.requestsTo('cancel-intent').map((r) => r.path)).toEqual([`/v1/payment_intents/${intentId}/cancel`]);
    expect(await eventTypes(backend.eventStore, `payment-${paymentId}`)).toEqual(['PaymentInitiated', 'PaymentFailed', 'PaymentCanceled']);
  });

  it('bank debit still processing when the hold expires, then the debit fails → the intent, payable again, is canceled; a later success captures nothing', async () => {
    // Given a consumer paying by bank debit: the intent is processing, and Stripe will not cancel it yet,
    const { bookingId, paymentId, intentId } = await bookAndStartPaying();
    stripe.setIntentStatus(intentId, 'processing');
    await sweepHoldsAfter(16 * 60_000);
    expect(await bookingStatus(bookingId)).toBe('expired');
    expect(stripe.intents.get(intentId)?.status).toBe('processing');
    const refusedCancels = stripe.requestsTo('cancel-intent').length;

    // when the debit fails, which makes the intent payable again (with a card, say),
    stripe.setIntentStatus(intentId, 'requires_payment_method');
    await recordProviderEvent(payments, { kind: 'payment-failed', eventId: `evt_${randomUUID()}`, paymentId, intentId, reason: 'insufficient_funds' }, webhook);
    await drain();

    // then the process cancels it at Stripe, and records it canceled;
    expect(stripe.requestsTo('cancel-intent').slice(refusedCancels).map((r) => r.path)).toEqual([`/v1/payment_intents/${intentId}/cancel`]);
    expect(stripe.intents.get(intentId)?.status).toBe('canceled');
    expect(await eventTypes(backend.eventStore, `payment-${paymentId}`)).toEqual(['PaymentInitiated', 'PaymentFailed', 'PaymentCanceled']);

    // and a success reported afterwards is not recorded as money taken, nor refunded.
    await recordProviderEvent(payments, { kind: 'payment-succeeded', eventId: `evt_${randomUUID()}`, paymentId, intentId, amount: 24_000, currency: 'EUR' }, webhook);
    await drain();
    expect((await side.handlers.payment.read(`payment-${paymentId}`)).state.status).toBe('canceled');
    expect(stripe.refundsFor(paymentId)).toEqual([]);
  });

  // Before, the expiry looked at our log only: the booking expired, and the success learned from
  // Stripe afterwards was refunded in full. The consumer had paid in time.
  it('paid at Stripe within the hold, its webhook never came; the hold expires → the expiry asks Stripe, records the success, and the booking is confirmed, not refunded', async () => {
    const { bookingId, paymentId, intentId, listingId: listing } = await bookAndStartPaying();
    stripe.setIntentStatus(intentId, 'succeeded', new Date(clock.now().getTime() + 60_000));

    await sweepHoldsAfter(16 * 60_000);

    expect(await eventTypes(backend.eventStore, `booking-${bookingId}`)).toEqual(['BookingRequested', 'BookingPaid', 'BookingConfirmed']);
    expect(await eventTypes(backend.eventStore, `listingCalendar-${listing}`)).toEqual(['DatesHeld', 'DatesBooked']);
    expect(await eventTypes(backend.eventStore, `payment-${paymentId}`)).toEqual(['PaymentInitiated', 'PaymentSucceeded']);
    expect(stripe.refundsFor(paymentId)).toEqual([]);
  });

  it('another amount taken at Stripe, its webhook never came; the hold expires → the mismatch is recorded, the booking expires, and what was taken goes back', async () => {
    const { bookingId, paymentId, intentId } = await bookAndStartPaying();
    stripe.setIntentStatus(intentId, 'succeeded');
    const intent = stripe.intents.get(intentId);
    if (intent) intent.amount_received = 100;

    await sweepHoldsAfter(16 * 60_000);

    expect(await bookingStatus(bookingId)).toBe('expired');
    expect((await side.handlers.payment.read(`payment-${paymentId}`)).state.status).toBe('mismatched');
    expect(stripe.refundsFor(paymentId)).toEqual([expect.objectContaining({ amount: 100, status: 'succeeded' })]);
  });

  // Before, the expiry waited on Stripe as long as its SDK would (four tries, 20 s each in
  // production) and threw when it failed or refused, so the sweep tried again on every round and
  // the lapsed booking's intent stayed payable until Stripe answered.
  it.each([
    ['answers 500 (an outage)', { kind: 'status', status: 500 } as const],
    ['refuses the look (400)', { kind: 'status', status: 400 } as const],
    ['does not answer', { kind: 'delay', ms: 3_600 } as const],
  ])('Stripe %s when the hold expires → the booking expires in that one sweep, on our log alone, and soon', async (_, fault) => {
    const { bookingId, paymentId, intentId } = await bookAndStartPaying();
    stripe.inject('retrieve-intent', fault, fault, fault, fault);

    const started = Date.now();
    await sweepHoldsAfter(16 * 60_000);

    expect(Date.now() - started).toBeLessThan(4_500);
    expect(await bookingStatus(bookingId)).toBe('expired');
    expect(stripe.intents.get(intentId)?.status).toBe('canceled');
    expect(await eventTypes(backend.eventStore, `payment-${paymentId}`)).toEqual(['PaymentInitiated', 'PaymentCanceled']);
  });

  it('paid at Stripe after the hold lapsed, its webhook not come yet, when the sweep asks → the booking expires, and what was taken goes back in full', async () => {
    const { bookingId, paymentId, intentId } = await bookAndStartPaying();
    const holdExpiresAt = clock.now().getTime() + 15 * 60_000;
    stripe.setIntentStatus(intentId, 'succeeded', new Date(holdExpiresAt + 30_000));

    await sweepHoldsAfter(16 * 60_000);

    expect(await bookingStatus(bookingId)).toBe('expired');
    expect(await eventTypes(backend.eventStore, `payment-${paymentId}`)).toEqual(['PaymentInitiated', 'PaymentSucceeded', 'RefundRequested', 'RefundSucceeded']);
    expect(stripe.refundsFor(paymentId)).toEqual([expect.objectContaining({ amount: 24_000, status: 'succeeded' })]);
  });

  // Before, the look at expiry dropped a success the payment's rules refused without a trace,
  // where the webhook keeps every such event as unmatched for reconciliation.
  it('a success learned at expiry that the payment refuses (canceled while Stripe was asked) is kept as unmatched, and the booking expires', async () => {
    const { bookingId, paymentId, intentId } = await bookAndStartPaying();
    stripe.setIntentStatus(intentId, 'succeeded', new Date(clock.now().getTime() + 60_000));
    const stripeGateway = side.paymentGateway?.();
    if (!stripeGateway) throw new Error('the test side has a gateway');
    const racing: PaymentGateway = {
      name: stripeGateway.name,
      createIntent: (request) => stripeGateway.createIntent(request),
      cancelIntent: (request) => stripeGateway.cancelIntent(request),
      createRefund: (request) => stripeGateway.createRefund(request),
      retrieveRefund: (request, quick) => stripeGateway.retrieveRefund(request, quick),
      retrieveIntent: async (id, quick) => {
        const canceled = { type: 'RecordPaymentCanceled', data: { paymentId, providerEventId: 'evt_raced' } } as const;
        await side.handlers.payment.handle(`payment-${paymentId}`, canceled, as(consumer));
        return stripeGateway.retrieveIntent(id, quick);
      },
    };
    clock.advance(16 * 60_000);

    const lapsed = await expireUnpaidBooking({ ...side, paymentGateway: () => racing }, bookingId, as(consumer));

    expect(lapsed.paid).toBe(false);
    expect(await bookingStatus(bookingId)).toBe('expired');
    const [kept] = await streamEvents(backend.eventStore, unmatchedStreamId(`gateway:succeeded:${intentId}`));
    expect(kept).toMatchObject({ type: 'ProviderEventUnmatched', data: { eventType: 'payment-succeeded', objectId: intentId } });
  });

  it('paid at Stripe, its webhook never came; the consumer starts paying again → 409 already-paid, and the booking is confirmed', async () => {
    const { bookingId, paymentId, intentId } = await bookAndStartPaying();
    stripe.setIntentStatus(intentId, 'succeeded');

    await expect(startPayment(payments, bookingId, as(consumer))).rejects.toMatchObject({ code: 'already-paid' });
    await drain();
    expect(await eventTypes(backend.eventStore, `payment-${paymentId}`)).toEqual(['PaymentInitiated', 'PaymentSucceeded']);
    expect(await bookingStatus(bookingId)).toBe('confirmed');
  });

  it('another amount taken at Stripe, its webhook never came; the consumer starts paying again → the mismatch is recorded and refunded, and that start makes the next attempt', async () => {
    const { bookingId, paymentId, intentId } = await bookAndStartPaying();
    stripe.setIntentStatus(intentId, 'succeeded');
    const intent = stripe.intents.get(intentId);
    if (intent) intent.amount_received = 100;

    const again = await startPayment(payments, bookingId, as(consumer));
    expect(again).toMatchObject({ status: 'initiated', created: true });
    expect(again.paymentId).not.toBe(paymentId);
    expect((await side.handlers.payment.read(`payment-${paymentId}`)).state.status).toBe('mismatched');
    await drain();
    expect(stripe.refundsFor(paymentId)).toEqual([expect.objectContaining({ amount: 100, status: 'succeeded' })]);
    expect(await bookingStatus(bookingId)).toBe('requested');

    await pay(again.paymentId, stripe.intentsFor(again.paymentId)[0]?.id ?? '');
    await drain();
    expect(await bookingStatus(bookingId)).toBe('confirmed');
  });

  it('confirmed booking cancelled by its consumer 3 days ahead → 50 % refunded at Stripe and recorded', async () => {
    const { bookingId, paymentId, intentId } = await bookAndStartPaying();
    await pay(paymentId, intentId);
    await drain();
    await cancelBooking(side, bookingId, { reason: 'plans changed' }, as(consumer));
    await drain();

    expect(stripe.refundsFor(paymentId)).toEqual([expect.objectContaining({ amount: 12_000, status: 'succeeded' })]);
    expect(await eventTypes(backend.eventStore, `payment-${paymentId}`)).toEqual(['PaymentInitiated', 'PaymentSucceeded', 'RefundRequested', 'RefundSucceeded']);
    const { state } = await side.handlers.payment.read(`payment-${paymentId}`);
    expect(state).toMatchObject({ status: 'succeeded', refunds: [{ amount: 12_000, status: 'succeeded' }] });
  });

  // Before, a refund Stripe answered `pending` waited on its webhook alone: lost (the endpoint down
  // past Stripe's three days of retries, a webhook secret rotated wrongly), it stayed pending for ever.
  it('a refund Stripe answers pending whose webhook never comes → once Stripe has it succeeded, the reconciliation sweep records it so', async () => {
    const { bookingId, paymentId, intentId } = await bookAndStartPaying();
    await pay(paymentId, intentId);
    await drain();
    stripe.refundStatus = 'pending';
    await cancelBooking(side, bookingId, { reason: 'plans changed' }, as(consumer));
    await drain();
    const payment = async () => (await side.handlers.payment.read(`payment-${paymentId}`)).state;
    expect(await payment()).toMatchObject({ refunds: [{ amount: 12_000, status: 'pending' }] });

    await reconcileRefundsAfter(16 * 60_000);
    expect(await payment()).toMatchObject({ refunds: [{ amount: 12_000, status: 'pending' }] });

    for (const refund of stripe.refundsFor(paymentId)) refund.status = 'succeeded';
    await reconcileRefundsAfter(31 * 60_000);

    expect(await payment()).toMatchObject({ refunds: [{ amount: 12_000, status: 'succeeded' }] });
    expect(await eventTypes(backend.eventStore, `payment-${paymentId}`)).toEqual(['PaymentInitiated', 'PaymentSucceeded', 'RefundRequested', 'RefundSucceeded']);
    expect(stripe.refundsFor(paymentId)).toHaveLength(1);
  });

  it('a success for another amount → all of it refunded; the booking stays payable, and a new attempt pays and confirms it', async () => {
    const { bookingId, paymentId, intentId } = await bookAndStartPaying();
    await pay(paymentId, intentId, 23_000);
    await drain();

    expect(await bookingStatus(bookingId)).toBe('requested');
    expect(stripe.refundsFor(paymentId)).toEqual([expect.objectContaining({ amount: 23_000, status: 'succeeded' })]);
    expect(await eventTypes(backend.eventStore, `payment-${paymentId}`)).toEqual(['PaymentInitiated', 'PaymentMismatch', 'RefundRequested', 'RefundSucceeded']);

    const again = await startPayment(payments, bookingId, as(consumer));
    expect(again).toMatchObject({ status: 'initiated', created: true });
    expect(again.paymentId).not.toBe(paymentId);
    await pay(again.paymentId, stripe.intentsFor(again.paymentId)[0]?.id ?? '');
    await drain();
    expect(await bookingStatus(bookingId)).toBe('confirmed');
  });

  it('a success in another currency → what was received refunded, in that currency', async () => {
    const { paymentId, intentId } = await bookAndStartPaying();
    await pay(paymentId, intentId, 26_000, 'USD');
    await drain();

    expect(stripe.refundsFor(paymentId)).toEqual([expect.objectContaining({ amount: 26_000 })]);
    expect((await side.handlers.payment.read(`payment-${paymentId}`)).state).toMatchObject({
      status: 'mismatched',
      refunds: [{ amount: 26_000, status: 'succeeded' }],
    });
    const requested = (await streamEvents(backend.eventStore, `payment-${paymentId}`)).find((event) => event.type === 'RefundRequested');
    expect(requested?.data).toMatchObject({ amount: 26_000, currency: 'USD' });
  });

  it('payment succeeded for a booking that expired meanwhile → refunded in full', async () => {
    const { bookingId, paymentId, intentId } = await bookAndStartPaying();
    clock.advance(16 * 60_000);
    await side.handlers.booking.handle(`booking-${bookingId}`, { type: 'ExpireBooking', data: { bookingId, now: clock.now().toISOString() } }, as(consumer));
    // The customer paid just before the cancel reached Stripe.
    stripe.setIntentStatus(intentId, 'succeeded');
    await drain();
    await pay(paymentId, intentId);
    await drain();

    expect(await bookingStatus(bookingId)).toBe('expired');
    expect(stripe.refundsFor(paymentId)).toEqual([expect.objectContaining({ amount: 24_000 })]);
    expect(await eventTypes(backend.eventStore, `payment-${paymentId}`)).toEqual(['PaymentInitiated', 'PaymentSucceeded', 'RefundRequested', 'RefundSucceeded']);
  });

  it('a booking id given up after its request failed takes no payment: not found, as a booking that does not exist, and Stripe is not called', async () => {
    const bookingId = randomUUID();
    await side.handlers.booking.handle(`booking-${bookingId}`, { type: 'AbandonBooking', data: { bookingId, now: clock.now().toISOString() } }, as(consumer));

    await expect(startPayment(payments, bookingId, as(consumer))).rejects.toMatchObject({ code: 'not-found' });
    expect(stripe.requestsTo('create-intent')).toEqual([]);
  });

  it('payment succeeded inside the hold, and the hold lapses before the process marks the booking paid → not expired: paid, booked and confirmed', async () => {
    const { bookingId, paymentId, intentId, listingId: listing } = await bookAndStartPaying();
    clock.advance(14 * 60_000);
    await pay(paymentId, intentId);
    // The process is behind (retrying a provider call for someone else); the sweep comes first.
    await sweepHoldsAfter(2 * 60_000);

    expect(await eventTypes(backend.eventStore, `booking-${bookingId}`)).toEqual(['BookingRequested', 'BookingPaid', 'BookingConfirmed']);
    expect(await eventTypes(backend.eventStore, `listingCalendar-${listing}`)).toEqual(['DatesHeld', 'DatesBooked']);
    expect(stripe.refundsFor(paymentId)).toEqual([]);
  });

  it('payment captured after its booking was cancelled, before the process cancelled the intent → refunded in full, booking stays cancelled', async () => {
    const { bookingId, paymentId, intentId } = await bookAndStartPaying(1);
    await cancelBooking(side, bookingId, { reason: 'found another place' }, as(consumer));
    clock.advance(60_000);
    // The payment page was still open: the customer pays a minute after cancelling, before the process got to the intent.
    stripe.setIntentStatus(intentId, 'succeeded', clock.now());
    await drain();
    await payAt(paymentId, intentId, clock.now());
    await drain();

    expect(await bookingStatus(bookingId)).toBe('cancelled');
    expect(stripe.refundsFor(paymentId)).toEqual([expect.objectContaining({ amount: 24_000 })]);
  });

  it('paid at Stripe a minute before the consumer cancelled 1 day ahead, no webhook yet → the success learned from Stripe is refunded per the policy (nothing), as had its webhook come first', async () => {
    // Given a booking starting tomorrow, paid at Stripe, whose webhook has not come,
    const { bookingId, paymentId, intentId } = await bookAndStartPaying(1);
    const paidAt = clock.now();
    stripe.setIntentStatus(intentId, 'succeeded', paidAt);
    clock.advance(60_000);
    // when the consumer cancels, and the process follows (learning of the success from Stripe),
    await cancelBooking(side, bookingId, { reason: 'plans changed' }, as(consumer));
    await drain();
    // and the webhook lands after all,
    await payAt(paymentId, intentId, paidAt);
    await drain();

    // then the cancellation's policy stands: nothing goes back.
    expect((await side.handlers.booking.read(`booking-${bookingId}`)).state).toMatchObject({ status: 'cancelled', refundPercent: 0 });
    expect(await eventTypes(backend.eventStore, `payment-${paymentId}`)).toEqual(['PaymentInitiated', 'PaymentSucceeded']);
    const succeeded = (await streamEvents(backend.eventStore, `payment-${paymentId}`)).find((event) => event.type === 'PaymentSucceeded');
    expect(succeeded?.data).toMatchObject({ capturedAt: paidAt.toISOString() });
    expect(stripe.refundsFor(paymentId)).toEqual([]);
  });

  it('paid at Stripe before the consumer cancelled 3 days ahead, its webhook landing after the cancellation → 50 % refunded, as had it come first', async () => {
    const { bookingId, paymentId, intentId } = await bookAndStartPaying();
    const paidAt = clock.now();
    clock.advance(60_000);
    await cancelBooking(side, bookingId, { reason: 'plans changed' }, as(consumer));
    await payAt(paymentId, intentId, paidAt);
    await drain();

    expect(stripe.refundsFor(paymentId)).toEqual([expect.objectContaining({ amount: 12_000 })]);
  });

  it('paid at Stripe the very second the consumer cancelled (too close for the clocks to tell) → the log decides: recorded after the cancellation, refunded in full', async () => {
    const { bookingId, paymentId, intentId } = await bookAndStartPaying(1);
    stripe.setIntentStatus(intentId, 'succeeded', clock.now());
    await cancelBooking(side, bookingId, { reason: 'plans changed' }, as(consumer));
    await drain();

    expect(stripe.refundsFor(paymentId)).toEqual([expect.objectContaining({ amount: 24_000 })]);
  });

  it('a success stored before capture times were kept, recorded after the cancellation → the log decides: refunded in full', async () => {
    const { bookingId, paymentId, intentId } = await bookAndStartPaying(1);
    clock.advance(60_000);
    await cancelBooking(side, bookingId, { reason: 'plans changed' }, as(consumer));
    await pay(paymentId, intentId);
    await drain();

    const succeeded = (await streamEvents(backend.eventStore, `payment-${paymentId}`)).find((event) => event.type === 'PaymentSucceeded');
    expect(succeeded?.data).not.toHaveProperty('capturedAt');
    expect(stripe.refundsFor(paymentId)).toEqual([expect.objectContaining({ amount: 24_000 })]);
  });

  it('payment succeeded, then the consumer cancelled 3 days ahead before the process marked the booking paid → 50 % refunded, as if it had been', async () => {
    const { bookingId, paymentId, intentId } = await bookAndStartPaying();
    await pay(paymentId, intentId);
    await cancelBooking(side, bookingId, { reason: 'plans changed' }, as(consumer));
    await drain();

    expect(await bookingStatus(bookingId)).toBe('cancelled');
    expect(stripe.refundsFor(paymentId)).toEqual([expect.objectContaining({ amount: 12_000 })]);
  });

  it('payment started while its booking was cancelled (the cancellation found no payment yet) → the intent is cancelled once it is recorded', async () => {
    month += 1;
    const startDate = new Date(clock.now().getTime() + 3 * 86_400_000).toISOString().slice(0, 10);
    const endDate = new Date(clock.now().getTime() + 5 * 86_400_000).toISOString().slice(0, 10);
    const booking = await requestBooking(side, { listingId: (await createListing(side, listingInput, as(owner))).id, startDate, endDate }, as(consumer));
    // Stripe takes its time creating the intent; the consumer cancels meanwhile and the process handles that.
    stripe.inject('create-intent', { kind: 'delay', ms: 300 });
    const starting = startPayment(payments, booking.id, as(consumer));
    await sleep(100);
    await cancelBooking(side, booking.id, { reason: 'changed my mind' }, as(consumer));
    await drain();
    const { paymentId } = await starting;
    await drain();

    expect(stripe.intentsFor(paymentId)).toEqual([expect.objectContaining({ status: 'canceled' })]);
    expect(await eventTypes(backend.eventStore, `payment-${paymentId}`)).toEqual(['PaymentInitiated', 'PaymentCanceled']);
  });

  it('payment succeeded after the lapsed hold went to someone else, who expired the booking on the way → the booking stays expired, refunded in full', async () => {
    const { bookingId, paymentId, intentId, listingId: listing } = await bookAndStartPaying();
    clock.advance(16 * 60_000);
    const booking = (await side.handlers.booking.read(`booking-${bookingId}`)).state;
    if (booking.status !== 'requested') throw new Error('expected a held booking');
    const other = person(['CONSUMER']);
    await requestBooking(side, { listingId: listing, startDate: booking.booking.startDate, endDate: booking.booking.endDate }, as(other));
    await pay(paymentId, intentId);
    await drain();

    expect(await eventTypes(backend.eventStore, `booking-${bookingId}`)).toEqual(['BookingRequested', 'BookingExpired']);
    expect(stripe.refundsFor(paymentId)).toEqual([expect.objectContaining({ amount: 24_000 })]);
  });

  /** The booking's lapsed hold displaced without the booking being expired, as requests did before they expired it first. */
  async function displacedWithoutExpiry(listing: string, booking: { bookingId: string; startDate: string; endDate: string }): Promise<void> {
    const { bookingId, startDate, endDate } = booking;
    const now = clock.now().toISOString();
    const holdExpiresAt = new Date(clock.now().getTime() + 15 * 60_000).toISOString();
    const hold = { listingId: listing, bookingId: randomUUID(), startDate, endDate, holdExpiresAt, now, timeZone: 'UTC', displaceable: [bookingId] };
    await side.handlers.listingCalendar.handle(`listingCalendar-${listing}`, { type: 'HoldDates', data: hold }, as(person(['CONSUMER'])));
  }

  it('payment succeeded after the lapsed hold went to someone else without expiring the booking → booking cancelled (not the consumer\'s fault), refunded in full', async () => {
    const { bookingId, paymentId, intentId, listingId: listing } = await bookAndStartPaying();
    clock.advance(16 * 60_000);
    const booking = (await side.handlers.booking.read(`booking-${bookingId}`)).state;
    if (booking.status !== 'requested') throw new Error('expected a held booking');
    await displacedWithoutExpiry(listing, booking.booking);
    await pay(paymentId, intentId);
    await drain();

    expect(await eventTypes(backend.eventStore, `booking-${bookingId}`)).toEqual(['BookingRequested', 'BookingPaid', 'BookingCancelled']);
    expect((await side.handlers.booking.read(`booking-${bookingId}`)).state).toMatchObject({ status: 'cancelled', cancelledBy: 'admin', refundAmount: 24_000 });
    expect(stripe.refundsFor(paymentId)).toEqual([expect.objectContaining({ amount: 24_000 })]);
  });

  it('payment succeeded after the lapsed hold went to someone else without expiring the booking, and its consumer cancels before the process does → the consumer\'s cancellation stands, and the process takes it as done', async () => {
    const { bookingId, paymentId, intentId, listingId: listing } = await bookAndStartPaying();
    clock.advance(16 * 60_000);
    const booking = (await side.handlers.booking.read(`booking-${bookingId}`)).state;
    if (booking.status !== 'requested') throw new Error('expected a held booking');
    await displacedWithoutExpiry(listing, booking.booking);
    // The consumer cancels the moment the process has marked the booking paid, before it finds the dates gone.
    const racing: EventStore = {
      ...tracked.store,
      async appendToStream(streamId, events, options) {
        const result = await tracked.store.appendToStream(streamId, events, options);
        if (streamId === `booking-${bookingId}` && events.some((event) => event.type === 'BookingPaid')) {
          await cancelBooking(side, bookingId, { reason: 'changed my mind' }, as(consumer));
        }
        return result;
      },
    };
    const checkpoints = new PgProcessCheckpoints(createKysely(backend.pool));
    process = new PaymentProcess({ eventStore: tracked.store, side: createTestSide(racing, clock, 15), gateway: payments.gateway, checkpoints });
    await pay(paymentId, intentId);
    await drain();

    expect(await eventTypes(backend.eventStore, `booking-${bookingId}`)).toEqual(['BookingRequested', 'BookingPaid', 'BookingCancelled']);
    expect((await side.handlers.booking.read(`booking-${bookingId}`)).state).toMatchObject({ status: 'cancelled', cancelledBy: 'consumer', refundAmount: 12_000 });
    expect(stripe.refundsFor(paymentId)).toEqual([expect.objectContaining({ amount: 12_000 })]);
  });

  it('payment succeeded inside the hold, and someone else asks for the dates before the process marks the booking paid → refused; the payer keeps them', async () => {
    const { bookingId, paymentId, intentId, listingId: listing } = await bookAndStartPaying();
    clock.advance(14 * 60_000);
    await pay(paymentId, intentId);
    // The process is behind (retrying a provider call for someone else); the hold lapses first.
    clock.advance(2 * 60_000);
    const booking = (await side.handlers.booking.read(`booking-${bookingId}`)).state;
    if (booking.status !== 'requested') throw new Error('expected a held booking');
    const other = person(['CONSUMER']);
    await expect(requestBooking(side, { listingId: listing, startDate: booking.booking.startDate, endDate: booking.booking.endDate }, as(other))).rejects.toMatchObject({
      code: 'dates-unavailable',
    });
    await drain();

    expect(await eventTypes(backend.eventStore, `booking-${bookingId}`)).toEqual(['BookingRequested', 'BookingPaid', 'BookingConfirmed']);
    expect(await eventTypes(backend.eventStore, `listingCalendar-${listing}`)).toEqual(['DatesHeld', 'DatesBooked']);
    expect(stripe.refundsFor(paymentId)).toEqual([]);
  });

  it('a refund Stripe refuses for good is recorded as failed and does not hold up later events', async () => {
    const first = await bookAndStartPaying();
    await pay(first.paymentId, first.intentId);
    await drain();
    stripe.intents.delete(first.intentId);
    await cancelBooking(side, first.bookingId, { reason: 'plans changed' }, as(consumer));
    const second = await bookAndStartPaying();
    await pay(second.paymentId, second.intentId);
    await drain();

    expect(await eventTypes(backend.eventStore, `payment-${first.paymentId}`)).toEqual(['PaymentInitiated', 'PaymentSucceeded', 'RefundRequested', 'RefundFailed']);
    expect((await side.handlers.payment.read(`payment-${first.paymentId}`)).state).toMatchObject({ refunds: [{ status: 'failed' }] });
    expect(await bookingStatus(second.bookingId)).toBe('confirmed');
  });

  it.each([
    ['made the refund, then failed', 'work-then-kept-error' as const],
    ['failed before making it', 'kept-error' as const],
  ])('a refund whose create %s with a 500 Stripe keeps as its key\'s answer → one refund of the policy amount, and later events go on', async (_, kind) => {
    const first = await bookAndStartPaying();
    await pay(first.paymentId, first.intentId);
    await drain();
    stripe.inject('create-refund', { kind, status: 500 });
    await cancelBooking(side, first.bookingId, { reason: 'plans changed' }, as(consumer));
    const second = await bookAndStartPaying();
    await pay(second.paymentId, second.intentId);
    await drain();

    expect(stripe.refundsFor(first.paymentId)).toEqual([expect.objectContaining({ amount: 12_000, status: 'succeeded' })]);
    expect(await eventTypes(backend.eventStore, `payment-${first.paymentId}`)).toEqual(['PaymentInitiated', 'PaymentSucceeded', 'RefundRequested', 'RefundSucceeded']);
    expect(await bookingStatus(second.bookingId)).toBe('confirmed');
  });

  it('a refund Stripe answers with our key refused (401: revoked or rotated) is not recorded as failed: the next try, once the key works, sends it', async () => {
    const { bookingId, paymentId, intentId } = await bookAndStartPaying();
    await pay(paymentId, intentId);
    await drain();
    await cancelBooking(side, bookingId, { reason: 'plans changed' }, as(consumer));
    stripe.inject('create-refund', { kind: 'status', status: 401 });
    await expect(drain()).rejects.toBeInstanceOf(ProviderUnavailableError);
    await drain();

    expect(await eventTypes(backend.eventStore, `payment-${paymentId}`)).toEqual(['PaymentInitiated', 'PaymentSucceeded', 'RefundRequested', 'RefundSucceeded']);
    expect(stripe.refundsFor(paymentId)).toEqual([expect.objectContaining({ amount: 12_000 })]);
  });

  it('handling every event again (a replay after a crash) changes nothing and refunds nothing twice', async () => {
    const start = cursor;
    const { bookingId, paymentId, intentId } = await bookAndStartPaying();
    await pay(paymentId, intentId);
    await drain();
    await cancelBooking(side, bookingId, { reason: 'plans changed' }, as(consumer));
    await drain();
    const eventsBefore = await eventTypes(backend.eventStore, `payment-${paymentId}`);

    cursor = start;
    await drain();
    expect(await eventTypes(backend.eventStore, `payment-${paymentId}`)).toEqual(eventsBefore);
    expect(stripe.refundsFor(paymentId)).toHaveLength(1);
    expect(await eventTypes(backend.eventStore, `booking-${bookingId}`)).toEqual(['BookingRequested', 'BookingPaid', 'BookingConfirmed', 'BookingCancelled']);
  });

  it("an owner's partial refund goes to Stripe through the process manager; a second one is capped by what is left", async () => {
    const { paymentId, intentId } = await bookAndStartPaying();
    await pay(paymentId, intentId);
    await drain();
    await refundPayment(side, paymentId, { amount: 5_000 }, as(owner));
    await drain();
    await expect(refundPayment(side, paymentId, { amount: 20_000 }, as(owner))).rejects.toMatchObject({ code: 'refund-exceeds-captured' });
    await refundPayment(side, paymentId, {}, as(owner));
    await drain();

    expect(stripe.refundsFor(paymentId).map((r) => r.amount)).toEqual([5_000, 19_000]);
    await expect(refundPayment(side, paymentId, {}, as(consumer))).rejects.toMatchObject({ code: 'forbidden' });
  });

  it("a cancellation's refund decided while an owner's partial refund lands is capped by what is left, not dropped", async () => {
    const { bookingId, paymentId, intentId } = await bookAndStartPaying();
    await pay(paymentId, intentId);
    await drain();
    // The owner refunds 15,000 of 24,000 between the process's read of the payment and its append.
    let ownersRefund: (() => Promise<unknown>) | undefined = () => refundPayment(side, paymentId, { amount: 15_000 }, as(owner));
    const racing: EventStore = {
      ...tracked.store,
      async appendToStream(streamId, events, options) {
        const landsFirst = ownersRefund;
        if (landsFirst && streamId === `payment-${paymentId}` && events.some((event) => event.type === 'RefundRequested')) {
          ownersRefund = undefined;
          await landsFirst();
        }
        return tracked.store.appendToStream(streamId, events, options);
      },
    };
    process = new PaymentProcess({ eventStore: racing, side: createTestSide(racing, clock, 15), gateway: payments.gateway, checkpoints: new PgProcessCheckpoints(createKysely(backend.pool)) });

    await cancelBooking(side, bookingId, { reason: 'plans changed' }, as(consumer));
    await drain();

    // 50 % (12,000) was due, but only 9,000 was left.
    expect(stripe.refundsFor(paymentId).map((refund) => refund.amount).sort((a, b) => a - b)).toEqual([9_000, 15_000]);
  });

  it('run() follows the log from its checkpoint and saves it after each event', async () => {
    const checkpoints = new PgProcessCheckpoints(createKysely<ProcessCheckpointTables>(backend.pool));
    // From here on: earlier tests' events were handled by hand (and their Stripe is reset).
    if (cursor) await checkpoints.save(paymentProcessName, cursor);
    const { bookingId, paymentId, intentId } = await bookAndStartPaying();
    await pay(paymentId, intentId);
    const stop = new AbortController();
    const running = process.run(stop.signal);
    try {
      await eventually(async () => (await bookingStatus(bookingId)) === 'confirmed');
      await eventually(async () => (await checkpoints.load(paymentProcessName)) !== undefined);
    } finally {
      stop.abort();
      await running;
    }
    const saved = await checkpoints.load(paymentProcessName);
    expect(saved && cursor && comparePositions(saved, cursor)).toBe(1);
  });

  it('run() goes on after the database fails it for a moment (a checkpoint save lost), from its checkpoint', async () => {
    const saved = new PgProcessCheckpoints(createKysely<ProcessCheckpointTables>(backend.pool));
    await drain(false);
    if (cursor) await saved.save(paymentProcessName, cursor);
    let failures = 0;
    const checkpoints = {
      load: (name: string) => saved.load(name),
      async save(name: string, position: Position) {
        if (failures === 0) {
          failures += 1;
          throw new Error('Connection terminated unexpectedly');
        }
        await saved.save(name, position);
      },
    };
    const following = new PaymentProcess({ eventStore: backend.eventStore, side, gateway: payments.gateway, checkpoints, retryDelayMs: 20 });
    const stop = new AbortController();
    const running = following.run(stop.signal);
    try {
      const first = await bookAndStartPaying();
      await pay(first.paymentId, first.intentId);
      await eventually(async () => failures === 1 && (await bookingStatus(first.bookingId)) === 'confirmed');
      const second = await bookAndStartPaying();
      await pay(second.paymentId, second.intentId);
      await eventually(async () => (await bookingStatus(second.bookingId)) === 'confirmed');
    } finally {
      stop.abort();
      await running;
    }
  });

  it('run() reports an event whose handling fails as an error it retries and a failed attempt, until the retry handles it', async () => {
    const checkpoints = new PgProcessCheckpoints(createKysely<ProcessCheckpointTables>(backend.pool));
    await drain(false);
    if (cursor) await checkpoints.save(paymentProcessName, cursor);
    const reports: string[] = [];
    const following = new PaymentProcess({
      eventStore: backend.eventStore,
      side,
      gateway: payments.gateway,
      checkpoints,
      retryDelayMs: 20,
      onError: (_error, what, retried) => reports.push(`${retried ? 'will retry' : 'given up'}: ${what}`),
      onAttempt: (succeeded) => reports.push(succeeded ? 'handled' : 'failed'),
    });
    const stop = new AbortController();
    const running = following.run(stop.signal);
    try {
      // Given a confirmed booking, and Stripe refusing our key once when its refund is sent
      const { bookingId, paymentId, intentId } = await bookAndStartPaying();
      await pay(paymentId, intentId);
      await eventually(async () => (await bookingStatus(bookingId)) === 'confirmed');
      stripe.inject('create-refund', { kind: 'status', status: 401 });
      // When its consumer cancels it
      await cancelBooking(side, bookingId, { reason: 'plans changed' }, as(consumer));
      await eventually(async () => (await eventTypes(backend.eventStore, `payment-${paymentId}`)).includes('RefundSucceeded'));
      await eventually(async () => reports.at(-1) === 'handled');
    } finally {
      stop.abort();
      await running;
    }
    // Then the refund's failure was told as retried and a failed attempt, then its retry as handled
    const stuck = reports.findIndex((report) => report.startsWith('will retry'));
    expect(reports.slice(stuck)).toEqual([expect.stringMatching(/^will retry: handle RefundRequested /), 'failed', 'handled']);
  });

  describe.each([
    ['ends without its signal aborting (a server closing the stream)', 'ends' as const, 'The subscription to the log ended although the process was not stopped'],
    ['fails (the connection lost)', 'throws' as const, 'Connection terminated unexpectedly'],
  ])('run() when its subscription %s after an event', (_, how, reported) => {
    it('says so, subscribes again from its checkpoint, and acts on what is appended afterwards', async () => {
      const checkpoints = new PgProcessCheckpoints(createKysely<ProcessCheckpointTables>(backend.pool));
      await drain(false);
      if (cursor) await checkpoints.save(paymentProcessName, cursor);
      const errors: string[] = [];
      const following = new PaymentProcess({
        eventStore: firstSubscriptionBreaksOff(backend.eventStore, how),
        side,
        gateway: payments.gateway,
        checkpoints,
        retryDelayMs: 20,
        onError: (error, what) => errors.push(`${what}: ${error instanceof Error ? error.message : String(error)}`),
      });
      const stop = new AbortController();
      const running = following.run(stop.signal);
      try {
        // Given the first subscription broke off after the payment's first event,
        const { bookingId, paymentId, intentId } = await bookAndStartPaying();
        await eventually(async () => errors.length > 0);
        // when the payment succeeds afterwards,
        await pay(paymentId, intentId);
        // then the process still confirms the booking, and the break was reported.
        await eventually(async () => (await bookingStatus(bookingId)) === 'confirmed');
        expect(errors).toEqual([`follow the log; subscribing again from the checkpoint: ${reported}`]);
      } finally {
        stop.abort();
        await running;
      }
    });
  });
});

/** `store`, but its first subscription breaks off right after its first event: `how` it ends, quietly or with an error. */
function firstSubscriptionBreaksOff(store: EventStore, how: 'ends' | 'throws'): EventStore {
  let subscriptions = 0;
  return {
    appendToStream: (streamId, events, options) => store.appendToStream(streamId, events, options),
    readStream: (streamId, options) => store.readStream(streamId, options),
    readAll: (options) => store.readAll(options),
    headPosition: () => store.headPosition(),
    close: () => store.close(),
    subscribeToAll(options) {
      subscriptions += 1;
      if (subscriptions > 1) return store.subscribeToAll(options);
      return (async function* () {
        for await (const event of store.subscribeToAll(options)) {
          yield event;
          if (how === 'throws') throw new Error('Connection terminated unexpectedly');
          return;
        }
      })();
    },
  };
}

async function eventually(check: () => Promise<boolean>, timeoutMs = 10_000): Promise<void> {
  const deadline = Date.now() + timeoutMs;
  while (!(await check())) {
    if (Date.now() > deadline) throw new Error('condition not met in time');
    await sleep(50);
  }
}
