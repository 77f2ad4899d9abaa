import { createServer, type IncomingMessage, type Server, type ServerResponse } from 'node:http';
import type { AddressInfo } from 'node:net';
import { sleep } from '../../../src/application/sleep.js';

/**
 * Plays Stripe's API for the calls our gateway makes, over real HTTP, so the real SDK (its
 * retries, its timeouts, its headers) is what talks to it. Like Stripe, it replays the first
 * answer for a repeated `Idempotency-Key` once the request started executing, a 5xx too (for 24 h
 * at Stripe, for good here), and answers 409 while a request with the same key is still in
 * flight. Faults are queued per route and used up in order; a kept 5xx only by a request that
 * executes (not by a replay).
 */
export type Fault =
  /** Never answers: the connection is cut before anything is done. */
  | { readonly kind: 'drop-before' }
  /** Does the work, then cuts the connection: the client cannot know it happened. */
  | { readonly kind: 'drop-after' }
  /** Answers this status without doing anything or keeping it: refused before it executed (a 503 from the edge, a 409, a 401). */
  | { readonly kind: 'status'; readonly status: 500 | 409 | 503 | 401 | 403 | 400 }
  /** Does the work, then fails with this 5xx, which is kept as the key's answer: every retry under the key gets it. */
  | { readonly kind: 'work-then-kept-error'; readonly status: 500 }
  /** Starts executing and fails before doing anything; the 5xx is kept as the key's answer all the same. */
  | { readonly kind: 'kept-error'; readonly status: 500 }
  /** Does the work and answers after this long (longer than the client's timeout: a timeout). */
  | { readonly kind: 'delay'; readonly ms: number };

export type Route = 'create-intent' | 'retrieve-intent' | 'cancel-intent' | 'create-refund' | 'list-refunds';

export type FakeIntent = {
  id: string;
  object: 'payment_intent';
  amount: number;
  amount_received: number;
  currency: string;
  status: string;
  client_secret: string;
  metadata: Record<string, string>;
  latest_charge: string | null;
};

/** The card charge that took an intent's money: its `created` is when Stripe captured it, in whole seconds. */
export type FakeCharge = {
  id: string;
  object: 'charge';
  amount: number;
  amount_captured: number;
  currency: string;
  captured: boolean;
  status: 'succeeded';
  payment_intent: string;
  payment_method_details: { type: string };
  created: number;
};

export type FakeRefund = {
  id: string;
  object: 'refund';
  amount: number;
  currency: string;
  payment_intent: string;
  status: string;
  metadata: Record<string, string>;
  failure_reason: string | null;
};

export type RecordedRequest = { readonly method: string; readonly path: string; readonly route: Route | 'unknown'; readonly idempotencyKey: string | undefined };

type Stored = { status: number; body: string };

export class FakeStripeServer {
  readonly intents = new Map<string, FakeIntent>();
  readonly refunds = new Map<string, FakeRefund>();
  readonly charges = new Map<string, FakeCharge>();
  readonly requests: RecordedRequest[] = [];
  /** What a new refund's status is: `succeeded` like a card refund, or `pending`. */
  refundStatus: 'succeeded' | 'pending' | 'failed' = 'succeeded';
  private readonly faults = new Map<Route, Fault[]>();
  private readonly answered = new Map<string, Stored>();
  private readonly inFlight = new Set<string>();
  private sequence = 0;
  private server: Server | undefined;

  /** Where to point the SDK: `{ host, port, protocol: 'http' }`. */
  port = 0;

  async start(): Promise<this> {
    this.server = createServer((request, response) => {
      this.handle(request, response).catch((error: unknown) => {
        response.statusCode = 500;
        response.end(JSON.stringify({ error: { type: 'api_error', message: String(error) } }));
      });
    });
    await new Promise<void>((resolve) => this.server?.listen(0, '127.0.0.1', resolve));
    const address: AddressInfo | string | null = this.server.address();
    this.port = typeof address === 'object' && address ? address.port : 0;
    return this;
  }

  async stop(): Promise<void> {
    this.server?.closeAllConnections();
    await new Promise<void>((resolve) => this.server?.close(() => resolve()));
  }

  get apiBase(): URL {
    return new URL(`http://127.0.0.1:${this.port}`);
  }

  /** The next requests to `route` meet these faults, one each, in order. */
  inject(route: Route, ...faults: Fault[]): void {
    this.faults.set(route, [...(this.faults.get(route) ?? []), ...faults]);
  }

  requestsTo(route: Route): RecordedRequest[] {
    return this.requests.filter((request) => request.route === route);
  }

  intentsFor(paymentId: string): FakeIntent[] {
    return [...this.intents.values()].filter((intent) => intent.metadata.paymentId === paymentId);
  }

  refundsFor(paymentId: string): FakeRefund[] {
    return [...this.refunds.values()].filter((refund) => refund.metadata.paymentId === paymentId);
  }

  /**
   * What happens on Stripe's side when the customer pays (a charge, captured `at`), or the
   * intent fails. `at` defaults to the real time; a test on a fake clock names its own.
   */
  setIntentStatus(intentId: string, status: string, at: Date = new Date()): void {
    const intent = this.intents.get(intentId);
    if (!intent) return;
    intent.status = status;
    intent.amount_received = status === 'succeeded' ? intent.amount : 0;
    if (status !== 'succeeded') return;
    const id = `ch_fake_${++this.sequence}`;
    const created = Math.floor(at.getTime() / 1000);
    const { amount, currency } = intent;
    const charge: FakeCharge = {
      id,
      object: 'charge',
      amount,
      amount_captured: amount,
      currency,
      captured: true,
      status: 'succeeded',
      payment_intent: intentId,
      payment_method_details: { type: 'card' },
      created,
    };
    this.charges.set(id, charge);
    intent.latest_charge = id;
  }

  /** Stripe drops a key's kept answer after 24 h: a request under it is a new one again. */
  forgetIdempotencyKeys(): void {
    this.answered.clear();
  }

  reset(): void {
    this.intents.clear();
    this.refunds.clear();
    this.charges.clear();
    this.requests.length = 0;
    this.faults.clear();
    this.answered.clear();
    this.refundStatus = 'succeeded';
  }

  private async handle(request: IncomingMessage, response: ServerResponse): Promise<void> {
    const body = await readBody(request);
    const [path = '', query = ''] = (request.url ?? '').split('?');
    const method = request.method ?? 'GET';
    const route = routeOf(method, path);
    const keyHeader = request.headers['idempotency-key'];
    const idempotencyKey = typeof keyHeader === 'string' ? keyHeader : undefined;
    this.requests.push({ method, path, route, idempotencyKey });
    if (request.headers.authorization !== 'Bearer sk_test_fake') return send(response, 401, stripeError('authentication_error', 'invalid_api_key'));
    if (route === 'unknown') return send(response, 404, stripeError('invalid_request_error', 'resource_missing'));

    const storeKey = idempotencyKey === undefined ? undefined : `${method} ${idempotencyKey}`;
    // A kept 5xx is what an execution ends in: a request that executes nothing (a replay, a 409
    // while its key runs) leaves it to the next request that does.
    const queued = this.faults.get(route);
    const executes = !storeKey || (!this.answered.has(storeKey) && !this.inFlight.has(storeKey));
    const keptFault = queued?.[0]?.kind === 'kept-error' || queued?.[0]?.kind === 'work-then-kept-error';
    const fault = keptFault && !executes ? undefined : queued?.shift();
    if (fault?.kind === 'drop-before') return void request.socket.destroy();
    if (fault?.kind === 'status') return send(response, fault.status, stripeError('api_error', 'injected'));

    let answer: Stored;
    if (storeKey && this.answered.has(storeKey)) {
      answer = this.answered.get(storeKey) ?? { status: 500, body: '' };
      response.setHeader('idempotent-replayed', 'true');
    } else if (storeKey && this.inFlight.has(storeKey)) {
      return send(response, 409, stripeError('idempotency_error', 'idempotency_key_in_use'));
    } else {
      if (storeKey) this.inFlight.add(storeKey);
      try {
        if (fault?.kind === 'delay') await sleep(fault.ms);
        // The SDK sends a GET's parameters (`expand[0]=…`) in the query, a POST's in the body.
        const form = new URLSearchParams(method === 'GET' ? query : body);
        if (fault?.kind === 'kept-error') answer = { status: fault.status, body: stripeError('api_error', 'kept') };
        else {
          answer = this.perform(route, path, form);
          if (fault?.kind === 'work-then-kept-error') answer = { status: fault.status, body: stripeError('api_error', 'kept') };
        }
        // Stripe keeps the answer for a key once the request started executing, whatever it was.
        if (storeKey) this.answered.set(storeKey, answer);
      } finally {
        if (storeKey) this.inFlight.delete(storeKey);
      }
    }
    if (fault?.kind === 'drop-after') return void request.socket.destroy();
    if (request.socket.destroyed) return;
    response.statusCode = answer.status;
    response.setHeader('content-type', 'application/json');
    response.setHeader('request-id', `req_${++this.sequence}`);
    response.end(answer.body);
  }

  private perform(route: Route, path: string, form: URLSearchParams): Stored {
    switch (route) {
      case 'create-intent': {
        const id = `pi_fake_${++this.sequence}`;
        const intent: FakeIntent = {
          id,
          object: 'payment_intent',
          amount: Number(form.get('amount')),
          amount_received: 0,
          currency: form.get('currency') ?? '',
          status: 'requires_payment_method',
          client_secret: `${id}_secret_${this.sequence}`,
          metadata: metadataOf(form),
          latest_charge: null,
        };
        this.intents.set(id, intent);
        return ok(intent);
      }
      case 'retrieve-intent': {
        const intent = this.intents.get(path.split('/')[3] ?? '');
        if (!intent) return { status: 404, body: stripeError('invalid_request_error', 'resource_missing') };
        const charge = intent.latest_charge === null ? undefined : this.charges.get(intent.latest_charge);
        const expanded = [...form].some(([key, value]) => key.startsWith('expand[') && value === 'latest_charge');
        return ok(expanded && charge ? { ...intent, latest_charge: charge } : intent);
      }
      case 'cancel-intent': {
        const intent = this.intents.get(path.split('/')[3] ?? '');
        if (!intent) return { status: 404, body: stripeError('invalid_request_error', 'resource_missing') };
        if (intent.status === 'succeeded' || intent.status === 'canceled' || intent.status === 'processing') {
          return { status: 400, body: stripeError('invalid_request_error', 'payment_intent_unexpected_state') };
        }
        intent.status = 'canceled';
        return ok(intent);
      }
      case 'create-refund': {
        const intent = this.intents.get(form.get('payment_intent') ?? '');
        if (!intent) return { status: 404, body: stripeError('invalid_request_error', 'resource_missing') };
        const id = `re_fake_${++this.sequence}`;
        const refund: FakeRefund = {
          id,
          object: 'refund',
          amount: Number(form.get('amount') ?? intent.amount),
          currency: intent.currency,
          payment_intent: intent.id,
          status: this.refundStatus,
          metadata: metadataOf(form),
          failure_reason: this.refundStatus === 'failed' ? 'expired_or_canceled_card' : null,
        };
        this.refunds.set(id, refund);
        return ok(refund);
      }
      case 'list-refunds': {
        const intentId = form.get('payment_intent');
        const data = [...this.refunds.values()].filter((refund) => intentId === null || refund.payment_intent === intentId).reverse();
        return ok({ object: 'list', url: '/v1/refunds', has_more: false, data });
      }
    }
  }
}

function routeOf(method: string, path: string): Route | 'unknown' {
  if (method === 'POST' && path === '/v1/payment_intents') return 'create-intent';
  if (method === 'GET' && /^\/v1\/payment_intents\/[^/]+$/.test(path)) return 'retrieve-intent';
  if (method === 'POST' && /^\/v1\/payment_intents\/[^/]+\/cancel$/.test(path)) return 'cancel-intent';
  if (method === 'POST' && path === '/v1/refunds') return 'create-refund';
  if (method === 'GET' && path === '/v1/refunds') return 'list-refunds';
  return 'unknown';
}

function metadataOf(form: URLSearchParams): Record<string, string> {
  const metadata: Record<string, string> = {};
  for (const [key, value] of form) {
    const match = /^metadata\[(.+)\]$/.exec(key);
    if (match?.[1]) metadata[match[1]] = value;
  }
  return metadata;
}

function ok(object: object): Stored {
  return { status: 200, body: JSON.stringify(object) };
}

function stripeError(type: string, code: string): string {
  return JSON.stringify({ error: { type, code, message: `fake stripe: ${code}` } });
}

function send(response: ServerResponse, status: number, body: string): void {
  response.statusCode = status;
  response.setHeader('content-type', 'application/json');
  response.end(body);
}

function readBody(request: IncomingMessage): Promise<string> {
  return new Promise((resolve, reject) => {
    const chunks: Buffer[] = [];
    request.on('data', (chunk: Buffer) => chunks.push(chunk));
    request.on('end', () => resolve(Buffer.concat(chunks).toString('utf8')));
    request.on('error', reject);
  });
}

