import { createHash } from 'node:crypto';
import type { PaymentProviderEvent } from '../../application/payments/provider-events.js';
import type {
  CancelIntentRequest,
  CancelIntentResult,
  CreateIntentRequest,
  CreateRefundRequest,
  PaymentGateway,
  ProviderIntent,
  ProviderRefund,
} from '../../application/ports/payment-gateway.js';

export type SimulatedGatewayOptions = {
  /** Where its provider events go: the same recording the Stripe webhook does. */
  readonly deliver: (event: PaymentProviderEvent) => Promise<void>;
  /** How long after its creation an intent is "paid". Default 1.5 s. */
  readonly succeedAfterMs?: number;
  readonly onError?: (error: unknown) => void;
};

type SimulatedIntent = { intent: ProviderIntent; paymentId: string; timer: NodeJS.Timeout | undefined };

const shortId = (text: string) => createHash('sha256').update(text).digest('hex').slice(0, 24);

/**
 * A stand-in for Stripe when no key is configured, so the whole flow runs locally: every intent
 * is paid by itself shortly after it was created, and the provider events a webhook would bring
 * are delivered in-process. Like Stripe it answers a repeated idempotency key with the first
 * answer. It keeps its intents in memory: after a restart an intent it made is unknown to it,
 * and starting the payment again makes a new attempt. Never for production (config refuses it).
 */
export class SimulatedPaymentGateway implements PaymentGateway {
  readonly name = 'simulated';
  private readonly intents = new Map<string, SimulatedIntent>();
  private readonly refunds = new Map<string, ProviderRefund>();
  private readonly succeedAfterMs: number;

  constructor(private readonly options: SimulatedGatewayOptions) {
    this.succeedAfterMs = options.succeedAfterMs ?? 1_500;
  }

  async createIntent(request: CreateIntentRequest): Promise<ProviderIntent> {
    const intentId = `pi_sim_${shortId(request.idempotencyKey)}`;
    const known = this.intents.get(intentId);
    if (known) return known.intent;
    const intent: ProviderIntent = {
      intentId,
      clientSecret: `${intentId}_secret_${shortId(`secret:${intentId}`)}`,
      status: 'awaiting-payment',
      amount: request.amount,
      amountReceived: 0,
      currency: request.currency,
    };
    const timer = setTimeout(() => this.succeed(intentId), this.succeedAfterMs);
    // A pending simulated payment must not keep the process alive on shutdown.
    timer.unref();
    this.intents.set(intentId, { intent, paymentId: request.paymentId, timer });
    return intent;
  }

  async retrieveIntent(intentId: string): Promise<ProviderIntent | undefined> {
    return this.intents.get(intentId)?.intent;
  }

  async cancelIntent(request: CancelIntentRequest): Promise<CancelIntentResult> {
    const simulated = this.intents.get(request.intentId);
    // Unknown here (made before a restart, or by another process): nothing of it can still succeed.
    if (!simulated) return { outcome: 'canceled' };
    if (simulated.intent.status === 'canceled') return { outcome: 'canceled' };
    if (simulated.intent.status !== 'awaiting-payment') return { outcome: 'not-cancelable', status: simulated.intent.status };
    clearTimeout(simulated.timer);
    simulated.intent = { ...simulated.intent, status: 'canceled' };
    const { intentId } = simulated.intent;
    this.send({ kind: 'payment-canceled', eventId: `evt_sim_${shortId(`canceled:${intentId}`)}`, paymentId: simulated.paymentId, intentId });
    return { outcome: 'canceled' };
  }

  async createRefund(request: CreateRefundRequest): Promise<ProviderRefund> {
    const known = this.refunds.get(request.idempotencyKey);
    if (known) return known;
    const refund: ProviderRefund = { providerRefundId: `re_sim_${shortId(request.idempotencyKey)}`, status: 'succeeded' };
    this.refunds.set(request.idempotencyKey, refund);
    const { paymentId, refundId } = request;
    this.send({ kind: 'refund-succeeded', eventId: `evt_sim_${shortId(`refund:${refund.providerRefundId}`)}`, paymentId, refundId });
    return refund;
  }

  /** Stops the pending simulated payments. */
  close(): void {
    for (const simulated of this.intents.values()) clearTimeout(simulated.timer);
  }

  private succeed(intentId: string): void {
    const simulated = this.intents.get(intentId);
    if (!simulated || simulated.intent.status !== 'awaiting-payment') return;
    simulated.intent = { ...simulated.intent, status: 'succeeded', amountReceived: simulated.intent.amount };
    const { amount, currency } = simulated.intent;
    const eventId = `evt_sim_${shortId(`succeeded:${intentId}`)}`;
    this.send({ kind: 'payment-succeeded', eventId, paymentId: simulated.paymentId, intentId, amount, currency });
  }

  /** After the current call has answered, as a webhook would arrive. */
  private send(event: PaymentProviderEvent): void {
    setImmediate(() => {
      this.options.deliver(event).catch((error: unknown) => this.options.onError?.(error));
    });
  }
}
