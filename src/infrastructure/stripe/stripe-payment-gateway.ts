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
} from '../../application/ports/payment-gateway.js';
import { ProviderRefusedError, ProviderUnavailableError } from '../../application/ports/payment-gateway.js';
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

const rethrowProviderError = (error: unknown): never => {
  throw providerError(error);
};

/** The Stripe API through the official SDK; idempotency keys are always ours, never the SDK's random ones. */
export class StripePaymentGateway implements PaymentGateway {
  readonly name = 'stripe';

  constructor(private readonly stripe: Stripe) {}

  static fromOptions(options: StripeGatewayOptions): StripePaymentGateway {
    return new StripePaymentGateway(createStripeClient(options));
  }

  async createIntent(request: CreateIntentRequest): Promise<ProviderIntent> {
    const intent = await this.stripe.paymentIntents
      .create(
        {
          amount: request.amount,
          currency: request.currency.toLowerCase(),
          automatic_payment_methods: { enabled: true },
          metadata: { paymentId: request.paymentId, bookingId: request.bookingId },
        },
        { idempotencyKey: request.idempotencyKey },
      )
      .catch(rethrowProviderError);
    return toIntent(intent);
  }

  async retrieveIntent(intentId: string): Promise<ProviderIntent | undefined> {
    try {
      // The charge comes along, for when it took the money: one request, not two.
      return toIntent(await this.stripe.paymentIntents.retrieve(intentId, { expand: ['latest_charge'] }));
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

  async createRefund(request: CreateRefundRequest): Promise<ProviderRefund> {
    const refund = await this.stripe.refunds
      .create(
        {
          payment_intent: request.intentId,
          amount: request.amount,
          metadata: { paymentId: request.paymentId, refundId: request.refundId },
        },
        { idempotencyKey: request.idempotencyKey },
      )
      .catch(rethrowProviderError);
    const status = refundStatus(refund);
    const failureReason = refund.failure_reason ?? undefined;
    return { providerRefundId: refund.id, status, ...(status === 'failed' ? { failureReason: failureReason ?? 'failed' } : {}) };
  }
}
