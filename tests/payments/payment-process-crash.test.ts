import { spawn, type ChildProcess } from 'node:child_process';
import { fileURLToPath } from 'node:url';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { cancelBooking, requestBooking } from '../../src/application/bookings/booking.use-cases.js';
import type { CommandSide } from '../../src/application/command-handlers.js';
import { createListing } from '../../src/application/listings/listing.use-cases.js';
import { startPayment } from '../../src/application/payments/payment.use-cases.js';
import { paymentProviderActor, recordProviderEvent } from '../../src/application/payments/provider-events.js';
import { systemClock } from '../../src/application/ports/clock.js';
import { paymentProcessName } from '../../src/application/process-managers/payment.process.js';
import { createKysely } from '../../src/infrastructure/postgres/database.js';
import { PgProcessCheckpoints, type ProcessCheckpointTables } from '../../src/infrastructure/process-checkpoints/pg-process-checkpoints.js';
import { StripePaymentGateway } from '../../src/infrastructure/stripe/stripe-payment-gateway.js';
import { startBackend, type TestBackend } from '../http/support/command-api.fixture.js';
import { as, consumer, createTestSide, eventTypes, listingInput, owner } from '../support/command-side.js';
import { pgVault } from '../support/personal-data.js';
import { FakeStripeServer } from '../stripe/support/fake-stripe-server.js';
import { sleep } from '../../src/application/sleep.js';

const child = fileURLToPath(new URL('./support/payment-process-child.ts', import.meta.url));
const day = 86_400_000;

describe('payment process manager killed with SIGKILL at the worst moments', () => {
  let backend: TestBackend;
  let stripe: FakeStripeServer;
  let side: CommandSide;

  /** `node --import tsx`, so the process we kill is the one running the process manager. */
  function start(crash: { afterAppends?: number; afterRefunds?: number } = {}): ChildProcess {
    const args = [child, backend.database.url, String(stripe.port), String(crash.afterAppends ?? 0), String(crash.afterRefunds ?? 0)];
    return spawn(process.execPath, ['--import', 'tsx', ...args], { stdio: ['ignore', 'ignore', 'inherit'] });
  }

  /** Waits for a child that is meant to kill itself; fails if it does not. */
  function crashed(running: ChildProcess, timeoutMs = 20_000): Promise<NodeJS.Signals | null> {
    return new Promise((resolve, reject) => {
      const timer = setTimeout(() => {
        running.kill('SIGKILL');
        reject(new Error('the child did not crash where it was told to'));
      }, timeoutMs);
      running.once('exit', (_code, signal) => {
        clearTimeout(timer);
        resolve(signal);
      });
    });
  }

  async function eventually(check: () => Promise<boolean>, what: string): Promise<void> {
    const deadline = Date.now() + 20_000;
    while (!(await check())) {
      if (Date.now() > deadline) throw new Error(`timed out waiting for ${what}`);
      await sleep(50);
    }
  }

  beforeAll(async () => {
    backend = await startBackend();
    stripe = await new FakeStripeServer().start();
    // The child reveals what this side seals: with the keys both find in the database.
    side = createTestSide(backend.eventStore, systemClock, 15, pgVault(backend.pool));
  });
  afterAll(async () => {
    await stripe.stop();
    await backend.close();
  });

  it('after crashes between confirmation steps and between the refund and its record: confirmed, then one 50 % refund', async () => {
    const gateway = StripePaymentGateway.fromOptions({ secretKey: 'sk_test_fake', apiBase: stripe.apiBase, timeoutMs: 2_000 });
    const payments = { side, gateway, eventStore: backend.eventStore };
    const listingId = (await createListing(side, listingInput, as(owner))).id;
    const now = Date.now();
    const stay = { startDate: new Date(now + 3 * day).toISOString().slice(0, 10), endDate: new Date(now + 5 * day).toISOString().slice(0, 10) };
    const bookingId = (await requestBooking(side, { listingId, ...stay }, as(consumer))).id;
    const { paymentId } = await startPayment(payments, bookingId, as(consumer));
    const intentId = stripe.intentsFor(paymentId)[0]?.id ?? '';
    stripe.setIntentStatus(intentId, 'succeeded');
    const webhook = { actor: paymentProviderActor, requestId: 'wh', correlationId: 'wh', causationId: 'wh' };
    await recordProviderEvent(payments, { kind: 'payment-succeeded', eventId: 'evt_crash_paid', paymentId, intentId, amount: 24_000, currency: 'EUR' }, webhook);
    const bookingEvents = () => eventTypes(backend.eventStore, `booking-${bookingId}`);

    // Dies right after MarkBookingPaid: paid, dates still only held.
    expect(await crashed(start({ afterAppends: 1 }))).toBe('SIGKILL');
    expect(await bookingEvents()).toEqual(['BookingRequested', 'BookingPaid']);
    expect(await eventTypes(backend.eventStore, `listingCalendar-${listingId}`)).toEqual(['DatesHeld']);
    // Replays the same event: marking paid again appends nothing, so its first append is BookDates.
    expect(await crashed(start({ afterAppends: 1 }))).toBe('SIGKILL');
    expect(await eventTypes(backend.eventStore, `listingCalendar-${listingId}`)).toEqual(['DatesHeld', 'DatesBooked']);
    expect(await crashed(start({ afterAppends: 1 }))).toBe('SIGKILL');
    expect(await bookingEvents()).toEqual(['BookingRequested', 'BookingPaid', 'BookingConfirmed']);

    await cancelBooking(side, bookingId, { reason: 'plans changed' }, as(consumer));
    // Dies after Stripe made the refund, before RecordRefundSucceeded.
    expect(await crashed(start({ afterRefunds: 1 }))).toBe('SIGKILL');
    expect(stripe.refundsFor(paymentId)).toHaveLength(1);
    expect(await eventTypes(backend.eventStore, `payment-${paymentId}`)).toEqual(['PaymentInitiated', 'PaymentSucceeded', 'RefundRequested']);

    const last = start();
    try {
      await eventually(async () => (await eventTypes(backend.eventStore, `payment-${paymentId}`)).includes('RefundSucceeded'), 'the refund to be recorded');
      const checkpoints = new PgProcessCheckpoints(createKysely<ProcessCheckpointTables>(backend.pool));
      await eventually(async () => (await checkpoints.load(paymentProcessName)) !== undefined, 'a checkpoint');
    } finally {
      last.kill('SIGKILL');
      await new Promise((resolve) => last.once('exit', resolve));
    }

    expect(await bookingEvents()).toEqual(['BookingRequested', 'BookingPaid', 'BookingConfirmed', 'BookingCancelled']);
    expect(await eventTypes(backend.eventStore, `payment-${paymentId}`)).toEqual(['PaymentInitiated', 'PaymentSucceeded', 'RefundRequested', 'RefundSucceeded']);
    expect(stripe.refundsFor(paymentId)).toEqual([expect.objectContaining({ amount: 12_000, status: 'succeeded' })]);
    // Made once, under one key; the process after the crash found it by its refundId, not by a second create.
    const keys = stripe.requestsTo('create-refund').map((request) => request.idempotencyKey);
    expect(keys).toHaveLength(1);
    expect(stripe.requestsTo('list-refunds').length).toBeGreaterThanOrEqual(2);
    // Six children, each starting tsx: about 20 s on an idle machine, more on a busy one.
  }, 90_000);
});
