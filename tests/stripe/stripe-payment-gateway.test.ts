import { afterAll, beforeAll, beforeEach, describe, expect, it } from 'vitest';
import { idempotencyKeys, ProviderRefusedError, ProviderUnavailableError } from '../../src/application/ports/payment-gateway.js';
import { StripePaymentGateway } from '../../src/infrastructure/stripe/stripe-payment-gateway.js';
import { FakeStripeServer } from './support/fake-stripe-server.js';

const intentRequest = (paymentId: string) => ({
  paymentId,
  bookingId: `booking-of-${paymentId}`,
  amount: 24_000,
  currency: 'EUR',
  idempotencyKey: idempotencyKeys.createIntent(paymentId),
});

describe('Stripe gateway (the real SDK against a local fake of the API)', () => {
  let stripe: FakeStripeServer;
  let gateway: StripePaymentGateway;

  beforeAll(async () => {
    stripe = await new FakeStripeServer().start();
    gateway = StripePaymentGateway.fromOptions({ secretKey: 'sk_test_fake', apiBase: stripe.apiBase, maxNetworkRetries: 3, timeoutMs: 400 });
  });
  afterAll(() => stripe.stop());
  beforeEach(() => stripe.reset());

  it('creates an intent for the amount in minor units, lower-case currency and our ids in its metadata', async () => {
    const intent = await gateway.createIntent(intentRequest('pay-1'));
    expect(intent).toMatchObject({ status: 'awaiting-payment', amount: 24_000, currency: 'EUR' });
    expect(intent.clientSecret).toContain('_secret_');
    const [stored] = stripe.intentsFor('pay-1');
    expect(stored).toMatchObject({ amount: 24_000, currency: 'eur', metadata: { paymentId: 'pay-1', bookingId: 'booking-of-pay-1' } });
    expect(stripe.requestsTo('create-intent').map((r) => r.idempotencyKey)).toEqual(['bookable:payment:pay-1:create-intent']);
  });

  it('the same call again (a retry after a crash) returns the same intent', async () => {
    const first = await gateway.createIntent(intentRequest('pay-2'));
    const second = await gateway.createIntent(intentRequest('pay-2'));
    expect(second.intentId).toBe(first.intentId);
    expect(stripe.intentsFor('pay-2')).toHaveLength(1);
  });

  it.each([
    ['a dropped connection after the intent was created', { kind: 'drop-after' } as const],
    ['a dropped connection before anything happened', { kind: 'drop-before' } as const],
    ['a 500', { kind: 'status', status: 500 } as const],
    ['a 409', { kind: 'status', status: 409 } as const],
    ['a timeout while the first request is still being served', { kind: 'delay', ms: 700 } as const],
  ])('survives %s: the SDK retries with our key and exactly one intent exists', async (_what, fault) => {
    stripe.inject('create-intent', fault);
    const intent = await gateway.createIntent(intentRequest('pay-3'));
    expect(stripe.intentsFor('pay-3')).toEqual([expect.objectContaining({ id: intent.intentId })]);
    const keys = stripe.requestsTo('create-intent').map((r) => r.idempotencyKey);
    expect(keys.length).toBeGreaterThan(1);
    expect(new Set(keys)).toEqual(new Set(['bookable:payment:pay-3:create-intent']));
  });

  it('refunds part of an intent once, even when the first answer is lost', async () => {
    const intent = await gateway.createIntent(intentRequest('pay-4'));
    stripe.setIntentStatus(intent.intentId, 'succeeded');
    stripe.inject('create-refund', { kind: 'drop-after' }, { kind: 'status', status: 500 });
    const request = { intentId: intent.intentId, paymentId: 'pay-4', refundId: 'ref-1', amount: 12_000, idempotencyKey: idempotencyKeys.createRefund('pay-4', 'ref-1') };
    const refund = await gateway.createRefund(request);
    expect(refund.status).toBe('succeeded');
    expect(await gateway.createRefund(request)).toEqual(refund);
    expect(stripe.refundsFor('pay-4')).toEqual([expect.objectContaining({ amount: 12_000, metadata: { paymentId: 'pay-4', refundId: 'ref-1' } })]);
    expect(new Set(stripe.requestsTo('create-refund').map((r) => r.idempotencyKey))).toEqual(new Set(['bookable:payment:pay-4:refund:ref-1']));
  });

  describe('a create whose 500 Stripe keeps as its key\'s answer (replayed to every retry under that key for 24 h)', () => {
    const refundRequest = (intentId: string, paymentId: string) => ({ intentId, paymentId, refundId: `ref-of-${paymentId}`, amount: 12_000, idempotencyKey: idempotencyKeys.createRefund(paymentId, `ref-of-${paymentId}`) });

    it('a refund made before the 500 is found by its refundId, and not made again', async () => {
      const intent = await gateway.createIntent(intentRequest('pay-12'));
      stripe.setIntentStatus(intent.intentId, 'succeeded');
      stripe.inject('create-refund', { kind: 'work-then-kept-error', status: 500 });
      const request = refundRequest(intent.intentId, 'pay-12');

      const refund = await gateway.createRefund(request);
      expect(await gateway.createRefund(request)).toEqual(refund);

      expect(stripe.refundsFor('pay-12')).toEqual([expect.objectContaining({ id: refund.providerRefundId, amount: 12_000, metadata: { paymentId: 'pay-12', refundId: 'ref-of-pay-12' } })]);
      expect(new Set(stripe.requestsTo('create-refund').map((r) => r.idempotencyKey))).toEqual(new Set([request.idempotencyKey]));
    });

    it('a refund the 500 left unmade is made once, under the next versioned key', async () => {
      const intent = await gateway.createIntent(intentRequest('pay-13'));
      stripe.setIntentStatus(intent.intentId, 'succeeded');
      stripe.inject('create-refund', { kind: 'kept-error', status: 500 });
      const request = refundRequest(intent.intentId, 'pay-13');

      const refund = await gateway.createRefund(request);
      expect(refund.status).toBe('succeeded');
      expect(await gateway.createRefund(request)).toEqual(refund);

      expect(stripe.refundsFor('pay-13')).toEqual([expect.objectContaining({ id: refund.providerRefundId, amount: 12_000 })]);
      expect(new Set(stripe.requestsTo('create-refund').map((r) => r.idempotencyKey))).toEqual(new Set([request.idempotencyKey, `${request.idempotencyKey}:attempt-2`]));
    });

    it('a refund made under the next versioned key is found by a call a day later, once Stripe dropped the first key, and not made again', async () => {
      const intent = await gateway.createIntent(intentRequest('pay-16'));
      stripe.setIntentStatus(intent.intentId, 'succeeded');
      stripe.inject('create-refund', { kind: 'kept-error', status: 500 });
      const request = refundRequest(intent.intentId, 'pay-16');
      const refund = await gateway.createRefund(request);

      stripe.forgetIdempotencyKeys();
      expect(await gateway.createRefund(request)).toEqual(refund);

      expect(stripe.refundsFor('pay-16')).toEqual([expect.objectContaining({ id: refund.providerRefundId, amount: 12_000 })]);
    });

    it('a refund whose outcome is unknown (every try cut off) and that was not made is not made under another key: the same key is tried again later', async () => {
      const intent = await gateway.createIntent(intentRequest('pay-14'));
      stripe.setIntentStatus(intent.intentId, 'succeeded');
      stripe.inject('create-refund', ...Array.from({ length: 4 }, () => ({ kind: 'drop-before' }) as const));
      const request = refundRequest(intent.intentId, 'pay-14');

      await expect(gateway.createRefund(request)).rejects.toBeInstanceOf(ProviderUnavailableError);
      expect(new Set(stripe.requestsTo('create-refund').map((r) => r.idempotencyKey))).toEqual(new Set([request.idempotencyKey]));
      // Looked for before the create, and again after its outcome was lost.
      expect(stripe.requestsTo('list-refunds')).toHaveLength(2);
    });

    /** Each call's outcome, until one makes the refund (or `calls` ran out): a refund's status, or the error's name. */
    // No SDK retries: a fresh 500 ends its call, so each call walks the kept keys and spends one more.
    const withoutRetries = () => StripePaymentGateway.fromOptions({ secretKey: 'sk_test_fake', apiBase: stripe.apiBase, maxNetworkRetries: 0, timeoutMs: 400 });
    async function callUntilMade(request: ReturnType<typeof refundRequest>, calls: number): Promise<string[]> {
      const noRetries = withoutRetries();
      const outcomes: string[] = [];
      while (outcomes.length < calls && !outcomes.includes('succeeded')) {
        outcomes.push(await noRetries.createRefund(request).then((refund) => refund.status, (error: unknown) => (error instanceof Error ? error.name : String(error))));
      }
      return outcomes;
    }

    // Before, every call gave up after its fifth key, kept or not: five kept 500s and each later
    // call replayed them and threw an outage, retried by the payment process for a day.
    it('a refund 20 kept 500s held up, one more key a call, is made once by the next call, not refused all day', async () => {
      const intent = await gateway.createIntent(intentRequest('pay-17'));
      stripe.setIntentStatus(intent.intentId, 'succeeded');
      stripe.inject('create-refund', ...Array.from({ length: 20 }, () => ({ kind: 'kept-error', status: 500 }) as const));
      const request = refundRequest(intent.intentId, 'pay-17');

      expect(await callUntilMade(request, 30)).toEqual([...Array.from({ length: 20 }, () => 'ProviderUnavailableError'), 'succeeded']);
      expect(stripe.refundsFor('pay-17')).toEqual([expect.objectContaining({ amount: 12_000, status: 'succeeded' })]);
      expect(new Set(stripe.requestsTo('create-refund').map((r) => r.idempotencyKey)).size).toBe(21);
    });

    it('a refund whose every key Stripe keeps a 500 for is refused for good past the last key (a failed refund someone sees), not retried for ever', async () => {
      const intent = await gateway.createIntent(intentRequest('pay-18'));
      stripe.setIntentStatus(intent.intentId, 'succeeded');
      stripe.inject('create-refund', ...Array.from({ length: 25 }, () => ({ kind: 'kept-error', status: 500 }) as const));
      const request = refundRequest(intent.intentId, 'pay-18');

      expect(await callUntilMade(request, 27)).toEqual([...Array.from({ length: 25 }, () => 'ProviderUnavailableError'), 'ProviderRefusedError', 'ProviderRefusedError']);
      await expect(withoutRetries().createRefund(request)).rejects.toMatchObject({ code: 'idempotency_keys_exhausted' });
      expect(stripe.refundsFor('pay-18')).toEqual([]);
    });

    it('an intent the 500 left its key stuck on is made under the next versioned key, and a retry of the start finds that one', async () => {
      stripe.inject('create-intent', { kind: 'kept-error', status: 500 });
      const intent = await gateway.createIntent(intentRequest('pay-15'));
      expect(await gateway.createIntent(intentRequest('pay-15'))).toEqual(intent);
      expect(stripe.intentsFor('pay-15')).toEqual([expect.objectContaining({ id: intent.intentId })]);
      expect(new Set(stripe.requestsTo('create-intent').map((r) => r.idempotencyKey))).toEqual(new Set(['bookable:payment:pay-15:create-intent', 'bookable:payment:pay-15:create-intent:attempt-2']));
    });
  });

  it("a refund Stripe refuses for good (an intent it does not know) is a ProviderRefusedError, not worth a retry", async () => {
    const refusal = gateway.createRefund({ intentId: 'pi_unknown', paymentId: 'p', refundId: 'r', amount: 1, idempotencyKey: 'k-refused' });
    await expect(refusal).rejects.toBeInstanceOf(ProviderRefusedError);
    await expect(refusal).rejects.toMatchObject({ code: 'resource_missing' });
    expect(stripe.requestsTo('create-refund')).toHaveLength(1);
  });

  it("speaks the port's terms, not Stripe's statuses: a 400 is a refusal; our key refused (401, 403) or 5xx past the SDK's retries an outage", async () => {
    for (const status of [401, 403] as const) {
      stripe.inject('create-intent', { kind: 'status', status });
      await expect(gateway.createIntent(intentRequest('pay-9'))).rejects.toBeInstanceOf(ProviderUnavailableError);
    }
    stripe.inject('create-intent', { kind: 'status', status: 400 });
    await expect(gateway.createIntent(intentRequest('pay-9'))).rejects.toBeInstanceOf(ProviderRefusedError);
    stripe.inject('create-intent', ...Array.from({ length: 4 }, () => ({ kind: 'status', status: 500 }) as const));
    const outage: unknown = await gateway.createIntent(intentRequest('pay-9')).catch((error: unknown) => error);
    expect(outage).toBeInstanceOf(ProviderUnavailableError);
    expect(outage).not.toHaveProperty('statusCode');
    // A 5xx that was not kept as the key's answer is an outage: retried later under the same key, no other spent.
    expect(new Set(stripe.requestsTo('create-intent').map((r) => r.idempotencyKey))).toEqual(new Set(['bookable:payment:pay-9:create-intent']));
  });

  it('reports a failed refund with its reason', async () => {
    const intent = await gateway.createIntent(intentRequest('pay-5'));
    stripe.refundStatus = 'failed';
    const refund = await gateway.createRefund({ intentId: intent.intentId, paymentId: 'pay-5', refundId: 'r', amount: 1, idempotencyKey: 'k-5' });
    expect(refund).toMatchObject({ status: 'failed', failureReason: 'expired_or_canceled_card' });
  });

  it('retrieves the refund made under our refund id, as Stripe has it now; none when none was made', async () => {
    const intent = await gateway.createIntent(intentRequest('pay-20'));
    stripe.setIntentStatus(intent.intentId, 'succeeded');
    stripe.refundStatus = 'pending';
    const made = (refundId: string) => ({ intentId: intent.intentId, paymentId: 'pay-20', refundId, amount: 1_000, idempotencyKey: idempotencyKeys.createRefund('pay-20', refundId) });
    const first = await gateway.createRefund(made('ref-a'));
    const second = await gateway.createRefund(made('ref-b'));
    const [stored] = stripe.refundsFor('pay-20').filter((refund) => refund.id === first.providerRefundId);
    if (stored) stored.status = 'succeeded';

    expect(await gateway.retrieveRefund({ intentId: intent.intentId, paymentId: 'pay-20', refundId: 'ref-a' })).toEqual({ providerRefundId: first.providerRefundId, status: 'succeeded' });
    expect(await gateway.retrieveRefund({ intentId: intent.intentId, paymentId: 'pay-20', refundId: 'ref-b' })).toEqual({ providerRefundId: second.providerRefundId, status: 'pending' });
    expect(await gateway.retrieveRefund({ intentId: intent.intentId, paymentId: 'pay-20', refundId: 'ref-never-made' })).toBeUndefined();
    expect(stripe.requestsTo('create-refund')).toHaveLength(2);
  });

  it('a quick look for a refund is one request, given up after its own timeout: not the client\'s retries', async () => {
    const intent = await gateway.createIntent(intentRequest('pay-21'));
    stripe.inject('list-refunds', ...Array.from({ length: 4 }, () => ({ kind: 'delay', ms: 1_000 }) as const));
    const started = Date.now();
    await expect(gateway.retrieveRefund({ intentId: intent.intentId, paymentId: 'pay-21', refundId: 'r' }, { timeoutMs: 150, retries: 0 })).rejects.toBeInstanceOf(ProviderUnavailableError);
    expect(Date.now() - started).toBeLessThan(390);
    expect(stripe.requestsTo('list-refunds')).toHaveLength(1);
  });

  it('cancels a live intent, through a dropped answer; an intent that succeeded meanwhile is not cancelable, not an error', async () => {
    const live = await gateway.createIntent(intentRequest('pay-6'));
    stripe.inject('cancel-intent', { kind: 'drop-after' });
    expect(await gateway.cancelIntent({ intentId: live.intentId })).toEqual({ outcome: 'canceled' });
    expect(stripe.requestsTo('cancel-intent')).toHaveLength(2);

    const paid = await gateway.createIntent(intentRequest('pay-7'));
    stripe.setIntentStatus(paid.intentId, 'succeeded');
    const result = await gateway.cancelIntent({ intentId: paid.intentId });
    expect(result).toEqual({ outcome: 'not-cancelable', status: 'succeeded' });
  });

  it('cancels an intent that a failed debit made cancelable again, though an earlier cancel was refused', async () => {
    // Stripe replays a key's first answer for a day: under one key per payment, the refusal
    // while the debit was processing would have come back, and the intent stayed payable.
    const debit = await gateway.createIntent(intentRequest('pay-9'));
    stripe.setIntentStatus(debit.intentId, 'processing');
    expect(await gateway.cancelIntent({ intentId: debit.intentId })).toEqual({ outcome: 'not-cancelable', status: 'processing' });
    stripe.setIntentStatus(debit.intentId, 'requires_payment_method');
    expect(await gateway.cancelIntent({ intentId: debit.intentId })).toEqual({ outcome: 'canceled' });
    expect(stripe.intents.get(debit.intentId)?.status).toBe('canceled');
  });

  it('retrieves a succeeded intent with when its card charge took the money, in whole seconds', async () => {
    const intent = await gateway.createIntent(intentRequest('pay-10'));
    stripe.setIntentStatus(intent.intentId, 'succeeded', new Date('2031-03-01T10:00:00.750Z'));
    expect(await gateway.retrieveIntent(intent.intentId)).toEqual({ ...intent, status: 'succeeded', amountReceived: 24_000, capturedAt: '2031-03-01T10:00:00.000Z' });
  });

  it("a charge that is not a card's (a bank debit's, made days before it succeeds) gives no capture time", async () => {
    const intent = await gateway.createIntent(intentRequest('pay-11'));
    stripe.setIntentStatus(intent.intentId, 'succeeded', new Date('2031-03-01T10:00:00Z'));
    for (const charge of stripe.charges.values()) charge.payment_method_details = { type: 'sepa_debit' };
    expect(await gateway.retrieveIntent(intent.intentId)).not.toHaveProperty('capturedAt');
  });

  it('a quick look at an intent is one request, given up after its own timeout: not the client\'s retries', async () => {
    const intent = await gateway.createIntent(intentRequest('pay-19'));
    stripe.inject('retrieve-intent', ...Array.from({ length: 4 }, () => ({ kind: 'delay', ms: 1_000 }) as const));
    const started = Date.now();
    await expect(gateway.retrieveIntent(intent.intentId, { timeoutMs: 150, retries: 0 })).rejects.toBeInstanceOf(ProviderUnavailableError);
    expect(Date.now() - started).toBeLessThan(390);
    expect(stripe.requestsTo('retrieve-intent')).toHaveLength(1);
  });

  it('retrieves an intent, and knows nothing of an unknown one', async () => {
    const intent = await gateway.createIntent(intentRequest('pay-8'));
    expect(await gateway.retrieveIntent(intent.intentId)).toEqual(intent);
    expect(await gateway.retrieveIntent('pi_unknown')).toBeUndefined();
  });
});
