import { randomUUID } from 'node:crypto';
import { afterAll, beforeAll, beforeEach, describe, expect, it } from 'vitest';
import { requestBooking } from '../../src/application/bookings/booking.use-cases.js';
import type { CommandSide } from '../../src/application/command-handlers.js';
import { createListing } from '../../src/application/listings/listing.use-cases.js';
import { paidAtProvider } from '../../src/application/payments/payment-attempts.js';
import { startPayment, type PaymentSide } from '../../src/application/payments/payment.use-cases.js';
import { paymentProviderActor, recordProviderEvent } from '../../src/application/payments/provider-events.js';
import type { Position } from '../../src/application/ports/position.js';
import type { ProcessCheckpoints } from '../../src/application/ports/process-checkpoints.js';
import { PaymentProcess, paymentProcessEventTypes } from '../../src/application/process-managers/payment.process.js';
import type { Actor } from '../../src/domain/shared/actor.js';
import { StripePaymentGateway } from '../../src/infrastructure/stripe/stripe-payment-gateway.js';
import { FakeStripeServer } from '../stripe/support/fake-stripe-server.js';
import { as, createTestSide, eventTypes, fakeClock, InterruptibleStore, listingInput } from '../support/command-side.js';

const person = (roles: Actor['roles']): Actor => ({ id: randomUUID(), roles });
const owner = person(['OWNER']);
const consumer = person(['CONSUMER']);
const webhook = { actor: paymentProviderActor, requestId: 'webhook', correlationId: 'webhook', causationId: 'webhook' };
const day = 86_400_000;
const minute = 60_000;

/** Checkpoints nobody reads: these tests hand the process its events themselves. */
const noCheckpoints: ProcessCheckpoints = { load: async () => undefined, save: async () => {} };

/**
 * A booking whose consumer paid in time keeps its dates whatever our log has yet to hear: another
 * consumer's request, or the payment process handling the success again long after.
 */
describe('a booking paid in time keeps its dates', () => {
  let stripe: FakeStripeServer;
  let store: InterruptibleStore;
  let clock: ReturnType<typeof fakeClock>;
  let side: CommandSide;
  let payments: PaymentSide;
  let process: PaymentProcess;
  let listingId: string;
  let cursor: Position | undefined;

  /** A process (restarted: caches of its own) on the same log and Stripe. */
  function startProcess(): PaymentProcess {
    const processSide = { ...createTestSide(store, clock, 15), paymentGateway: () => payments.gateway, providerEventStore: store };
    return new PaymentProcess({ eventStore: store, side: processSide, gateway: payments.gateway, checkpoints: noCheckpoints });
  }

  /** Hands the process every event it follows, in log order, until none is left; one it fails on is handed again next time. */
  async function drain(): Promise<void> {
    for (let seen = true; seen; ) {
      seen = false;
      for await (const event of store.readAll(cursor ? { after: cursor } : {})) {
        if (paymentProcessEventTypes.includes(event.type)) await process.handle(event);
        cursor = event.position;
        seen = true;
      }
    }
  }

  /** A booking of two nights starting in 3 days, with its payment started at Stripe. */
  async function bookAndStartPaying() {
    const startDate = new Date(clock.now().getTime() + 3 * day).toISOString().slice(0, 10);
    const endDate = new Date(clock.now().getTime() + 5 * day).toISOString().slice(0, 10);
    const booking = await requestBooking(side, { listingId, startDate, endDate }, as(consumer));
    const started = await startPayment(payments, booking.id, as(consumer));
    const intentId = stripe.intentsFor(started.paymentId)[0]?.id ?? '';
    return { bookingId: booking.id, paymentId: started.paymentId, intentId, startDate, endDate };
  }

  /** The customer pays at Stripe now, and its webhook is recorded. */
  async function pay(paymentId: string, intentId: string): Promise<void> {
    stripe.setIntentStatus(intentId, 'succeeded', clock.now());
    const capturedAt = new Date(Math.floor(clock.now().getTime() / 1000) * 1000).toISOString();
    await recordProviderEvent(payments, { kind: 'payment-succeeded', eventId: `evt_${randomUUID()}`, paymentId, intentId, amount: 24_000, currency: 'EUR', capturedAt }, webhook);
  }

  beforeAll(async () => {
    stripe = await new FakeStripeServer().start();
  });
  afterAll(async () => {
    await stripe.stop();
  });
  beforeEach(async () => {
    stripe.reset();
    store = new InterruptibleStore();
    clock = fakeClock('2031-03-01T10:00:00Z');
    const gateway = StripePaymentGateway.fromOptions({ secretKey: 'sk_test_fake', apiBase: stripe.apiBase, timeoutMs: 2_000 });
    side = { ...createTestSide(store, clock, 15), paymentGateway: () => gateway, providerEventStore: store };
    payments = { side, eventStore: store, gateway };
    process = startProcess();
    cursor = undefined;
    listingId = (await createListing(side, listingInput, as(owner))).id;
  });

  describe('when someone else asks for its dates after the hold lapsed', () => {
    it('paid at Stripe within the hold, its webhook not come yet → the request is refused; the payer keeps the dates, paid and confirmed, nothing refunded', async () => {
      // Given a booking paid at Stripe at minute 10 of its 15-minute hold, whose webhook is late,
      const { bookingId, paymentId, intentId, startDate, endDate } = await bookAndStartPaying();
      clock.advance(10 * minute);
      stripe.setIntentStatus(intentId, 'succeeded', clock.now());
      clock.advance(6 * minute);

      // when another consumer asks for the same dates after the hold has lapsed,
      const other = requestBooking(side, { listingId, startDate, endDate }, as(person(['CONSUMER'])));

      // then they are refused, and the payment process books and confirms the payer's stay.
      await expect(other).rejects.toMatchObject({ code: 'dates-unavailable' });
      await drain();
      expect(await eventTypes(store, `booking-${bookingId}`)).toEqual(['BookingRequested', 'BookingPaid', 'BookingConfirmed']);
      expect(await eventTypes(store, `listingCalendar-${listingId}`)).toEqual(['DatesHeld', 'DatesBooked']);
      expect(await eventTypes(store, `payment-${paymentId}`)).toEqual(['PaymentInitiated', 'PaymentSucceeded']);
      expect(stripe.refundsFor(paymentId)).toEqual([]);
    });

    it('not paid → the new request expires the lapsed booking, whose intent is then canceled, and holds the dates', async () => {
      // Given a booking whose hold lapsed unpaid, not swept yet,
      const { bookingId, paymentId, startDate, endDate } = await bookAndStartPaying();
      clock.advance(16 * minute);

      // when another consumer asks for the same dates,
      const other = await requestBooking(side, { listingId, startDate, endDate }, as(person(['CONSUMER'])));
      await drain();

      // then the lapsed booking is expired then and there, by the system (not the stranger who asked), its intent no longer payable, and the dates are theirs.
      expect(await eventTypes(store, `booking-${bookingId}`)).toEqual(['BookingRequested', 'BookingExpired']);
      const expiries = [];
      for await (const event of store.readAll({ filter: { eventTypes: ['BookingExpired'] } })) expiries.push(event.metadata);
      expect(expiries).toEqual([expect.objectContaining({ actorId: 'system:hold-expiry' })]);
      expect(await eventTypes(store, `listingCalendar-${listingId}`)).toEqual(['DatesHeld', 'DatesReleased', 'DatesHeld']);
      expect(await eventTypes(store, other.streamId)).toEqual(['BookingRequested']);
      expect(stripe.intentsFor(paymentId)).toEqual([expect.objectContaining({ status: 'canceled' })]);
    });
  });

  describe('when its expiry asks the provider after the webhook was recorded (since the expiry last read the log)', () => {
    it('counts as paid: the success the log now holds, though no live attempt is left to ask about', async () => {
      // Given a booking paid within its hold, whose webhook is recorded just after the expiry found it unpaid,
      const { bookingId, paymentId, intentId } = await bookAndStartPaying();
      clock.advance(10 * minute);
      await pay(paymentId, intentId);
      clock.advance(6 * minute);

      // when the expiry asks whether the provider took the money,
      const paid = await paidAtProvider(side, bookingId, as(consumer).context);

      // then it is paid, and the booking is not expired.
      expect(paid).toBe(true);
    });
  });

  describe('when the payment process handles its success again (a replay after a crash)', () => {
    /** The process handles the success and dies after marking the booking paid, at step `dies`; a new one starts. */
    async function paidAndDiedBefore(bookingStream: string, listingStream: string, dies: 'book-dates' | 'confirm'): Promise<void> {
      let bookingAppends = 0;
      store.interrupt((streamId) => (dies === 'book-dates' ? streamId === listingStream : streamId === bookingStream && ++bookingAppends === 2));
      await expect(drain()).rejects.toThrow(/died/);
      process = startProcess();
    }

    /** A busy calendar: a one-night stay held every night from `fromDay` days ahead on, `count` of them. */
    async function othersBook(fromDay: number, count: number): Promise<void> {
      for (let night = fromDay; night < fromDay + count; night++) {
        const startDate = new Date(clock.now().getTime() + night * day).toISOString().slice(0, 10);
        const endDate = new Date(clock.now().getTime() + (night + 1) * day).toISOString().slice(0, 10);
        await requestBooking(side, { listingId, startDate, endDate }, as(person(['CONSUMER'])));
      }
    }

    it('its dates booked, the stay over and dropped from the calendar\'s state since → confirmed, not cancelled, nothing refunded', async () => {
      // Given a paid booking whose dates the process booked before dying, short of confirming it,
      const { bookingId, paymentId, intentId } = await bookAndStartPaying();
      await pay(paymentId, intentId);
      await paidAndDiedBefore(`booking-${bookingId}`, `listingCalendar-${listingId}`, 'confirm');
      expect(await eventTypes(store, `listingCalendar-${listingId}`)).toEqual(['DatesHeld', 'DatesBooked']);
      // and, ten days on, the stay over, a calendar busy since: the booked range is no longer in its state,
      clock.advance(10 * day);
      await othersBook(1, 70);
      const calendar = await side.handlers.listingCalendar.read(`listingCalendar-${listingId}`);
      expect(calendar.state.live.map((range) => range.bookingId)).not.toContain(bookingId);

      // when the restarted process handles the success again,
      await drain();

      // then the booking is confirmed, as it would have been, and keeps its money.
      expect(await eventTypes(store, `booking-${bookingId}`)).toEqual(['BookingRequested', 'BookingPaid', 'BookingConfirmed']);
      expect(await eventTypes(store, `payment-${paymentId}`)).toEqual(['PaymentInitiated', 'PaymentSucceeded']);
      expect(stripe.refundsFor(paymentId)).toEqual([]);
    });

    it('marked paid but its dates never booked, the lapsed hold gone to someone else since → still cancelled and refunded in full', async () => {
      // Given a booking paid at minute 14, whose process died after marking it paid, before booking the dates,
      const { bookingId, paymentId, intentId, startDate, endDate } = await bookAndStartPaying();
      clock.advance(14 * minute);
      await pay(paymentId, intentId);
      await paidAndDiedBefore(`booking-${bookingId}`, `listingCalendar-${listingId}`, 'book-dates');
      // and its lapsed hold displaced by someone else's meanwhile, as requests did before they expired such a booking first,
      clock.advance(2 * minute);
      const now = clock.now().toISOString();
      const holdExpiresAt = new Date(clock.now().getTime() + 15 * minute).toISOString();
      const hold = { listingId, bookingId: randomUUID(), startDate, endDate, holdExpiresAt, now, timeZone: 'UTC', displaceable: [bookingId] };
      await side.handlers.listingCalendar.handle(`listingCalendar-${listingId}`, { type: 'HoldDates', data: hold }, as(person(['CONSUMER'])));

      // when the restarted process handles the success again,
      await drain();

      // then the booking cannot stand: cancelled by the process, all of it refunded.
      expect(await eventTypes(store, `booking-${bookingId}`)).toEqual(['BookingRequested', 'BookingPaid', 'BookingCancelled']);
      expect(stripe.refundsFor(paymentId)).toEqual([expect.objectContaining({ amount: 24_000 })]);
    });
  });
});
