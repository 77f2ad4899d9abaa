import { randomUUID } from 'node:crypto';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { PaymentProcess } from '../../src/application/process-managers/payment.process.js';
import { PgEventStore } from '../../src/infrastructure/pg-event-store/pg-event-store.js';
import { createKysely } from '../../src/infrastructure/postgres/database.js';
import { PgProcessCheckpoints } from '../../src/infrastructure/process-checkpoints/pg-process-checkpoints.js';
import { StripePaymentGateway } from '../../src/infrastructure/stripe/stripe-payment-gateway.js';
import { FakeClock, startBackend, type TestBackend } from '../http/support/command-api.fixture.js';
import { createTestSide, fakeClock, listingInput, streamEvents } from '../support/command-side.js';
import { eventually } from '../support/eventually.js';
import { FakeStripeServer } from '../stripe/support/fake-stripe-server.js';
import { caller, deliver, intentObject, person, startPaymentsApi, stripeEvent, type PaymentsApi } from './support/payments-api.fixture.js';

const owner = person(['OWNER']);
const consumer = person(['CONSUMER']);

/**
 * Refunds never exceed what was captured, also when an owner's refunds race each other: each is
 * decided on the payment as it is when appended. Two command APIs, each with its own event store
 * and command side (its own caches), as two processes would be, on one database.
 */
describe('concurrent refunds of one payment (real HTTP, real PostgreSQL, fake Stripe)', () => {
  let backend: TestBackend;
  let stripe: FakeStripeServer;
  let apis: PaymentsApi[];
  const ownStores: PgEventStore[] = [];

  const gateway = () => StripePaymentGateway.fromOptions({ secretKey: 'sk_test_fake', apiBase: stripe.apiBase, timeoutMs: 2_000 });

  beforeAll(async () => {
    backend = await startBackend();
    stripe = await new FakeStripeServer().start();
    const second = new PgEventStore(backend.pool);
    ownStores.push(second);
    // A month before the stay below, the time the payment process's side keeps too.
    const clock = new FakeClock(new Date('2031-04-01T10:00:00Z'));
    apis = [await startPaymentsApi(backend, gateway(), clock), await startPaymentsApi({ ...backend, eventStore: second }, gateway(), clock)];
  });

  afterAll(async () => {
    await Promise.all(apis.map((api) => api.close()));
    await Promise.all(ownStores.map((store) => store.close()));
    await stripe.stop();
    await backend.close();
  });

  it('ten refunds of 5,000 at once on a payment of 24,000: four accepted, six refused refund-exceeds-captured; Stripe refunds 20,000', async () => {
    // Given a booking paid 24,000 (two days at 12,000),
    const [first] = apis;
    if (!first) throw new Error('no api');
    const post = caller(first);
    const listingId = String((await post('/v1/listings', listingInput, owner)).body.id);
    const booked = await post('/v1/bookings', { listingId, startDate: '2031-05-01', endDate: '2031-05-03' }, consumer);
    const paymentId = String((await post(`/v1/bookings/${String(booked.body.id)}/payments`, {}, consumer)).body.paymentId);
    const intentId = stripe.intentsFor(paymentId)[0]?.id ?? '';
    stripe.setIntentStatus(intentId, 'succeeded');
    expect((await deliver(first, stripeEvent(`evt_${randomUUID()}`, 'payment_intent.succeeded', intentObject(intentId, paymentId, { amount_received: 24_000 })))).status).toBe(200);

    // when its owner asks for ten refunds of 5,000 at once, each under its own key, through either API,
    const answers = await Promise.all(
      Array.from({ length: 10 }, (_, i) => caller(apis[i % apis.length] ?? first)(`/v1/payments/${paymentId}/refund`, { amount: 5_000 }, owner, { 'idempotency-key': randomUUID() })),
    );

    // then four are accepted and the other six refused as more than is left,
    expect(answers.filter((answer) => answer.status === 201)).toHaveLength(4);
    const refused = answers.filter((answer) => answer.status !== 201);
    expect(refused.map((answer) => ({ status: answer.status, code: String(answer.body.type).split('/').pop() }))).toEqual(
      Array.from({ length: 6 }, () => ({ status: 409, code: 'refund-exceeds-captured' })),
    );
    const requested = (await streamEvents(backend.eventStore, `payment-${paymentId}`)).filter((event) => event.type === 'RefundRequested');
    expect(requested.map((event) => event.data.amount)).toEqual([5_000, 5_000, 5_000, 5_000]);

    // and, once the payment process has sent them, Stripe has refunded 20,000 of the 24,000.
    const side = createTestSide(backend.eventStore, fakeClock('2031-04-01T10:00:00Z'));
    const process = new PaymentProcess({ eventStore: backend.eventStore, side, gateway: gateway(), checkpoints: new PgProcessCheckpoints(createKysely(backend.pool)), retryDelayMs: 20 });
    const stop = new AbortController();
    const running = process.run(stop.signal);
    try {
      await eventually(async () => (await streamEvents(backend.eventStore, `payment-${paymentId}`)).filter((event) => event.type === 'RefundSucceeded').length === 4);
    } finally {
      stop.abort();
      await running;
    }
    const refunds = stripe.refundsFor(paymentId);
    expect(refunds.map((refund) => refund.amount)).toEqual([5_000, 5_000, 5_000, 5_000]);
    expect(refunds.reduce((sum, refund) => sum + refund.amount, 0)).toBeLessThanOrEqual(24_000);
  });
});
