import Stripe from 'stripe';
import type {
  CancelIntentRequest,
  CancelIntentResult,
  CreateIntentRequest,
  CreateRefundRequest,
  PaymentGateway,
  ProviderIntent,
  ProviderIntentStatus,
  ProviderRefund,
  QuickLook,
  RetrieveRefundRequest,
} from '../../application/ports/payment-gateway.js';
import { idempotencyKeys, ProviderRefusedError, ProviderUnavailableError } from '../../application/ports/payment-gateway.js';
import { stripeInstant } from './stripe-instant.js';

export type StripeGatewayOptions = {
  readonly secretKey: string;
  /** Another API address than Stripe's (`STRIPE_API_BASE`): a mock, a proxy, a test server. */
  readonly apiBase?: URL;
  /** SDK retries of a connection error, a 409 or a 5xx, each with the same idempotency key. Default 3. */
  readonly maxNetworkRetries?: number;
  /** Per request. Default 20 s: a webhook answers sooner than the SDK's 80 s would wait. */
  readonly timeoutMs?: number;
};

/** `host`, `port` and `protocol` of the SDK from one URL; the SDK takes them apart. */
export function stripeApiAddress(apiBase: URL): { host: string; port: number; protocol: 'http' | 'https' } {
  const protocol = apiBase.protocol === 'http:' ? 'http' : 'https';
  const port = apiBase.port === '' ? (protocol === 'http' ? 80 : 443) : Number(apiBase.port);
  return { host: apiBase.hostname, port, protocol };
}

export function createStripeClient(options: StripeGatewayOptions): Stripe {
  return new Stripe(options.secretKey, {
    maxNetworkRetries: options.maxNetworkRetries ?? 3,
    timeout: options.timeoutMs ?? 20_000,
    telemetry: false,
    ...(options.apiBase ? stripeApiAddress(options.apiBase) : {}),
  });
}

function intentStatus(status: Stripe.PaymentIntent.Status): ProviderIntentStatus {
  switch (status) {
    case 'succeeded':
      return 'succeeded';
    case 'canceled':
      return 'canceled';
    case 'processing':
      return 'processing';
    default:
      // requires_capture does not occur: our intents capture automatically.
      return 'awaiting-payment';
  }
}

/**
 * When a succeeded intent's money was taken, as far as Stripe says: a PaymentIntent keeps no
 * capture time (its `created` is when we made it, before anyone paid), nor does a Charge, but a
 * card charge succeeds as it is made (our intents capture automatically), so its `created` is the
 * capture. Other methods' charges may be made days before they succeed (a bank debit's on its
 * submission), and a webhook reports the success itself: for them we do not claim to know.
 */
function capturedAt(intent: Stripe.PaymentIntent): string | undefined {
  const charge = intent.latest_charge;
  if (intent.status !== 'succeeded' || charge === null || typeof charge === 'string') return undefined;
  return charge.payment_method_details?.type === 'card' ? stripeInstant(charge.created) : undefined;
}

function toIntent(intent: Stripe.PaymentIntent): ProviderIntent {
  const captured = capturedAt(intent);
  return {
    intentId: intent.id,
    clientSecret: intent.client_secret ?? '',
    status: intentStatus(intent.status),
    amount: intent.amount,
    amountReceived: intent.amount_received,
    currency: intent.currency.toUpperCase(),
    ...(captured === undefined ? {} : { capturedAt: captured }),
  };
}

function refundStatus(refund: Stripe.Refund): ProviderRefund['status'] {
  if (refund.status === 'succeeded') return 'succeeded';
  if (refund.status === 'failed' || refund.status === 'canceled') return 'failed';
  return 'pending';
}

function toRefund(refund: Stripe.Refund): ProviderRefund {
  const status = refundStatus(refund);
  const failureReason = refund.failure_reason ?? undefined;
  return { providerRefundId: refund.id, status, ...(status === 'failed' ? { failureReason: failureReason ?? 'failed' } : {}) };
}

/** The SDK's per-request settings for a quick look; a connection closed before any answer is still retried once. */
function bounded(quick: QuickLook | undefined): Stripe.RequestOptions {
  return quick ? { timeout: quick.timeoutMs, maxNetworkRetries: quick.retries } : {};
}

function isStripeError(error: unknown): error is Stripe.errors.StripeError {
  return error instanceof Stripe.errors.StripeError;
}

/**
 * A 4xx that is not about the request: a rate limit, a conflict, or our key refused (401: revoked
 * or rotated; 403: a restricted key without the permission). Fixed by waiting or by an operator,
 * after which the very same call goes through: recorded as refused, a refund would be lost.
 */
const passingStatuses = new Set([401, 403, 409, 429]);

/**
 * Stripe's errors in the port's terms: every other 4xx is Stripe's final word on the request
 * (refused); any other Stripe error may pass on a retry (unavailable). Neither keeps Stripe's
 * HTTP status, which is about our call to Stripe, not about the request we answer.
 */
function providerError(error: unknown): unknown {
  if (!isStripeError(error)) return error;
  const status = error.statusCode;
  const final = status !== undefined && status >= 400 && status < 500 && !passingStatuses.has(status);
  if (final) return new ProviderRefusedError(error.code ?? error.type, error.message);
  return new ProviderUnavailableError(`Stripe: ${error.type}${status === undefined ? '' : ` (HTTP ${status})`}`, { cause: error });
}

/**
 * What a create that threw may have done. `kept-failure`: Stripe replayed a 5xx (its
 * `Idempotent-Replayed` header) kept as the key's answer because the request had started
 * executing; it replays it to every retry under that key for 24 h, and the request is over (one
 * still running gets a 409). `unknown`: no answer came (a connection cut, a timeout), or a first
 * 5xx, which may or may not be kept (a retry under the key tells). `undefined`: refused before
 * anything was done (a 4xx, a 409 while it runs): the same key may be tried again.
 */
function whatAFailedCreateDid(error: unknown): 'kept-failure' | 'unknown' | undefined {
  if (!isStripeError(error)) return undefined;
  if (error.statusCode === undefined) return error instanceof Stripe.errors.StripeConnectionError ? 'unknown' : undefined;
  if (error.statusCode < 500) return undefined;
  return error.headers?.['idempotent-replayed'] === 'true' ? 'kept-failure' : 'unknown';
}

/**
 * Keys a create may use, each after its predecessor's kept 5xx and a look that found nothing.
 * Every call walks the keys again from the first, quickly (a replay is answered at once), and
 * spends at most one fresh key after them (a fresh 5xx is an unknown outcome and ends the call):
 * a bound of 5 was reached by one burst of kept 500s, after which every call replayed them and
 * threw an outage, retried for a day. Past this many, something is wrong at Stripe that a retry
 * will not mend: the create is refused for good, and someone sees a failed refund (or start).
 */
const maxKeyAttempts = 25;

/**
 * Creates under the step's key; after a 5xx or an unknown outcome, first looks for what the create
 * may have made (`made`). Found, it is the answer. Else, after a kept 5xx only, it creates again
 * under the next versioned key: the old key would replay that 5xx all day, holding up the refund
 * (and, in the payment process, every event after it), and once Stripe dropped it a day later, a
 * retry under it would be a new request. An unknown outcome keeps its key: the request may still
 * be running, and the key is what makes its retry the same request; nor does an outage (fresh
 * 5xx) spend keys.
 */
async function createOnce<T>(key: string, create: (key: string) => Promise<T>, made: () => Promise<T | undefined>): Promise<T> {
  for (let attempt = 1; ; attempt++) {
    try {
      return await create(idempotencyKeys.attempt(key, attempt));
    } catch (error) {
      const outcome = whatAFailedCreateDid(error);
      if (outcome === undefined) throw providerError(error);
      const found = await made();
      if (found !== undefined) return found;
      if (outcome === 'unknown') throw providerError(error);
      if (attempt >= maxKeyAttempts) {
        throw new ProviderRefusedError('idempotency_keys_exhausted', `Stripe keeps a 5xx as the answer of all ${maxKeyAttempts} keys of ${key}`);
      }
    }
  }
}

/** The Stripe API through the official SDK; idempotency keys are always ours, never the SDK's random ones. */
export class StripePaymentGateway implements PaymentGateway {
  readonly name = 'stripe';

  constructor(private readonly stripe: Stripe) {}

  static fromOptions(options: StripeGatewayOptions): StripePaymentGateway {
    return new StripePaymentGateway(createStripeClient(options));
  }

  /**
   * No look for an intent an earlier try made: Stripe lists intents by customer and date only, and
   * its search lags by up to a minute. An intent made before a 5xx is left unused, and nobody can
   * pay it: its client secret was never handed out.
   */
  async createIntent(request: CreateIntentRequest): Promise<ProviderIntent> {
    const create = (idempotencyKey: string) =>
      this.stripe.paymentIntents.create(
        {
          amount: request.amount,
          currency: request.currency.toLowerCase(),
          automatic_payment_methods: { enabled: true },
          metadata: { paymentId: request.paymentId, bookingId: request.bookingId },
        },
        { idempotencyKey },
      );
    return toIntent(await createOnce(request.idempotencyKey, create, async () => undefined));
  }

  async retrieveIntent(intentId: string, quick?: QuickLook): Promise<ProviderIntent | undefined> {
    try {
      // The charge comes along, for when it took the money: one request, not two.
      return toIntent(await this.stripe.paymentIntents.retrieve(intentId, { expand: ['latest_charge'] }, bounded(quick)));
    } catch (error) {
      if (isStripeError(error) && error.code === 'resource_missing') return undefined;
      throw providerError(error);
    }
  }

  async cancelIntent(request: CancelIntentRequest): Promise<CancelIntentResult> {
    try {
      const intent = await this.stripe.paymentIntents.cancel(request.intentId);
      return intent.status === 'canceled' ? { outcome: 'canceled' } : { outcome: 'not-cancelable', status: intentStatus(intent.status) };
    } catch (error) {
      // Stripe refuses to cancel an intent that succeeded (or is canceled already): ask what it is now.
      if (!isStripeError(error) || error.code !== 'payment_intent_unexpected_state') throw providerError(error);
      const current = await this.retrieveIntent(request.intentId);
      if (current?.status === 'canceled') return { outcome: 'canceled' };
      return { outcome: 'not-cancelable', status: current?.status ?? 'awaiting-payment' };
    }
  }

  /**
   * Our ids go in the refund's metadata: its webhooks name it by them, and a later try finds it by
   * them. Looked for before any create, not only after a failed one: a refund made under a
   * versioned key is known to no key a later call starts with, and a day on, once Stripe dropped
   * the first key, a create under it would be a second refund. One list call per refund asked for.
   */
  async createRefund(request: CreateRefundRequest): Promise<ProviderRefund> {
    const create = (idempotencyKey: string) =>
      this.stripe.refunds.create(
        { payment_intent: request.intentId, amount: request.amount, metadata: { paymentId: request.paymentId, refundId: request.refundId } },
        { idempotencyKey },
      );
    const refund = (await this.refundMadeFor(request)) ?? (await createOnce(request.idempotencyKey, create, () => this.refundMadeFor(request)));
    return toRefund(refund);
  }

  /** Found as a create looks for it: among the intent's refunds, by the `refundId` in its metadata. */
  async retrieveRefund(request: RetrieveRefundRequest, quick?: QuickLook): Promise<ProviderRefund | undefined> {
    const refund = await this.refundMadeFor(request, quick);
    return refund && toRefund(refund);
  }

  /** The intent's refund that carries our `refundId`, if one was made (an intent has a few refunds at most). */
  private async refundMadeFor(request: RetrieveRefundRequest, quick?: QuickLook): Promise<Stripe.Refund | undefined> {
    try {
      for await (const refund of this.stripe.refunds.list({ payment_intent: request.intentId, limit: 100 }, bounded(quick))) {
        if (refund.metadata?.refundId === request.refundId) return refund;
      }
      return undefined;
    } catch (error) {
      throw providerError(error);
    }
  }
}
