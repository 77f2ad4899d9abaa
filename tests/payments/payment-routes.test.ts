import { randomUUID } from 'node:crypto';
import { afterAll, beforeAll, beforeEach, describe, expect, it } from 'vitest';
import { z } from 'zod';
import { paymentIdFor } from '../../src/application/payments/payment-attempts.js';
import { unmatchedStreamId } from '../../src/application/payments/provider-events.js';
import { bookingStreamId } from '../../src/domain/booking/booking.decider.js';
import { paymentStreamId } from '../../src/domain/payment/payment.decider.js';
import { verifyChain } from '../../src/application/audit/hash-chain.js';
import type { Actor } from '../../src/domain/shared/actor.js';
import { StripePaymentGateway } from '../../src/infrastructure/stripe/stripe-payment-gateway.js';
import { startBackend, type TestBackend } from '../http/support/command-api.fixture.js';
import { eventTypes, listingInput, streamEvents } from '../support/command-side.js';
import { FakeStripeServer } from '../stripe/support/fake-stripe-server.js';
import { caller, deliver, intentObject, person, refundObject, startPaymentsApi, stripeEvent, type PaymentsApi } from './support/payments-api.fixture.js';

const owner = person(['OWNER']);
const consumer = person(['CONSUMER']);
const otherConsumer = person(['CONSUMER']);

describe('payments over HTTP (real SDK against a fake Stripe, real PostgreSQL)', () => {
  let backend: TestBackend;
  let stripe: FakeStripeServer;
  let api: PaymentsApi;
  let post: ReturnType<typeof caller>;
  let listingId: string;
  let nextStay = 0;

  /** Two nights of their own, within the year ahead that bookings may reach. */
  async function book(actor: Actor = consumer): Promise<string> {
    nextStay += 1;
    const day = (offset: number) => new Date(api.clock.now().getTime() + offset * 86_400_000).toISOString().slice(0, 10);
    const startDate = day(10 + 3 * nextStay);
    const booked = await post('/v1/bookings', { listingId, startDate, endDate: day(12 + 3 * nextStay) }, actor);
    expect(booked.status).toBe(201);
    return String(booked.body.id);
  }

  async function startPaying(bookingId: string, actor: Actor = consumer, headers: Record<string, string> = {}) {
    return post(`/v1/bookings/${bookingId}/payments`, {}, actor, headers);
  }

  /** Read by stream: a read of the whole log only shows what no open transaction anywhere still hides. */
  const hasStream = async (streamId: string) => (await backend.eventStore.readStream(streamId)).status === 'found';

  beforeAll(async () => {
    backend = await startBackend();
    stripe = await new FakeStripeServer().start();
    const gateway = StripePaymentGateway.fromOptions({ secretKey: 'sk_test_fake', apiBase: stripe.apiBase, timeoutMs: 2_000 });
    api = await startPaymentsApi(backend, gateway);
    post = caller(api);
    listingId = String((await post('/v1/listings', listingInput, owner)).body.id);
  });
  afterAll(async () => {
    await api.close();
    await stripe.stop();
    await backend.close();
  });
  beforeEach(() => stripe.reset());

  describe('POST /v1/bookings/{id}/payments', () => {
    it("creates one intent for the booking's total and records it", async () => {
      const bookingId = await book();
      const started = await startPaying(bookingId);

      expect(started.status).toBe(201);
      expect(started.body).toMatchObject({ status: 'initiated', clientSecret: expect.stringContaining('_secret_') });
      expect(started.headers.get('event-position')).toBe(started.body.position);
      const paymentId = String(started.body.paymentId);
      expect(stripe.intentsFor(paymentId)).toEqual([expect.objectContaining({ amount: 2 * 12_000, currency: 'eur', metadata: { paymentId, bookingId } })]);
      expect(stripe.requestsTo('create-intent').map((r) => r.idempotencyKey)).toEqual([`bookable:payment:${paymentId}:create-intent`]);
      expect(await eventTypes(backend.eventStore, `payment-${paymentId}`)).toEqual(['PaymentInitiated']);
    });

    it('starts with no body at all, or an empty one, as with {}', async () => {
      const bearer = { authorization: `Bearer ${api.app.issueAccessToken(consumer).accessToken}` };
      for (const headers of [bearer, { ...bearer, 'content-type': 'application/json' }]) {
        const bookingId = await book();
        const started = await fetch(`${api.url}/v1/bookings/${bookingId}/payments`, { method: 'POST', headers });
        expect(started.status, JSON.stringify(Object.keys(headers))).toBe(201);
      }
    });

    it('returns the live intent again instead of creating another (200, same secret)', async () => {
      const bookingId = await book();
      const first = await startPaying(bookingId);
      const again = await startPaying(bookingId);

      expect(again.status).toBe(200);
      expect(again.body).toMatchObject({ paymentId: first.body.paymentId, clientSecret: first.body.clientSecret });
      expect(stripe.requestsTo('create-intent')).toHaveLength(1);
    });

    it('two concurrent starts, and a lost answer from Stripe, still make one intent and one payment', async () => {
      const bookingId = await book();
      stripe.inject('create-intent', { kind: 'drop-after' });
      const [a, b] = await Promise.all([startPaying(bookingId), startPaying(bookingId)]);

      // One created the payment (201). The other answers 200 with it if it looked after it was
      // recorded; if it looked before, it created the same intent under the same key and its
      // record was the same command, so it answers 201 too.
      expect([[200, 201], [201, 201]]).toContainEqual([a.status, b.status].sort());
      expect(a.body.paymentId).toBe(b.body.paymentId);
      expect(a.body.clientSecret).toBe(b.body.clientSecret);
      expect(stripe.intents.size).toBe(1);
      expect(await eventTypes(backend.eventStore, `payment-${String(a.body.paymentId)}`)).toEqual(['PaymentInitiated']);
    });

    it('a failed intent stays the live one: the consumer retries with another card on the same intent', async () => {
      const bookingId = await book();
      const first = await startPaying(bookingId);
      const paymentId = String(first.body.paymentId);
      const [intent] = stripe.intentsFor(paymentId);
      const failed = stripeEvent(`evt_${randomUUID()}`, 'payment_intent.payment_failed', intentObject(intent?.id ?? '', paymentId, { status: 'requires_payment_method', last_payment_error: { code: 'card_declined', decline_code: 'insufficient_funds' } }));
      expect((await deliver(api, failed)).status).toBe(200);

      const retry = await startPaying(bookingId);
      expect(retry.body).toMatchObject({ paymentId, status: 'failed', clientSecret: first.body.clientSecret });
    });

    it('only the consumer pays: another consumer does not see the booking (404), its owner may not (403)', async () => {
      const bookingId = await book();
      expect((await startPaying(bookingId, otherConsumer)).status).toBe(404);
      expect((await startPaying(bookingId, owner)).status).toBe(403);
      const ownerAsConsumer = { id: owner.id, roles: ['OWNER' as const, 'CONSUMER' as const] };
      expect((await startPaying(bookingId, ownerAsConsumer)).status).toBe(403);
      expect((await startPaying(randomUUID())).status).toBe(404);
      expect(stripe.requestsTo('create-intent')).toHaveLength(0);
    });

    it('refuses a cancelled booking and a booking whose hold ran out (409), without calling Stripe', async () => {
      const cancelled = await book();
      expect((await post(`/v1/bookings/${cancelled}/cancel`, { reason: 'changed plans' }, consumer)).status).toBe(200);
      const refused = await startPaying(cancelled);
      expect(refused.status).toBe(409);
      expect(refused.body.type).toMatch(/booking-not-payable$/);

      const lapsed = await book();
      api.clock.advance(16 * 60_000);
      const late = await startPaying(lapsed);
      expect(late.status).toBe(409);
      expect(late.body.type).toMatch(/hold-expired$/);
      expect(stripe.requestsTo('create-intent')).toHaveLength(0);
    });
    // API.md, "Optimistic concurrency": the aggregate the path names is the booking, so If-Match pins its version.
    it('refuses a stale If-Match on the booking with 412 before anything is started (no intent, no payment); the current version starts it (201)', async () => {
      const bookingId = await book();
      const paymentStream = paymentStreamId(paymentIdFor(bookingId, 1));
      expect((await api.side.handlers.booking.read(bookingStreamId(bookingId))).version).toBe(0);

      const stale = await startPaying(bookingId, consumer, { 'if-match': '"3"' });
      expect(stale.status).toBe(412);
      expect(stale.body).toMatchObject({ status: 412, title: 'Version mismatch', expectedVersion: 3, actualVersion: 0 });
      expect(stale.body.type).toMatch(/\/problems\/version-mismatch$/);
      expect(stripe.requestsTo('create-intent')).toHaveLength(0);
      expect(await hasStream(paymentStream)).toBe(false);

      const started = await startPaying(bookingId, consumer, { 'if-match': '"0"' });
      expect(started.status).toBe(201);
      expect(stripe.requestsTo('create-intent')).toHaveLength(1);
      expect(await eventTypes(backend.eventStore, paymentStream)).toEqual(['PaymentInitiated']);
    });

    it('answers a booking the caller may not pay as such (404, 403), not 412, whatever If-Match says', async () => {
      const bookingId = await book();
      const stale = { 'if-match': '"3"' };
      expect((await startPaying(bookingId, otherConsumer, stale)).status).toBe(404);
      expect((await startPaying(bookingId, owner, stale)).status).toBe(403);
      expect(stripe.requestsTo('create-intent')).toHaveLength(0);
    });

    it('refuses a malformed If-Match with 400 naming the header, before its Idempotency-Key is spent', async () => {
      const bookingId = await book();
      const key = { 'idempotency-key': randomUUID() };
      const malformed = await startPaying(bookingId, consumer, { ...key, 'if-match': 'W/"0"' });
      expect(malformed.status).toBe(400);
      expect(malformed.body).toMatchObject({ errors: [expect.objectContaining({ path: 'headers.if-match' })] });
      expect(stripe.requestsTo('create-intent')).toHaveLength(0);

      // The key was not claimed by the 400: the corrected request under it is a first one.
      expect((await startPaying(bookingId, consumer, { ...key, 'if-match': '"0"' })).status).toBe(201);
    });

    it("documents If-Match on starting a payment, as on the booking's other commands", async () => {
      const parameter = z.object({ name: z.string(), in: z.string() });
      const document = z
        .object({ paths: z.object({ '/v1/bookings/{id}/payments': z.object({ post: z.object({ parameters: z.array(parameter) }) }) }) })
        .parse(await (await fetch(`${api.url}/docs/json`)).json());
      expect(document.paths['/v1/bookings/{id}/payments'].post.parameters).toContainEqual({ name: 'if-match', in: 'header' });
    });
  });

  describe('POST /v1/bookings/{id}/payments when Stripe fails', () => {
    it("answers 502 for Stripe's refusal of the request and 503 with Retry-After for its outage or our key refused, never Stripe's status or words", async () => {
      stripe.inject('create-intent', { kind: 'status', status: 400 });
      const refused = await startPaying(await book());
      expect(refused.status).toBe(502);
      expect(refused.body.type).toMatch(/payment-provider-refused$/);

      stripe.inject('create-intent', ...Array.from({ length: 4 }, () => ({ kind: 'status', status: 500 }) as const));
      const unavailable = await startPaying(await book());
      stripe.inject('create-intent', { kind: 'status', status: 401 });
      const revokedKey = await startPaying(await book());
      for (const answer of [unavailable, revokedKey]) {
        expect(answer.status).toBe(503);
        expect(answer.headers.get('retry-after')).toBe('5');
        expect(answer.body.type).toMatch(/payment-provider-unavailable$/);
      }
      for (const answer of [refused, unavailable, revokedKey]) expect(JSON.stringify(answer.body)).not.toContain('fake stripe');
    });
  });

  describe('POST /v1/payments/{id}/refund', () => {
    it('answers a payer who also owns listings 403, not 404: the payment is theirs to see, not to refund', async () => {
      const payer = person(['CONSUMER', 'OWNER']);
      const paymentId = String((await startPaying(await book(payer), payer)).body.paymentId);

      const refused = await post(`/v1/payments/${paymentId}/refund`, { amount: 1_000 }, payer);

      expect(refused.status).toBe(403);
    });

    it("lets the listing's owner request a refund (201); others do not see the payment; a consumer may not; a stale If-Match gets 412", async () => {
      const bookingId = await book();
      const paymentId = String((await startPaying(bookingId)).body.paymentId);
      const intentId = stripe.intentsFor(paymentId)[0]?.id ?? '';
      const paid = stripeEvent(`evt_${randomUUID()}`, 'payment_intent.succeeded', intentObject(intentId, paymentId, { amount_received: 24_000 }));
      expect((await deliver(api, paid)).status).toBe(200);

      expect((await post(`/v1/payments/${paymentId}/refund`, { amount: 1_000 }, consumer)).status).toBe(403);
      expect((await post(`/v1/payments/${paymentId}/refund`, { amount: 1_000 }, person(['OWNER']))).status).toBe(404);
      expect((await post(`/v1/payments/${paymentId}/refund`, { amount: 0 }, owner)).status).toBe(400);
      const refunded = await post(`/v1/payments/${paymentId}/refund`, { amount: 1_000 }, owner, { 'idempotency-key': 'refund-once' });
      expect(refunded.status).toBe(201);
      const replay = await post(`/v1/payments/${paymentId}/refund`, { amount: 1_000 }, owner, { 'idempotency-key': 'refund-once' });
      expect(replay.headers.get('idempotent-replayed')).toBe('true');
      const tooMuch = await post(`/v1/payments/${paymentId}/refund`, { amount: 24_000 }, owner);
      expect(tooMuch.status).toBe(409);
      expect(tooMuch.body.type).toMatch(/refund-exceeds-captured$/);
      // The payment is at version 2 (initiated, succeeded, one refund): a caller who saw 1 is refused.
      expect((await post(`/v1/payments/${paymentId}/refund`, { amount: 1_000 }, owner, { 'if-match': '"1"' })).status).toBe(412);
      expect(await eventTypes(backend.eventStore, `payment-${paymentId}`)).toEqual(['PaymentInitiated', 'PaymentSucceeded', 'RefundRequested']);
    });

    it('refunds all that is left when sent no body at all, or an empty one, as with {}; a malformed body is still refused', async () => {
      const bearer = { authorization: `Bearer ${api.app.issueAccessToken(owner).accessToken}` };
      for (const headers of [bearer, { ...bearer, 'content-type': 'application/json' }]) {
        const paymentId = String((await startPaying(await book())).body.paymentId);
        const intentId = stripe.intentsFor(paymentId)[0]?.id ?? '';
        const paid = stripeEvent(`evt_${randomUUID()}`, 'payment_intent.succeeded', intentObject(intentId, paymentId, { amount_received: 24_000 }));
        expect((await deliver(api, paid)).status).toBe(200);
        for (const malformed of [{ amount: '24000' }, { amount: 1_000, reason: 'x' }, []]) {
          expect((await post(`/v1/payments/${paymentId}/refund`, malformed, owner)).status, JSON.stringify(malformed)).toBe(400);
        }

        const refunded = await fetch(`${api.url}/v1/payments/${paymentId}/refund`, { method: 'POST', headers });
        expect(refunded.status, JSON.stringify(Object.keys(headers))).toBe(201);
        const requested = (await streamEvents(backend.eventStore, `payment-${paymentId}`)).filter((event) => event.type === 'RefundRequested');
        expect(requested).toEqual([expect.objectContaining({ data: expect.objectContaining({ amount: 24_000 }) })]);
      }
    });

    it('answers another refund of all that is left, once nothing is, 409 nothing-to-refund; the same request again replays its refund', async () => {
      const paymentId = String((await startPaying(await book())).body.paymentId);
      const intentId = stripe.intentsFor(paymentId)[0]?.id ?? '';
      expect((await deliver(api, stripeEvent(`evt_${randomUUID()}`, 'payment_intent.succeeded', intentObject(intentId, paymentId, { amount_received: 24_000 })))).status).toBe(200);
      const key = { 'idempotency-key': randomUUID() };
      expect((await post(`/v1/payments/${paymentId}/refund`, {}, owner, key)).status).toBe(201);

      const again = await post(`/v1/payments/${paymentId}/refund`, {}, owner);
      expect(again.status).toBe(409);
      expect(again.body.type).toMatch(/nothing-to-refund$/);
      expect((await post(`/v1/payments/${paymentId}/refund`, {}, owner, key)).status).toBe(201);
      expect((await streamEvents(backend.eventStore, `payment-${paymentId}`)).filter((event) => event.type === 'RefundRequested')).toHaveLength(1);
    });

    it('publishes the payment routes and the webhook in /docs', async () => {
      const docs = await fetch(`${api.url}/docs/json`);
      const paths = Object.keys(z.object({ paths: z.record(z.string(), z.unknown()) }).parse(await docs.json()).paths);
      expect(paths).toEqual(expect.arrayContaining(['/v1/bookings/{id}/payments', '/v1/payments/{id}/refund', '/v1/webhooks/stripe']));
    });

    it('documents the bodies of start payment and refund as optional, as they are', async () => {
      const operation = z.object({ requestBody: z.object({ required: z.boolean().optional() }) });
      const document = z
        .object({
          paths: z.object({
            '/v1/bookings/{id}/payments': z.object({ post: operation }),
            '/v1/payments/{id}/refund': z.object({ post: operation }),
            '/v1/bookings': z.object({ post: operation }),
          }),
        })
        .parse(await (await fetch(`${api.url}/docs/json`)).json());
      expect(document.paths['/v1/bookings/{id}/payments'].post.requestBody.required).toBe(false);
      expect(document.paths['/v1/payments/{id}/refund'].post.requestBody.required).toBe(false);
      expect(document.paths['/v1/bookings'].post.requestBody.required).toBe(true);
    });
  });

  describe('POST /v1/webhooks/stripe', () => {
    async function initiated() {
      const bookingId = await book();
      const started = await startPaying(bookingId);
      const paymentId = String(started.body.paymentId);
      const intentId = stripe.intentsFor(paymentId)[0]?.id ?? '';
      return { bookingId, paymentId, intentId };
    }
    const succeeded = (intentId: string, paymentId: string, amount = 24_000, currency = 'eur') =>
      stripeEvent(`evt_${randomUUID()}`, 'payment_intent.succeeded', intentObject(intentId, paymentId, { amount, amount_received: amount, currency }));

    it('records a verified payment_intent.succeeded on the payment', async () => {
      const { paymentId, intentId } = await initiated();
      const response = await deliver(api, succeeded(intentId, paymentId));
      expect(response).toEqual({ status: 200, body: { received: true } });
      expect(await eventTypes(backend.eventStore, `payment-${paymentId}`)).toEqual(['PaymentInitiated', 'PaymentSucceeded']);
    });

    it('refuses a tampered body, a wrong secret, a missing header and an old timestamp with 400, recording nothing', async () => {
      const { paymentId, intentId } = await initiated();
      const eventId = `evt_${randomUUID()}`;
      const payload = stripeEvent(eventId, 'payment_intent.succeeded', intentObject(intentId, paymentId, { amount: 24_000, amount_received: 24_000 }));

      const tampered = await deliver(api, payload, { body: payload.replace('24000', '1') });
      expect(tampered.status).toBe(400);
      expect(tampered.body.type).toMatch(/invalid-signature$/);
      expect((await deliver(api, payload, { secret: 'whsec_someone_else' })).status).toBe(400);
      expect((await deliver(api, payload, { signature: null })).status).toBe(400);
      expect((await deliver(api, payload, { timestamp: Math.floor(Date.now() / 1000) - 301 })).status).toBe(400);
      expect((await deliver(api, payload, { signature: 'garbage' })).status).toBe(400);

      expect(await eventTypes(backend.eventStore, `payment-${paymentId}`)).toEqual(['PaymentInitiated']);
      expect(await hasStream(unmatchedStreamId(eventId))).toBe(false);
    });

    it('takes the same event delivered 5× concurrently exactly once', async () => {
      const { paymentId, intentId } = await initiated();
      const payload = succeeded(intentId, paymentId);
      const responses = await Promise.all(Array.from({ length: 5 }, () => deliver(api, payload)));
      expect(responses.map((r) => r.status)).toEqual([200, 200, 200, 200, 200]);
      expect(await eventTypes(backend.eventStore, `payment-${paymentId}`)).toEqual(['PaymentInitiated', 'PaymentSucceeded']);
    });

    it('never moves a payment backwards: succeeded after failed counts; failed or canceled after succeeded do not', async () => {
      const { paymentId, intentId } = await initiated();
      const failed = stripeEvent(`evt_${randomUUID()}`, 'payment_intent.payment_failed', intentObject(intentId, paymentId, { last_payment_error: { code: 'card_declined' } }));
      expect((await deliver(api, failed)).status).toBe(200);
      expect((await deliver(api, succeeded(intentId, paymentId))).status).toBe(200);
      const lateFailure = stripeEvent(`evt_${randomUUID()}`, 'payment_intent.payment_failed', intentObject(intentId, paymentId));
      expect((await deliver(api, lateFailure)).status).toBe(200);
      const canceledId = `evt_${randomUUID()}`;
      expect((await deliver(api, stripeEvent(canceledId, 'payment_intent.canceled', intentObject(intentId, paymentId)))).status).toBe(200);

      expect(await eventTypes(backend.eventStore, `payment-${paymentId}`)).toEqual(['PaymentInitiated', 'PaymentFailed', 'PaymentSucceeded']);
      const { state } = await api.side.handlers.payment.read(`payment-${paymentId}`);
      expect(state.status).toBe('succeeded');
      // The impossible cancellation is kept for someone to look at, not dropped.
      const [kept] = await streamEvents(backend.eventStore, unmatchedStreamId(canceledId));
      expect(kept).toMatchObject({ type: 'ProviderEventUnmatched', data: { providerEventId: canceledId, objectId: intentId } });
    });

    it('a refund reported before the payment is kept for reconciliation; the payment still succeeds after it', async () => {
      const { paymentId, intentId } = await initiated();
      const refundEventId = `evt_${randomUUID()}`;
      expect((await deliver(api, stripeEvent(refundEventId, 'refund.updated', refundObject('r-early', paymentId)))).status).toBe(200);
      expect(await eventTypes(backend.eventStore, unmatchedStreamId(refundEventId))).toEqual(['ProviderEventUnmatched']);

      expect((await deliver(api, succeeded(intentId, paymentId))).status).toBe(200);
      expect(await eventTypes(backend.eventStore, `payment-${paymentId}`)).toEqual(['PaymentInitiated', 'PaymentSucceeded']);
    });

    it('charge.refunded records our refund on its payment and keeps a dashboard refund listed beside it for reconciliation', async () => {
      const { paymentId, intentId } = await initiated();
      expect((await deliver(api, succeeded(intentId, paymentId))).status).toBe(200);
      expect((await post(`/v1/payments/${paymentId}/refund`, { amount: 1_000 }, owner)).status).toBe(201);
      const [requested] = (await streamEvents(backend.eventStore, `payment-${paymentId}`)).filter((event) => event.type === 'RefundRequested');
      const { refundId } = z.object({ refundId: z.string() }).parse(requested?.data);

      const eventId = `evt_${randomUUID()}`;
      const dashboardRefund = { id: `re_dash_${randomUUID()}`, object: 'refund', amount: 500, currency: 'eur', status: 'succeeded', metadata: {} };
      const refunds = { object: 'list', data: [refundObject(refundId, paymentId, { amount: 1_000 }), dashboardRefund] };
      expect((await deliver(api, stripeEvent(eventId, 'charge.refunded', { id: `ch_${randomUUID()}`, object: 'charge', refunds }))).status).toBe(200);

      expect(await eventTypes(backend.eventStore, `payment-${paymentId}`)).toEqual(['PaymentInitiated', 'PaymentSucceeded', 'RefundRequested', 'RefundSucceeded']);
      const kept = await streamEvents(backend.eventStore, unmatchedStreamId(`charge-listed:${dashboardRefund.id}:succeeded`));
      expect(kept).toEqual([expect.objectContaining({ type: 'ProviderEventUnmatched', data: expect.objectContaining({ eventType: 'charge.refunded', objectId: dashboardRefund.id }) })]);
    });

    it('keeps an event for an unknown intent (and one without our metadata) for reconciliation, once', async () => {
      const unknown = `evt_${randomUUID()}`;
      const payload = stripeEvent(unknown, 'payment_intent.succeeded', intentObject('pi_nobody', randomUUID(), { amount_received: 5 }));
      await Promise.all([deliver(api, payload), deliver(api, payload), deliver(api, payload)]);
      expect(await eventTypes(backend.eventStore, unmatchedStreamId(unknown))).toEqual(['ProviderEventUnmatched']);
      // Linked like the first event of any stream: verification finds nothing wrong with it.
      expect(await verifyChain(await streamEvents(backend.eventStore, unmatchedStreamId(unknown)))).toMatchObject({ status: 'intact', eventsChecked: 1 });

      const foreign = `evt_${randomUUID()}`;
      expect((await deliver(api, stripeEvent(foreign, 'payment_intent.succeeded', { id: 'pi_dash', object: 'payment_intent', metadata: {}, amount_received: 1, currency: 'eur' }))).status).toBe(200);
      expect(await eventTypes(backend.eventStore, unmatchedStreamId(foreign))).toEqual(['ProviderEventUnmatched']);
    });

    it('records a success for another amount as a visible PaymentMismatch, not a success; the booking takes a new attempt', async () => {
      const { bookingId, paymentId, intentId } = await initiated();
      expect((await deliver(api, succeeded(intentId, paymentId, 100))).status).toBe(200);
      // The intent has captured: a later notice for it, whatever it says, changes nothing.
      expect((await deliver(api, succeeded(intentId, paymentId, 24_000, 'usd'))).status).toBe(200);
      expect(await eventTypes(backend.eventStore, `payment-${paymentId}`)).toEqual(['PaymentInitiated', 'PaymentMismatch']);
      expect((await api.side.handlers.payment.read(`payment-${paymentId}`)).state).toMatchObject({ status: 'mismatched', received: { amount: 100, currency: 'EUR' } });

      const again = await startPaying(bookingId);
      expect(again.status).toBe(201);
      expect(again.body.paymentId).not.toBe(paymentId);
    });

    it('answers 200 to event types it does not follow, recording nothing', async () => {
      const eventId = `evt_${randomUUID()}`;
      expect((await deliver(api, stripeEvent(eventId, 'customer.created', { id: 'cus_1', object: 'customer' }))).status).toBe(200);
      expect(await hasStream(unmatchedStreamId(eventId))).toBe(false);
    });
  });
});
