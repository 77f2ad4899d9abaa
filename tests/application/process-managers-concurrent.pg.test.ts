import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { cancelBooking, requestBooking } from '../../src/application/bookings/booking.use-cases.js';
import { createListing } from '../../src/application/listings/listing.use-cases.js';
import { startPayment } from '../../src/application/payments/payment.use-cases.js';
import { paymentProviderActor, recordProviderEvent } from '../../src/application/payments/provider-events.js';
import type { EventStore, Position } from '../../src/application/ports/event-store.js';
import { comparePositions } from '../../src/application/ports/position.js';
import type { ProcessCheckpoints } from '../../src/application/ports/process-checkpoints.js';
import { HoldExpiryProcess, holdExpiryEventTypes } from '../../src/application/process-managers/hold-expiry.process.js';
import { PaymentProcess } from '../../src/application/process-managers/payment.process.js';
import { sleep } from '../../src/application/sleep.js';
import { PgEventStore } from '../../src/infrastructure/pg-event-store/pg-event-store.js';
import { createKysely } from '../../src/infrastructure/postgres/database.js';
import { PgProcessCheckpoints } from '../../src/infrastructure/process-checkpoints/pg-process-checkpoints.js';
import { StripePaymentGateway } from '../../src/infrastructure/stripe/stripe-payment-gateway.js';
import { startBackend, type TestBackend } from '../http/support/command-api.fixture.js';
import { as, consumer, createTestSide, eventTypes, fakeClock, listingInput, owner, streamEvents } from '../support/command-side.js';
import { eventually } from '../support/eventually.js';
import { FakeStripeServer } from '../stripe/support/fake-stripe-server.js';

/**
 * Every command process runs its own process managers, with no lock between them: what one
 * sends, the other may send at the same moment. Each instance here has an event store and a
 * command side (state caches) of its own, as a process of its own would, on one database.
 */
describe('process managers in several processes at once (PostgreSQL event store)', () => {
  describe('two hold-expiry processes sweeping the same lapsed holds', () => {
    let backend: TestBackend;
    let store: EventStore;
    const clock = fakeClock('2030-01-10T10:00:00Z');

    beforeAll(async () => {
      backend = await startBackend();
      store = backend.eventStore;
    });
    afterAll(() => backend.close());

    /** An instance that reads the log through its own store, and sweeps once it has seen `holds` pending. */
    function startInstance() {
      const own = new PgEventStore(backend.pool);
      const process = new HoldExpiryProcess({ eventStore: own, side: createTestSide(own, clock), orphanSlotGraceMs: 60_000 });
      let after: Position | undefined;
      return {
        /** The log shows an append once no older transaction on the server is open: it reads until it has seen them all. */
        async catchUp(holds: number): Promise<void> {
          while (process.pending.holds < holds) {
            for await (const event of own.readAll({ ...(after ? { after } : {}), filter: { eventTypes: holdExpiryEventTypes } })) {
              process.observe(event);
              after = event.position;
            }
            if (process.pending.holds < holds) await sleep(10);
          }
        },
        sweep: () => process.sweep(),
        close: () => own.close(),
      };
    }

    it('ten rounds of six lapsed holds on three listings: each booking expired once, each hold released once', async () => {
      const setup = createTestSide(store, clock);
      const listings = await Promise.all([1, 2, 3].map(async () => (await createListing(setup, listingInput, as(owner))).id));
      const instances = [startInstance(), startInstance()];
      const bookings: Array<{ id: string; streamId: string; listingId: string }> = [];
      for (let round = 0; round < 10; round++) {
        // Given six holds, two on each listing (on days no earlier round took), left to lapse unpaid,
        const stays = [0, 1].map((half) => {
          const start = new Date(Date.parse('2030-03-01') + (round * 2 + half) * 3 * 86_400_000);
          return { startDate: start.toISOString().slice(0, 10), endDate: new Date(start.getTime() + 2 * 86_400_000).toISOString().slice(0, 10) };
        });
        for (const listingId of listings) {
          for (const stay of stays) bookings.push({ ...(await requestBooking(setup, { listingId, ...stay }, as(consumer))), listingId });
        }
        clock.advance(16 * 60_000);
        await Promise.all(instances.map((instance) => instance.catchUp(6)));

        // when both processes sweep them at once,
        await Promise.all(instances.map((instance) => instance.sweep()));
      }
      await Promise.all(instances.map((instance) => instance.close()));

      // then every booking is expired once, and its dates released once.
      const wrong: string[] = [];
      for (const booking of bookings) {
        const events = await eventTypes(store, booking.streamId);
        if (events.join() !== 'BookingRequested,BookingExpired') wrong.push(`${booking.id}: ${events.join()}`);
      }
      for (const listingId of listings) {
        const released = (await streamEvents(store, `listingCalendar-${listingId}`)).filter((event) => event.type === 'DatesReleased');
        const ofListing = bookings.filter((booking) => booking.listingId === listingId);
        expect(released).toHaveLength(ofListing.length);
        for (const booking of ofListing) {
          const times = released.filter((event) => event.data.bookingId === booking.id && event.data.reason === 'expired').length;
          if (times !== 1) wrong.push(`${booking.id}: dates released ${times} times`);
        }
      }
      expect(wrong).toEqual([]);
    });
  });

  describe('two payment processes following the same log', () => {
    let backend: TestBackend;
    let stripe: FakeStripeServer;
    const clock = fakeClock('2031-03-01T10:00:00Z');

    beforeAll(async () => {
      backend = await startBackend();
      stripe = await new FakeStripeServer().start();
    });

    afterAll(async () => {
      await stripe.stop();
      await backend.close();
    });

    const gateway = () => StripePaymentGateway.fromOptions({ secretKey: 'sk_test_fake', apiBase: stripe.apiBase, timeoutMs: 2_000 });

    /**
     * One instance running as `main` runs it: its own store, side and Stripe client, the shared
     * checkpoint row. It tells the last position it handled (saved after handling, as `run` does).
     */
    function startInstance() {
      const own = new PgEventStore(backend.pool);
      const shared = new PgProcessCheckpoints(createKysely(backend.pool));
      let handled: Position | undefined;
      const checkpoints: ProcessCheckpoints = {
        load: (name) => shared.load(name),
        async save(name, position) {
          await shared.save(name, position);
          handled = position;
        },
      };
      const process = new PaymentProcess({ eventStore: own, side: createTestSide(own, clock), gateway: gateway(), checkpoints, retryDelayMs: 20 });
      const stop = new AbortController();
      const running = process.run(stop.signal);
      return {
        hasHandled: (position: Position) => handled !== undefined && comparePositions(handled, position) >= 0,
        async stop() {
          stop.abort();
          await running;
          await own.close();
        },
      };
    }

    it('a confirmed booking cancelled with a refund due: one refund requested, sent to Stripe once, recorded once', async () => {
      // Given a booking starting in 3 days (its consumer's cancellation gets 50 %), paid,
      const setup = createTestSide(backend.eventStore, clock);
      const payments = { side: setup, eventStore: backend.eventStore, gateway: gateway() };
      const listingId = (await createListing(setup, listingInput, as(owner))).id;
      const day = (days: number) => new Date(clock.now().getTime() + days * 86_400_000).toISOString().slice(0, 10);
      const booking = await requestBooking(setup, { listingId, startDate: day(3), endDate: day(5) }, as(consumer));
      const { paymentId } = await startPayment(payments, booking.id, as(consumer));
      const intentId = stripe.intentsFor(paymentId)[0]?.id ?? '';
      stripe.setIntentStatus(intentId, 'succeeded');
      const webhook = { actor: paymentProviderActor, requestId: 'webhook', correlationId: 'webhook', causationId: 'webhook' };
      await recordProviderEvent(payments, { kind: 'payment-succeeded', eventId: 'evt_paid', paymentId, intentId, amount: 24_000, currency: 'EUR' }, webhook);

      // with two payment processes following the log at once,
      const instances = [startInstance(), startInstance()];
      try {
        await eventually(async () => (await setup.handlers.booking.read(booking.streamId)).state.status === 'confirmed');
        // when its consumer cancels it,
        await cancelBooking(setup, booking.id, { reason: 'plans changed' }, as(consumer));

        // then, once both have handled the refund it asks for,
        const requested = await eventually(async () => (await streamEvents(backend.eventStore, `payment-${paymentId}`)).find((event) => event.type === 'RefundRequested'));
        await eventually(async () => instances.every((instance) => instance.hasHandled(requested.position)), 10_000, 'both processes past the refund');
      } finally {
        await Promise.all(instances.map((instance) => instance.stop()));
      }

      // one refund was asked for, made at Stripe and recorded.
      expect(await eventTypes(backend.eventStore, `payment-${paymentId}`)).toEqual(['PaymentInitiated', 'PaymentSucceeded', 'RefundRequested', 'RefundSucceeded']);
      expect(stripe.refundsFor(paymentId)).toEqual([expect.objectContaining({ amount: 12_000, status: 'succeeded' })]);
      // Both may have asked Stripe for it, but under one key, as one refund.
      expect(new Set(stripe.requestsTo('create-refund').map((request) => request.idempotencyKey)).size).toBe(1);
      expect(await eventTypes(backend.eventStore, booking.streamId)).toEqual(['BookingRequested', 'BookingPaid', 'BookingConfirmed', 'BookingCancelled']);
      expect(await eventTypes(backend.eventStore, `listingCalendar-${listingId}`)).toEqual(['DatesHeld', 'DatesBooked', 'DatesReleased']);
    });
  });
});
