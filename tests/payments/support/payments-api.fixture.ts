import { randomUUID } from 'node:crypto';
import { Writable } from 'node:stream';
import { pino } from 'pino';
import Stripe from 'stripe';
import { createCommandHandlers, type CommandSide } from '../../../src/application/command-handlers.js';
import { createIdentityService } from '../../../src/application/identity/identity.service.js';
import type { PaymentGateway } from '../../../src/application/ports/payment-gateway.js';
import type { Actor } from '../../../src/domain/shared/actor.js';
import { buildCommandApi } from '../../../src/infrastructure/http/command-api.js';
import type { HttpServer } from '../../../src/infrastructure/http/http-server.js';
import { postgresProbe } from '../../../src/infrastructure/http/plugins/health.plugin.js';
import { Argon2PasswordHasher } from '../../../src/infrastructure/identity/argon2-password-hasher.js';
import { PgCredentialStore } from '../../../src/infrastructure/identity/pg-credential-store.js';
import { PgRefreshTokenStore } from '../../../src/infrastructure/identity/pg-refresh-token-store.js';
import { PgSecurityEventLog } from '../../../src/infrastructure/identity/pg-security-event-log.js';
import { audience, FakeClock, issuer, postJson, secret, type TestBackend } from '../../http/support/command-api.fixture.js';

export const webhookSecret = 'whsec_test_0123456789abcdef';

export type PaymentsApi = {
  readonly app: HttpServer;
  readonly url: string;
  readonly clock: FakeClock;
  readonly side: CommandSide;
  readonly logs: Record<string, unknown>[];
  close(): Promise<void>;
};

/** The real command API with its payment routes and the Stripe webhook, over HTTP, on `gateway`. */
export async function startPaymentsApi(backend: TestBackend, gateway: PaymentGateway, clock = new FakeClock()): Promise<PaymentsApi> {
  const logs: Record<string, unknown>[] = [];
  const sink = new Writable({
    write(chunk: Buffer, _encoding, done) {
      for (const line of chunk.toString('utf8').split('\n')) if (line.trim() !== '') logs.push(JSON.parse(line));
      done();
    },
  });
  const handlers = createCommandHandlers({ eventStore: backend.eventStore, clock });
  const side: CommandSide = { handlers, clock, policy: { holdMinutes: 15 } };
  const identity = createIdentityService({
    users: handlers.user,
    credentials: new PgCredentialStore(backend.identityDb),
    refreshTokens: new PgRefreshTokenStore(backend.identityDb),
    securityEvents: new PgSecurityEventLog(backend.identityDb),
    passwords: new Argon2PasswordHasher(),
    clock,
  });
  const app = await buildCommandApi({
    logger: pino({ level: 'info' }, sink),
    clock,
    secret,
    issuer,
    audience,
    corsOrigins: [],
    rateLimitMax: 10_000,
    authRateLimitMax: 10_000,
    idempotencyTtlHours: 24,
    db: backend.idempotencyDb,
    identity,
    side,
    payments: { gateway, eventStore: backend.eventStore, webhookSecret },
    probes: [postgresProbe(backend.pool)],
  });
  await app.listen({ port: 0, host: '127.0.0.1' });
  const address = app.server.address();
  const url = typeof address === 'object' && address ? `http://127.0.0.1:${address.port}` : '';
  return { app, url, clock, side, logs, close: () => app.close() };
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
