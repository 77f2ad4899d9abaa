import { randomUUID } from 'node:crypto';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { formatPosition } from '../../src/application/ports/position.js';
import { PaymentProcess } from '../../src/application/process-managers/payment.process.js';
import type { HttpServer } from '../../src/infrastructure/http/http-server.js';
import { createKysely } from '../../src/infrastructure/postgres/database.js';
import { PgProcessCheckpoints } from '../../src/infrastructure/process-checkpoints/pg-process-checkpoints.js';
import { StripePaymentGateway } from '../../src/infrastructure/stripe/stripe-payment-gateway.js';
import { startBackend, type TestBackend } from '../http/support/command-api.fixture.js';
import { eventTypes, listingInput } from '../support/command-side.js';
import { FakeStripeServer } from '../stripe/support/fake-stripe-server.js';
import { startReadSide, type ReadSide } from '../http/support/read-side.fixture.js';
import { caller, deliver, intentObject, person, refundObject, startPaymentsApi, stripeEvent, type PaymentsApi } from './support/payments-api.fixture.js';
import { sleep } from '../../src/application/sleep.js';

const owner = person(['OWNER']);
const consumer = person(['CONSUMER']);
const day = 86_400_000;

async function eventually<T>(probe: () => Promise<T | undefined | false>, what: string, timeoutMs = 15_000): Promise<T> {
  const deadline = Date.now() + timeoutMs;
  for (;;) {
    const value = await probe();
    if (value !== undefined && value !== false) return value;
    if (Date.now() > deadline) throw new Error(`timed out waiting for ${what}`);
    await sleep(50);
  }
}

describe('booking paid and cancelled, end to end over HTTP', () => {
  let backend: TestBackend;
  let stripe: FakeStripeServer;
  let api: PaymentsApi;
  let readSide: ReadSide;
  let queryApi: HttpServer;
  const stopProcess = new AbortController();
  let process: Promise<void>;

  beforeAll(async () => {
    backend = await startBackend();
    stripe = await new FakeStripeServer().start();
    const gateway = StripePaymentGateway.fromOptions({ secretKey: 'sk_test_fake', apiBase: stripe.apiBase, timeoutMs: 2_000 });
    api = await startPaymentsApi(backend, gateway);
    const checkpoints = new PgProcessCheckpoints(createKysely(backend.pool));
    process = new PaymentProcess({ eventStore: backend.eventStore, side: api.side, gateway, checkpoints, retryDelayMs: 50 }).run(stopProcess.signal);

    readSide = await startReadSide(backend, api);
    queryApi = readSide.queryApi;
  });

  afterAll(async () => {
    stopProcess.abort();
    await process;
    await readSide.close();
    await api.close();
    await stripe.stop();
    await backend.close();
  });

  it('books → pays → webhook → confirmed → consumer cancels 3 days ahead → 50 % refund recorded and visible', async () => {
    const post = caller(api);
    const listingId = String((await post('/v1/listings', listingInput, owner)).body.id);
    const now = api.clock.now().getTime();
    const startDate = new Date(now + 3 * day).toISOString().slice(0, 10);
    const endDate = new Date(now + 5 * day).toISOString().slice(0, 10);

    const booked = await post('/v1/bookings', { listingId, startDate, endDate }, consumer);
    expect(booked.status).toBe(201);
    const bookingId = String(booked.body.id);

    const started = await post(`/v1/bookings/${bookingId}/payments`, {}, consumer, { 'idempotency-key': randomUUID() });
    expect(started.status).toBe(201);
    const paymentId = String(started.body.paymentId);
    const [intent] = stripe.intentsFor(paymentId);
    expect(intent).toMatchObject({ amount: 24_000, currency: 'eur', client_secret: started.body.clientSecret });

    // The customer confirms the payment in the browser; Stripe tells us.
    stripe.setIntentStatus(intent?.id ?? '', 'succeeded');
    const paid = stripeEvent(`evt_${randomUUID()}`, 'payment_intent.succeeded', intentObject(intent?.id ?? '', paymentId, { amount: 24_000, amount_received: 24_000 }));
    expect((await deliver(api, paid)).status).toBe(200);

    await eventually(async () => (await api.side.handlers.booking.read(`booking-${bookingId}`)).state.status === 'confirmed', 'the booking to be confirmed');
    expect(await eventTypes(backend.eventStore, `listingCalendar-${listingId}`)).toEqual(['DatesHeld', 'DatesBooked']);

    const cancelled = await post(`/v1/bookings/${bookingId}/cancel`, { reason: 'plans changed' }, consumer);
    expect(cancelled.status).toBe(200);

    const settled = await eventually(async () => {
      const { state, position } = await api.side.handlers.payment.read(`payment-${paymentId}`);
      return state.status === 'succeeded' && state.refunds[0]?.status === 'succeeded' ? position : undefined;
    }, 'the refund to be recorded');
    expect(stripe.refundsFor(paymentId)).toEqual([expect.objectContaining({ amount: 12_000, status: 'succeeded' })]);
    expect(await eventTypes(backend.eventStore, `payment-${paymentId}`)).toEqual(['PaymentInitiated', 'PaymentSucceeded', 'RefundRequested', 'RefundSucceeded']);

    // Stripe's own notice of the refund changes nothing more.
    const refundId = stripe.refundsFor(paymentId)[0]?.metadata.refundId ?? '';
    expect((await deliver(api, stripeEvent(`evt_${randomUUID()}`, 'refund.updated', refundObject(refundId, paymentId)))).status).toBe(200);
    expect(await eventTypes(backend.eventStore, `payment-${paymentId}`)).toHaveLength(4);

    const auth = { authorization: `Bearer ${queryApi.issueAccessToken(consumer).accessToken}`, 'consistency-position': formatPosition(settled) };
    const payment = await queryApi.inject({ url: `/v1/payments/${paymentId}`, headers: auth });
    expect(payment.statusCode).toBe(200);
    expect(payment.json()).toMatchObject({ status: 'succeeded', amount: 24_000, refundedAmount: 12_000, refunds: [{ amount: 12_000, status: 'succeeded' }] });
    const booking = await queryApi.inject({ url: `/v1/bookings/${bookingId}`, headers: auth });
    expect(booking.json()).toMatchObject({ status: 'cancelled', cancellation: { cancelledBy: 'consumer', refundPercent: 50, refundAmount: 12_000 } });
  });
});
