import { randomUUID } from 'node:crypto';
import { pino } from 'pino';
import { afterEach, describe, expect, it, vi } from 'vitest';
import { unmatchedStreamId } from '../../src/application/payments/provider-events.js';
import { createHttpServer, type HttpServer } from '../../src/infrastructure/http/http-server.js';
import type { LoadSheddingOptions } from '../../src/infrastructure/http/plugins/load-shedding.plugin.js';
import { stripeWebhookRoutes } from '../../src/infrastructure/http/routes/stripe-webhook.routes.js';
import { MemoryEventStore } from '../../src/infrastructure/memory-event-store/memory-event-store.js';
import { createTestSide, eventTypes, fakeClock } from '../support/command-side.js';
import { intentObject, stripeEvent, stripeSignature } from '../stripe/support/stripe-events.js';

const webhookSecret = 'whsec_test_admission';

/**
 * The shared HTTP server with the webhook and one ordinary route, `GET /work`. A success for a
 * payment we do not know is recorded as unmatched: a delivery that got through leaves a stream.
 */
async function serverWithWebhook(options: { rateLimitMax: number; webhookRateLimitMax?: number; loadShedding?: LoadSheddingOptions }) {
  const eventStore = new MemoryEventStore();
  const app: HttpServer = await createHttpServer({
    logger: pino({ level: 'silent' }),
    openApi: { title: 't', description: 't', version: '1' },
    security: { corsOrigins: [], rateLimitMax: options.rateLimitMax },
    auth: { secret: 'x'.repeat(40), issuer: 'i', audience: 'a', accessTokenTtlSeconds: 60 },
    probes: [],
    ...(options.loadShedding ? { loadShedding: options.loadShedding } : {}),
  });
  app.get('/work', async () => ({ ok: true }));
  const side = createTestSide(eventStore, fakeClock('2031-01-01T00:00:00Z'));
  await app.register(stripeWebhookRoutes, { side, eventStore, webhookSecret, rateLimitMax: options.webhookRateLimitMax ?? 6_000 });
  await app.ready();
  const deliver = async () => {
    const eventId = `evt_${randomUUID()}`;
    const payload = stripeEvent(eventId, 'payment_intent.succeeded', intentObject(`pi_${randomUUID()}`, randomUUID(), { amount_received: 100 }));
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

describe('the Stripe webhook is admitted by its signature, not by per-IP limits or load', () => {
  let app: HttpServer | undefined;
  afterEach(() => app?.close());

  it('takes every signed event from one IP past the per-IP rate limit, without spending the budget of other routes', async () => {
    const server = await serverWithWebhook({ rateLimitMax: 3 });
    app = server.app;

    const deliveries = [];
    for (let i = 0; i < 6; i++) deliveries.push(await server.deliver());
    expect(deliveries).toEqual(Array.from({ length: 6 }, () => ({ status: 200, recorded: ['ProviderEventUnmatched'] })));
    const unsigned = await server.app.inject({ method: 'POST', url: '/v1/webhooks/stripe', headers: { 'content-type': 'application/json' }, payload: '{}' });
    expect(unsigned.statusCode).toBe(400);

    const others = [];
    for (let i = 0; i < 4; i++) others.push((await server.app.inject('/work')).statusCode);
    expect(others).toEqual([200, 200, 200, 429]);
  });

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
