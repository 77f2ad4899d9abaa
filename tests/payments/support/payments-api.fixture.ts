import { randomUUID } from 'node:crypto';
import type { PaymentGateway } from '../../../src/application/ports/payment-gateway.js';
import type { Actor } from '../../../src/domain/shared/actor.js';
import { FakeClock, postJson, startApi, type TestApi, type TestBackend } from '../../http/support/command-api.fixture.js';
import { stripeSignature } from '../../stripe/support/stripe-events.js';

export { intentObject, refundObject, stripeEvent } from '../../stripe/support/stripe-events.js';

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

/** Posts a raw body with a `Stripe-Signature` made by the SDK's own test helper. */
export async function deliver(
  api: PaymentsApi,
  payload: string,
  options: { secret?: string; timestamp?: number; signature?: string | null; body?: string } = {},
): Promise<{ status: number; body: Record<string, unknown> }> {
  const header =
    options.signature === null
      ? undefined
      : (options.signature ?? stripeSignature(payload, options.secret ?? webhookSecret, options.timestamp));
  const response = await fetch(`${api.url}/v1/webhooks/stripe`, {
    method: 'POST',
    headers: { 'content-type': 'application/json; charset=utf-8', ...(header ? { 'stripe-signature': header } : {}) },
    body: options.body ?? payload,
  });
  const text = await response.text();
  return { status: response.status, body: text === '' ? {} : JSON.parse(text) };
}
