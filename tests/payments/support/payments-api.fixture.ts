import { randomUUID } from 'node:crypto';
import Stripe from 'stripe';
import type { PaymentGateway } from '../../../src/application/ports/payment-gateway.js';
import type { Actor } from '../../../src/domain/shared/actor.js';
import { FakeClock, postJson, startApi, type TestApi, type TestBackend } from '../../http/support/command-api.fixture.js';

export const webhookSecret = 'whsec_test_0123456789abcdef';

export type PaymentsApi = TestApi;

/** The real command API with its payment routes and the Stripe webhook, over HTTP, on `gateway`. */
export function startPaymentsApi(backend: TestBackend, gateway: PaymentGateway, clock = new FakeClock()): Promise<PaymentsApi> {
  return startApi(backend, { clock, corsOrigins: [], payments: { gateway, eventStore: backend.eventStore, webhookSecret } });
}

export const person = (roles: Actor['roles']): Actor => ({ id: randomUUID(), roles });

/** Calls as `actor`, with a JSON body. */
export function caller(api: PaymentsApi) {
  return (path: string, body: unknown, actor?: Actor, headers: Record<string, string> = {}) =>
    postJson(`${api.url}${path}`, body, { ...(actor ? { authorization: `Bearer ${api.app.issueAccessToken(actor).accessToken}` } : {}), ...headers });
}

type EventObject = { id: string; object: string; [key: string]: unknown };

/** A Stripe event as its webhook delivers it. */
export function stripeEvent(id: string, type: string, object: EventObject): string {
  return JSON.stringify({ id, object: 'event', type, api_version: '2025-01-27', created: Math.floor(Date.now() / 1000), livemode: false, data: { object } });
}

export function intentObject(intentId: string, paymentId: string, fields: Record<string, unknown> = {}): EventObject {
  return { id: intentId, object: 'payment_intent', amount: 0, amount_received: 0, currency: 'eur', status: 'succeeded', metadata: { paymentId }, last_payment_error: null, ...fields };
}

export function refundObject(refundId: string, paymentId: string, fields: Record<string, unknown> = {}): EventObject {
  return { id: `re_${refundId}`, object: 'refund', amount: 0, currency: 'eur', status: 'succeeded', metadata: { paymentId, refundId }, ...fields };
}

/** Posts a raw body with a `Stripe-Signature` made by the SDK's own test helper. */
export async function deliver(
  api: PaymentsApi,
  payload: string,
  options: { secret?: string; timestamp?: number; signature?: string | null; body?: string } = {},
): Promise<{ status: number; body: Record<string, unknown> }> {
  const header =
    options.signature === null
      ? undefined
      : (options.signature ?? Stripe.webhooks.generateTestHeaderString({ payload, secret: options.secret ?? webhookSecret, ...(options.timestamp ? { timestamp: options.timestamp } : {}) }));
  const response = await fetch(`${api.url}/v1/webhooks/stripe`, {
    method: 'POST',
    headers: { 'content-type': 'application/json; charset=utf-8', ...(header ? { 'stripe-signature': header } : {}) },
    body: options.body ?? payload,
  });
  const text = await response.text();
  return { status: response.status, body: text === '' ? {} : JSON.parse(text) };
}
