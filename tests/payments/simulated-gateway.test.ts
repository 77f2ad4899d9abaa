import { randomUUID } from 'node:crypto';
import type pg from 'pg';
import { afterAll, afterEach, beforeAll, describe, expect, it } from 'vitest';
import { requestBooking } from '../../src/application/bookings/booking.use-cases.js';
import { createListing } from '../../src/application/listings/listing.use-cases.js';
import { paymentIdFor } from '../../src/application/payments/payment-attempts.js';
import { startPayment } from '../../src/application/payments/payment.use-cases.js';
import { paymentProviderActor, recordProviderEvent, type PaymentProviderEvent } from '../../src/application/payments/provider-events.js';
import { idempotencyKeys, type CreateIntentRequest } from '../../src/application/ports/payment-gateway.js';
import { PaymentProcess } from '../../src/application/process-managers/payment.process.js';
import { ConfigError } from '../../src/infrastructure/config/config.js';
import { MemoryEventStore } from '../../src/infrastructure/memory-event-store/memory-event-store.js';
import { createKysely, createPool } from '../../src/infrastructure/postgres/database.js';
import { PgProcessCheckpoints } from '../../src/infrastructure/process-checkpoints/pg-process-checkpoints.js';
import { SimulatedPaymentGateway } from '../../src/infrastructure/simulated-payment-gateway/simulated-payment-gateway.js';
import { createPaymentGateway } from '../../src/infrastructure/stripe/payment-gateway.factory.js';
import { StripePaymentGateway } from '../../src/infrastructure/stripe/stripe-payment-gateway.js';
import { startBackend, type TestBackend } from '../http/support/command-api.fixture.js';
import { as, consumer, createTestSide, eventTypes, listingInput, owner } from '../support/command-side.js';
import { sleep } from '../../src/application/sleep.js';
import { capturedLogs } from '../support/captured-logs.js';
import { eventually } from '../support/eventually.js';


let backend: TestBackend;
beforeAll(async () => {
  backend = await startBackend();
});
afterAll(() => backend.close());

describe('gateway choice at start-up', () => {
  const store = new MemoryEventStore();
  const events = { side: createTestSide(store, { now: () => new Date() }), eventStore: store };

  it('without a key: the simulated gateway, and a loud warning', async () => {
    const { logger, lines } = capturedLogs();
    const gateway = createPaymentGateway({ NODE_ENV: 'development' }, logger, events, backend.pool);
    expect(gateway).toBeInstanceOf(SimulatedPaymentGateway);
    expect(lines).toEqual([expect.objectContaining({ level: 40, msg: expect.stringContaining('PAYMENTS ARE SIMULATED') })]);
    if (gateway instanceof SimulatedPaymentGateway) await gateway.close();
  });

  it('in production, a missing key or webhook secret stops start-up', () => {
    const { logger } = capturedLogs();
    expect(() => createPaymentGateway({ NODE_ENV: 'production' }, logger, events, backend.pool)).toThrow(ConfigError);
    expect(() => createPaymentGateway({ NODE_ENV: 'production', STRIPE_SECRET_KEY: 'sk_live_abc' }, logger, events, backend.pool)).toThrow(/STRIPE_WEBHOOK_SECRET/);
    const gateway = createPaymentGateway({ NODE_ENV: 'production', STRIPE_SECRET_KEY: 'sk_live_abc', STRIPE_WEBHOOK_SECRET: 'whsec_x' }, logger, events, backend.pool);
    expect(gateway).toBeInstanceOf(StripePaymentGateway);
  });
});

/** A simulated gateway paying itself at once, whose events are recorded through `side` (their ids into `delivered`). */
function gatewayRecordingTo(side: ReturnType<typeof createTestSide>, delivered: string[] = []): SimulatedPaymentGateway {
  return new SimulatedPaymentGateway({
    pool: backend.pool,
    succeedAfterMs: 20,
    pollIntervalMs: 10,
    deliver: async (event) => {
      await recordProviderEvent({ side, eventStore: backend.eventStore }, event, { actor: paymentProviderActor, requestId: 'sim', correlationId: 'sim', causationId: 'sim' });
      delivered.push(event.eventId);
    },
  });
}

describe('simulated gateway (the whole flow locally, no Stripe)', () => {
  it('an intent succeeds by itself and sends the events a webhook would; the process confirms the booking', async () => {
    const side = createTestSide(backend.eventStore, { now: () => new Date('2031-05-01T10:00:00Z') });
    const gateway = gatewayRecordingTo(side);
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
      await gateway.close();
    }
    expect(await eventTypes(backend.eventStore, `payment-${started.paymentId}`)).toEqual(['PaymentInitiated', 'PaymentSucceeded']);
  });
});

describe('simulated gateway: a start that crashed between the intent and its record', () => {
  it('the intent paid itself meanwhile (its success filed as unmatched): the retried start records the success, answers already-paid, and the booking is paid', async () => {
    const side = createTestSide(backend.eventStore, { now: () => new Date('2031-06-01T10:00:00Z') });
    const deliveries: string[] = [];
    const gateway = gatewayRecordingTo(side, deliveries);
    try {
      const listingId = (await createListing(side, listingInput, as(owner))).id;
      const booking = await requestBooking(side, { listingId, startDate: '2031-06-10', endDate: '2031-06-12' }, as(consumer));
      // The first start made the intent and crashed before InitiatePayment; the intent paid itself,
      // and its success found no payment to record it on.
      const paymentId = paymentIdFor(booking.id, 1);
      await gateway.createIntent({ paymentId, bookingId: booking.id, amount: 24_000, currency: 'EUR', idempotencyKey: idempotencyKeys.createIntent(paymentId) });
      await eventually(async () => deliveries.length > 0, 5_000, 'the success delivered');

      await expect(startPayment({ side, gateway, eventStore: backend.eventStore }, booking.id, as(consumer))).rejects.toMatchObject({ code: 'already-paid' });

      expect(await eventTypes(backend.eventStore, `payment-${paymentId}`)).toEqual(['PaymentInitiated', 'PaymentSucceeded']);
    } finally {
      await gateway.close();
    }
  });
});

/**
 * Two gateways on one database stand for two processes (compose runs two command processes and a
 * projector): a retry, a cancel or a repeated key may reach another process than the one that
 * made the intent, and what it answers must be what the first one would.
 */
describe('simulated gateway shared by the processes through PostgreSQL', () => {
  type Delivery = { readonly by: 'A' | 'B'; readonly event: PaymentProviderEvent };
  let poolB: pg.Pool;
  let gateways: SimulatedPaymentGateway[] = [];
  beforeAll(() => {
    // Process B's own connections, as another process would have.
    poolB = createPool(backend.database.url, 4);
  });
  afterEach(async () => {
    // A poller left running would claim the next spec's intents.
    await Promise.all(gateways.map((gateway) => gateway.close()));
    gateways = [];
  });
  afterAll(() => poolB.end());

  function twoProcesses(options: { succeedAfterMs: number; redeliverAfterMs?: number; failFirstDeliveries?: number; deliveryMs?: number }) {
    const deliveries: Delivery[] = [];
    let failures = options.failFirstDeliveries ?? 0;
    const start = (by: Delivery['by'], pool: pg.Pool) => {
      const gateway = new SimulatedPaymentGateway({
        pool,
        succeedAfterMs: options.succeedAfterMs,
        pollIntervalMs: 5,
        ...(options.redeliverAfterMs === undefined ? {} : { redeliverAfterMs: options.redeliverAfterMs }),
        deliver: async (event) => {
          if (failures > 0) {
            failures--;
            throw new Error('event store unavailable');
          }
          // A slow event store, as under load.
          if (options.deliveryMs !== undefined) await sleep(options.deliveryMs);
          deliveries.push({ by, event });
        },
      });
      gateways.push(gateway);
      return gateway;
    };
    return { a: start('A', backend.pool), b: start('B', poolB), start, deliveries };
  }

  const intentRequest = (): CreateIntentRequest => {
    const paymentId = randomUUID();
    return { paymentId, bookingId: randomUUID(), amount: 24_000, currency: 'EUR', idempotencyKey: idempotencyKeys.createIntent(paymentId) };
  };
  const kinds = (deliveries: readonly Delivery[]) => deliveries.map(({ event }) => event.kind);

  it('an intent created on A is retrieved on B', async () => {
    const { a, b } = twoProcesses({ succeedAfterMs: 60_000 });
    const created = await a.createIntent(intentRequest());
    expect(await b.retrieveIntent(created.intentId)).toEqual(created);
    expect(await b.retrieveIntent('pi_sim_unknown')).toBeUndefined();
  });

  it('an intent cancelled on B never succeeds on A; B delivers the cancellation once', async () => {
    const { a, b, deliveries } = twoProcesses({ succeedAfterMs: 300 });
    const created = await a.createIntent(intentRequest());
    expect(await b.cancelIntent({ intentId: created.intentId })).toEqual({ outcome: 'canceled' });
    await sleep(700);
    expect(deliveries).toEqual([{ by: 'B', event: expect.objectContaining({ kind: 'payment-canceled', intentId: created.intentId }) }]);
    expect(await a.retrieveIntent(created.intentId)).toMatchObject({ status: 'canceled', amountReceived: 0 });
    // A second cancel, on either, finds it canceled and sends nothing more.
    expect(await a.cancelIntent({ intentId: created.intentId })).toEqual({ outcome: 'canceled' });
    await sleep(100);
    expect(deliveries).toHaveLength(1);
  });

  it('each success is delivered exactly once though both poll, and B sees it succeeded', async () => {
    const { a, b, deliveries } = twoProcesses({ succeedAfterMs: 30 });
    const created = await Promise.all(Array.from({ length: 20 }, () => a.createIntent(intentRequest())));
    for (const intent of created) {
      await eventually(async () => (await b.retrieveIntent(intent.intentId))?.status === 'succeeded', 5_000, `${intent.intentId} succeeded on B`);
    }
    await eventually(async () => deliveries.length >= created.length, 5_000, 'every success delivered');
    await sleep(200);
    const succeeded = deliveries.map(({ event }) => (event.kind === 'payment-succeeded' ? event.intentId : event.kind));
    expect(succeeded.sort()).toEqual(created.map((intent) => intent.intentId).sort());
    expect(await b.cancelIntent({ intentId: created[0]?.intentId ?? '' })).toEqual({ outcome: 'not-cancelable', status: 'succeeded' });
  });

  it('a repeated idempotency key on B answers A\'s intent as it is now, and starts no second payment', async () => {
    const { a, b, deliveries } = twoProcesses({ succeedAfterMs: 300 });
    const request = intentRequest();
    const first = await a.createIntent(request);
    expect(await b.createIntent(request)).toEqual(first);
    await a.cancelIntent({ intentId: first.intentId });
    expect(await b.createIntent(request)).toEqual({ ...first, status: 'canceled' });
    await sleep(700);
    expect(kinds(deliveries)).toEqual(['payment-canceled']);
  });

  it('a repeated refund key on B answers A\'s refund, whose success is delivered once', async () => {
    const { a, b, deliveries } = twoProcesses({ succeedAfterMs: 60_000 });
    const refund = { intentId: 'pi_sim_x', paymentId: randomUUID(), refundId: randomUUID(), amount: 100, idempotencyKey: `refund:${randomUUID()}` };
    const first = await a.createRefund(refund);
    expect(await b.createRefund(refund)).toEqual(first);
    await sleep(200);
    expect(deliveries).toEqual([{ by: 'A', event: expect.objectContaining({ kind: 'refund-succeeded', refundId: refund.refundId }) }]);
  });

  it('a refund A made is found on B by our ids, succeeded; one never made is not', async () => {
    const { a, b } = twoProcesses({ succeedAfterMs: 60_000 });
    const refund = { intentId: 'pi_sim_y', paymentId: randomUUID(), refundId: randomUUID(), amount: 100, idempotencyKey: `refund:${randomUUID()}` };
    const made = await a.createRefund(refund);

    expect(await b.retrieveRefund(refund)).toEqual(made);
    expect(await b.retrieveRefund({ ...refund, refundId: randomUUID() })).toBeUndefined();
  });

  it('a delivery that failed is made again, as Stripe retries a webhook', async () => {
    const { a, deliveries } = twoProcesses({ succeedAfterMs: 10, redeliverAfterMs: 100, failFirstDeliveries: 1 });
    const created = await a.createIntent(intentRequest());
    await eventually(async () => deliveries.length > 0, 5_000, 'the success delivered after all');
    await sleep(300);
    expect(deliveries).toEqual([{ by: expect.any(String), event: expect.objectContaining({ kind: 'payment-succeeded', intentId: created.intentId, amount: 24_000 }) }]);
  });

  it('a success, delivered or retrieved, says when the intent was paid', async () => {
    const { a, b, deliveries } = twoProcesses({ succeedAfterMs: 10 });
    const created = await a.createIntent(intentRequest());
    await eventually(async () => deliveries.length > 0, 5_000, 'the success delivered');
    const retrieved = await b.retrieveIntent(created.intentId);
    expect(retrieved?.capturedAt).toEqual(expect.stringMatching(/^\d{4}-\d{2}-\d{2}T/));
    expect(deliveries[0]?.event).toMatchObject({ kind: 'payment-succeeded', capturedAt: retrieved?.capturedAt });
  });

  it('a claimed batch is delivered within its lease though each delivery is slow: a burst of successes is delivered once each', async () => {
    const { a, deliveries } = twoProcesses({ succeedAfterMs: 60_000, redeliverAfterMs: 1_000, deliveryMs: 30 });
    const created = await Promise.all(Array.from({ length: 50 }, () => a.createIntent(intentRequest())));
    const intentIds = created.map((intent) => intent.intentId);
    // All due at the same moment, as after a pause or a burst of payments.
    await backend.pool.query('UPDATE simulated_payment_intents SET succeed_at = now() WHERE intent_id = ANY($1)', [intentIds]);
    await eventually(async () => deliveries.length >= intentIds.length, 10_000, 'every success delivered');
    // Past a lease: a batch claimed whole and delivered past its lease would be delivered again by now.
    await sleep(1_200);
    const succeeded = deliveries.map(({ event }) => (event.kind === 'payment-succeeded' ? event.intentId : event.kind));
    expect(succeeded.sort()).toEqual([...intentIds].sort());
  });

  it('old outcomes already delivered are removed; recent, awaiting and undelivered ones are kept', async () => {
    const { a, start } = twoProcesses({ succeedAfterMs: 60_000 });
    const intent = async (status: 'awaiting-payment' | 'succeeded' | 'canceled', delivered: boolean, ageDays: number) => {
      const { intentId } = await a.createIntent(intentRequest());
      await backend.pool.query(
        `UPDATE simulated_payment_intents
            SET status = $2, created_at = now() - make_interval(days => $3),
                deliver_at = CASE WHEN $4 THEN NULL ELSE now() + interval '1 hour' END
          WHERE intent_id = $1`,
        [intentId, status, ageDays, delivered],
      );
      return intentId;
    };
    const refund = async (delivered: boolean, ageDays: number) => {
      const idempotencyKey = `refund:${randomUUID()}`;
      await a.createRefund({ intentId: 'pi_sim_x', paymentId: randomUUID(), refundId: randomUUID(), amount: 100, idempotencyKey });
      // Its delivery is under way at once: wait for it, so that it does not clear what is set below.
      await eventually(async () => (await backend.pool.query('SELECT 1 FROM simulated_refunds WHERE idempotency_key = $1 AND deliver_at IS NULL', [idempotencyKey])).rowCount === 1, 5_000, 'refund delivered');
      await backend.pool.query(
        `UPDATE simulated_refunds
            SET created_at = now() - make_interval(days => $2),
                deliver_at = CASE WHEN $3 THEN NULL ELSE now() + interval '1 hour' END
          WHERE idempotency_key = $1`,
        [idempotencyKey, ageDays, delivered],
      );
      return idempotencyKey;
    };
    const removedIntents = [await intent('succeeded', true, 8), await intent('canceled', true, 8)];
    // Two days: past a booking's longest hold (one day) and Stripe's idempotency window (24 h), short of the retention.
    const keptIntents = [await intent('succeeded', true, 2), await intent('awaiting-payment', true, 8), await intent('succeeded', false, 8), await intent('canceled', false, 8)];
    const removedRefunds = [await refund(true, 8)];
    const keptRefunds = [await refund(true, 2), await refund(false, 8)];
    const intentsLeft = async () => (await backend.pool.query<{ intent_id: string }>('SELECT intent_id FROM simulated_payment_intents WHERE intent_id = ANY($1)', [[...removedIntents, ...keptIntents]])).rows.map((row) => row.intent_id);
    const refundsLeft = async () => (await backend.pool.query<{ idempotency_key: string }>('SELECT idempotency_key FROM simulated_refunds WHERE idempotency_key = ANY($1)', [[...removedRefunds, ...keptRefunds]])).rows.map((row) => row.idempotency_key);

    // A process starting now cleans up on its first poll.
    start('B', poolB);
    await eventually(async () => (await intentsLeft()).length === keptIntents.length && (await refundsLeft()).length === keptRefunds.length, 3_000, 'old delivered rows removed');
    expect((await intentsLeft()).sort()).toEqual([...keptIntents].sort());
    expect((await refundsLeft()).sort()).toEqual([...keptRefunds].sort());
    expect(await a.retrieveIntent(keptIntents[0] ?? '')).toMatchObject({ status: 'succeeded' });

    // At most once a minute per process: a row that ages meanwhile waits for the next clean-up.
    const agedMeanwhile = await intent('succeeded', true, 8);
    await sleep(150);
    expect(await a.retrieveIntent(agedMeanwhile)).toMatchObject({ status: 'succeeded' });
  });
});
