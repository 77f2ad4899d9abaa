import { randomUUID } from 'node:crypto';
import { pino } from 'pino';
import { Registry } from 'prom-client';
import { afterAll, afterEach, beforeAll, describe, expect, it, vi } from 'vitest';
import { unmatchedStreamId } from '../../src/application/payments/provider-events.js';
import type { PaymentGateway, ProviderIntent } from '../../src/application/ports/payment-gateway.js';
import { createHttpServer, type HttpServer } from '../../src/infrastructure/http/http-server.js';
import type { LoadSheddingOptions } from '../../src/infrastructure/http/plugins/load-shedding.plugin.js';
import { stripeWebhookRoutes } from '../../src/infrastructure/http/routes/stripe-webhook.routes.js';
import { MemoryEventStore } from '../../src/infrastructure/memory-event-store/memory-event-store.js';
import { webhookMetrics } from '../../src/infrastructure/metrics/webhook-metrics.js';
import { SimulatedPaymentGateway } from '../../src/infrastructure/simulated-payment-gateway/simulated-payment-gateway.js';
import { startApi, startBackend, type TestApi, type TestBackend } from '../http/support/command-api.fixture.js';
import { admin, as, createTestSide, eventTypes, fakeClock, streamEvents } from '../support/command-side.js';
import { stripeSignature } from '../stripe/support/stripe-events.js';
import { deliver, intentObject, stripeEvent, webhookSecret } from './support/payments-api.fixture.js';

/**
 * The Stripe webhook is admitted by its signature, not by per-IP limits or load.
 *
 * End to end, over real HTTP on the command API with PostgreSQL: signed events from one address
 * pass its per-IP limit without spending the budget of the other routes (every request there
 * comes from 127.0.0.1, which is all this needs).
 *
 * The rest are unit tests of the admission hooks on the shared HTTP server, through `inject` on
 * a MemoryEventStore, for what the real API cannot show cheaply: the webhook's own budget per
 * address is at least 6,000 a minute there (a flood that size to see it end), and the command
 * API fixture starts no load shedding.
 */

/** A success for a payment we do not know is recorded as unmatched: a delivery that got through leaves a stream. */
const unknownPaymentSucceeded = (eventId: string) =>
  stripeEvent(eventId, 'payment_intent.succeeded', intentObject(`pi_${randomUUID()}`, randomUUID(), { amount_received: 100 }));

describe('the Stripe webhook over real HTTP, on the command API with PostgreSQL', () => {
  let backend: TestBackend;
  let api: TestApi;

  beforeAll(async () => {
    backend = await startBackend();
    // The webhook records what Stripe tells it without asking Stripe anything: this is never called.
    const gateway = new SimulatedPaymentGateway({ pool: backend.pool, deliver: async () => undefined });
    api = await startApi(backend, {
      rateLimitMax: 3,
      corsOrigins: [],
      payments: { gateway, eventStore: backend.eventStore, webhookSecret },
      routes: (app) => app.get('/work', async () => ({ ok: true })),
    });
  });
  afterAll(async () => {
    await api.close();
    await backend.close();
  });

  it('takes every signed event from one address past the per-IP rate limit, without spending the budget of other routes', async () => {
    const deliveries = [];
    for (let i = 0; i < 6; i++) {
      const eventId = `evt_${randomUUID()}`;
      const { status } = await deliver(api, unknownPaymentSucceeded(eventId));
      deliveries.push({ status, recorded: await eventTypes(backend.eventStore, unmatchedStreamId(eventId)) });
    }
    expect(deliveries).toEqual(Array.from({ length: 6 }, () => ({ status: 200, recorded: ['ProviderEventUnmatched'] })));
    expect((await deliver(api, '{}', { signature: null })).status).toBe(400);

    const others = [];
    for (let i = 0; i < 4; i++) others.push((await fetch(`${api.url}/work`)).status);
    expect(others).toEqual([200, 200, 200, 429]);
  });
});

/** An HTTP server as the APIs make it, with nothing registered yet. */
function bareServer(options: { rateLimitMax: number; logger?: pino.Logger; loadShedding?: LoadSheddingOptions }): Promise<HttpServer> {
  return createHttpServer({
    logger: options.logger ?? pino({ level: 'silent' }),
    openApi: { title: 't', description: 't', version: '1' },
    security: { corsOrigins: [], rateLimitMax: options.rateLimitMax },
    auth: { secret: 'x'.repeat(40), issuer: 'i', audience: 'a', accessTokenTtlSeconds: 60 },
    probes: [],
    ...(options.loadShedding ? { loadShedding: options.loadShedding } : {}),
  });
}

/** The shared HTTP server with the webhook and one ordinary route, `GET /work`. */
async function serverWithWebhook(options: { rateLimitMax: number; webhookRateLimitMax?: number; loadShedding?: LoadSheddingOptions }) {
  const eventStore = new MemoryEventStore();
  const app = await bareServer({ rateLimitMax: options.rateLimitMax, ...(options.loadShedding ? { loadShedding: options.loadShedding } : {}) });
  app.get('/work', async () => ({ ok: true }));
  const side = createTestSide(eventStore, fakeClock('2031-01-01T00:00:00Z'));
  await app.register(stripeWebhookRoutes, { side, eventStore, webhookSecret, rateLimitMax: options.webhookRateLimitMax ?? 6_000 });
  await app.ready();
  const deliver = async () => {
    const eventId = `evt_${randomUUID()}`;
    const payload = unknownPaymentSucceeded(eventId);
    const response = await app.inject({
      method: 'POST',
      url: '/v1/webhooks/stripe',
      headers: { 'content-type': 'application/json', 'stripe-signature': stripeSignature(payload, webhookSecret) },
      payload,
    });
    return { status: response.statusCode, recorded: await eventTypes(eventStore, unmatchedStreamId(eventId)) };
  };
  return { app, deliver };
}

describe('the admission hooks of the shared HTTP server, on the webhook (inject, in memory)', () => {
  let app: HttpServer | undefined;
  afterEach(() => app?.close());

  it('has a budget of its own per address, which bounds a flood of unsigned bodies', async () => {
    const server = await serverWithWebhook({ rateLimitMax: 3, webhookRateLimitMax: 5 });
    app = server.app;
    const flood = [];
    for (let i = 0; i < 6; i++) {
      flood.push((await server.app.inject({ method: 'POST', url: '/v1/webhooks/stripe', headers: { 'content-type': 'application/json' }, payload: '{}' })).statusCode);
    }
    expect(flood).toEqual([400, 400, 400, 400, 400, 429]);
    expect((await server.app.inject('/work')).statusCode).toBe(200);
  });

  it('takes signed events while the service sheds load, which turns other requests away with 503', async () => {
    // Any heap is over one byte: under pressure from the first sample on, for good.
    const server = await serverWithWebhook({ rateLimitMax: 10_000, loadShedding: { maxEventLoopDelayMs: 0, maxHeapUsedBytes: 1, retryAfterSeconds: 3 } });
    app = server.app;
    await vi.waitFor(async () => expect((await server.app.inject('/work')).statusCode).toBe(503), { timeout: 5_000, interval: 100 });

    expect(await server.deliver()).toEqual({ status: 200, recorded: ['ProviderEventUnmatched'] });
    expect((await server.app.inject('/work')).statusCode).toBe(503);
  });
});

describe('a signed event of the wrong shape', () => {
  it('is answered 200 and kept as unmatched ("malformed"): a 500 would have Stripe send it again for days', async () => {
    const eventStore = new MemoryEventStore();
    const app = await bareServer({ rateLimitMax: 100 });
    try {
      const side = createTestSide(eventStore, fakeClock('2031-01-01T00:00:00Z'));
      await app.register(stripeWebhookRoutes, { side, eventStore, webhookSecret, rateLimitMax: 100 });
      await app.ready();
      const bodies = {
        'no data': JSON.stringify({ id: 'evt_m1', object: 'event', type: 'payment_intent.succeeded', created: 1_900_000_000 }),
        'no metadata': stripeEvent('evt_m2', 'payment_intent.succeeded', intentObject('pi_m2', 'p', { metadata: null })),
        'no refunds list': stripeEvent('evt_m3', 'charge.refunded', { id: 'ch_m3', object: 'charge', refunds: { data: 7 } }),
      };
      const answers: Record<string, unknown> = {};
      for (const [what, payload] of Object.entries(bodies)) {
        const response = await app.inject({
          method: 'POST',
          url: '/v1/webhooks/stripe',
          headers: { 'content-type': 'application/json', 'stripe-signature': stripeSignature(payload, webhookSecret) },
          payload,
        });
        const eventId = String(JSON.parse(payload).id);
        const [kept] = await streamEvents(eventStore, unmatchedStreamId(eventId));
        answers[what] = { status: response.statusCode, reason: String(kept?.data.reason).split(':')[0] };
      }
      const noId = JSON.stringify({ object: 'event', type: 'payment_intent.succeeded', data: { object: intentObject('pi_m4', 'p', { amount_received: 100 }) } });
      const unnamed = await app.inject({
        method: 'POST',
        url: '/v1/webhooks/stripe',
        headers: { 'content-type': 'application/json', 'stripe-signature': stripeSignature(noId, webhookSecret) },
        payload: noId,
      });
      // Kept under an id derived from its bytes, which this test does not recompute.
      answers['no id'] = { status: unnamed.statusCode };
      for (const notAnObject of ['null', '5', '[]']) {
        const response = await app.inject({
          method: 'POST',
          url: '/v1/webhooks/stripe',
          headers: { 'content-type': 'application/json', 'stripe-signature': stripeSignature(notAnObject, webhookSecret) },
          payload: notAnObject,
        });
        answers[`signed ${notAnObject}`] = { status: response.statusCode };
      }
      expect(answers).toEqual({
        'signed null': { status: 200 },
        'signed 5': { status: 200 },
        'signed []': { status: 200 },
        'no id': { status: 200 },
        'no data': { status: 200, reason: 'malformed' },
        'no metadata': { status: 200, reason: 'malformed' },
        'no refunds list': { status: 200, reason: 'malformed' },
      });
    } finally {
      await app.close();
    }
  });

  // Before, such an event was kept as unmatched without a log line or a metric: a success whose
  // currency Stripe sent as null waited unseen until the hold lapsed, and was then refunded.
  it('is logged at error and counted as malformed; a payment intent\'s, with its id and our payment readable, is asked of the provider and its outcome recorded', async () => {
    const eventStore = new MemoryEventStore();
    const lines: string[] = [];
    const app = await bareServer({ rateLimitMax: 100, logger: pino({ level: 'error' }, { write: (line: string) => void lines.push(line) }) });
    try {
      const side = createTestSide(eventStore, fakeClock('2031-01-01T00:00:00Z'));
      const initiate = { type: 'InitiatePayment', data: { paymentId: 'pay-w1', bookingId: 'booking-w1', providerIntentId: 'pi_w1', amount: 24_000, currency: 'EUR' } } as const;
      await side.handlers.payment.handle('payment-pay-w1', initiate, as(admin));
      const succeeded: ProviderIntent = { intentId: 'pi_w1', clientSecret: 's', status: 'succeeded', amount: 24_000, amountReceived: 24_000, currency: 'EUR', capturedAt: '2031-01-01T00:00:00.000Z' };
      const notAsked = () => Promise.reject(new Error('not asked here'));
      const gateway: PaymentGateway = { name: 'stub', createIntent: notAsked, cancelIntent: notAsked, createRefund: notAsked, retrieveRefund: notAsked, retrieveIntent: async (id) => (id === 'pi_w1' ? succeeded : undefined) };
      const registry = new Registry();
      await app.register(stripeWebhookRoutes, { side, eventStore, webhookSecret, rateLimitMax: 100, gateway, observeOutcome: webhookMetrics(registry) });
      await app.ready();

      const payload = stripeEvent('evt_w1', 'payment_intent.succeeded', intentObject('pi_w1', 'pay-w1', { amount: 24_000, amount_received: 24_000, currency: null }));
      const response = await app.inject({
        method: 'POST',
        url: '/v1/webhooks/stripe',
        headers: { 'content-type': 'application/json', 'stripe-signature': stripeSignature(payload, webhookSecret) },
        payload,
      });

      expect(response.statusCode).toBe(200);
      expect(await eventTypes(eventStore, 'payment-pay-w1')).toEqual(['PaymentInitiated', 'PaymentSucceeded']);
      expect(await eventTypes(eventStore, unmatchedStreamId('evt_w1'))).toEqual(['ProviderEventUnmatched']);
      const logged = lines.map((line) => JSON.parse(line)).filter((entry) => entry.eventId === 'evt_w1');
      expect(logged).toEqual([expect.objectContaining({ level: 50, eventType: 'payment_intent.succeeded', reason: expect.stringMatching(/^malformed: data\.object\.currency/) })]);
      expect(await registry.getSingleMetricAsString('stripe_webhook_events_total')).toContain('stripe_webhook_events_total{outcome="malformed"} 1');
    } finally {
      await app.close();
    }
  });
});
