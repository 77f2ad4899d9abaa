import { Writable } from 'node:stream';
import { pino } from 'pino';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { requestBooking } from '../../src/application/bookings/booking.use-cases.js';
import { createListing } from '../../src/application/listings/listing.use-cases.js';
import { startPayment } from '../../src/application/payments/payment.use-cases.js';
import { paymentProviderActor, recordProviderEvent } from '../../src/application/payments/provider-events.js';
import { idempotencyKeys } from '../../src/application/ports/payment-gateway.js';
import { PaymentProcess } from '../../src/application/process-managers/payment.process.js';
import { ConfigError } from '../../src/infrastructure/config/config.js';
import { MemoryEventStore } from '../../src/infrastructure/memory-event-store/memory-event-store.js';
import { createKysely } from '../../src/infrastructure/postgres/database.js';
import { PgProcessCheckpoints } from '../../src/infrastructure/process-checkpoints/pg-process-checkpoints.js';
import { SimulatedPaymentGateway } from '../../src/infrastructure/simulated-payment-gateway/simulated-payment-gateway.js';
import { createPaymentGateway } from '../../src/infrastructure/stripe/payment-gateway.factory.js';
import { StripePaymentGateway } from '../../src/infrastructure/stripe/stripe-payment-gateway.js';
import { startBackend, type TestBackend } from '../http/support/command-api.fixture.js';
import { as, consumer, createTestSide, eventTypes, listingInput, owner } from '../support/command-side.js';
import { sleep } from '../../src/application/sleep.js';

function capturingLogger() {
  const lines: { level: number; msg: string }[] = [];
  const sink = new Writable({
    write(chunk: Buffer, _encoding, done) {
      for (const line of chunk.toString('utf8').split('\n')) if (line.trim() !== '') lines.push(JSON.parse(line));
      done();
    },
  });
  return { logger: pino({ level: 'info' }, sink), lines };
}

describe('gateway choice at start-up', () => {
  const store = new MemoryEventStore();
  const events = { side: createTestSide(store, { now: () => new Date() }), eventStore: store };

  it('without a key: the simulated gateway, and a loud warning', () => {
    const { logger, lines } = capturingLogger();
    const gateway = createPaymentGateway({ NODE_ENV: 'development' }, logger, events);
    expect(gateway).toBeInstanceOf(SimulatedPaymentGateway);
    expect(lines).toEqual([expect.objectContaining({ level: 40, msg: expect.stringContaining('PAYMENTS ARE SIMULATED') })]);
  });

  it('in production, a missing key or webhook secret stops start-up', () => {
    const { logger } = capturingLogger();
    expect(() => createPaymentGateway({ NODE_ENV: 'production' }, logger, events)).toThrow(ConfigError);
    expect(() => createPaymentGateway({ NODE_ENV: 'production', STRIPE_SECRET_KEY: 'sk_live_abc' }, logger, events)).toThrow(/STRIPE_WEBHOOK_SECRET/);
    const gateway = createPaymentGateway({ NODE_ENV: 'production', STRIPE_SECRET_KEY: 'sk_live_abc', STRIPE_WEBHOOK_SECRET: 'whsec_x' }, logger, events);
    expect(gateway).toBeInstanceOf(StripePaymentGateway);
  });
});

describe('simulated gateway (the whole flow locally, no Stripe)', () => {
  let backend: TestBackend;
  beforeAll(async () => {
    backend = await startBackend();
  });
  afterAll(() => backend.close());

  it('an intent succeeds by itself and sends the events a webhook would; the process confirms the booking', async () => {
    const side = createTestSide(backend.eventStore, { now: () => new Date('2031-05-01T10:00:00Z') });
    const gateway = new SimulatedPaymentGateway({
      succeedAfterMs: 20,
      deliver: async (event) => {
        await recordProviderEvent({ side, eventStore: backend.eventStore }, event, { actor: paymentProviderActor, requestId: 'sim', correlationId: 'sim', causationId: 'sim' });
      },
    });
    const listingId = (await createListing(side, listingInput, as(owner))).id;
    const booking = await requestBooking(side, { listingId, startDate: '2031-05-10', endDate: '2031-05-12' }, as(consumer));
    const started = await startPayment({ side, gateway, eventStore: backend.eventStore }, booking.id, as(consumer));
    expect(started.clientSecret).toMatch(/^pi_sim_/);
    // Like Stripe, the same key gives the same intent back.
    const again = await gateway.createIntent({ paymentId: started.paymentId, bookingId: booking.id, amount: 24_000, currency: 'EUR', idempotencyKey: idempotencyKeys.createIntent(started.paymentId) });
    expect(again.clientSecret).toBe(started.clientSecret);

    const process = new PaymentProcess({ eventStore: backend.eventStore, side, gateway, checkpoints: new PgProcessCheckpoints(createKysely(backend.pool)) });
    const stop = new AbortController();
    const running = process.run(stop.signal);
    try {
      const deadline = Date.now() + 10_000;
      while ((await side.handlers.booking.read(`booking-${booking.id}`)).state.status !== 'confirmed') {
        if (Date.now() > deadline) throw new Error('booking not confirmed in time');
        await sleep(25);
      }
    } finally {
      stop.abort();
      await running;
      gateway.close();
    }
    expect(await eventTypes(backend.eventStore, `payment-${started.paymentId}`)).toEqual(['PaymentInitiated', 'PaymentSucceeded']);
  });
});
