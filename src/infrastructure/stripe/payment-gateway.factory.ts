import type pg from 'pg';
import { paymentProviderActor, recordProviderEvent, type ProviderEventDeps } from '../../application/payments/provider-events.js';
import type { PaymentGateway } from '../../application/ports/payment-gateway.js';
import { ConfigError, type Config } from '../config/config.js';
import type { Logger } from '../logging/logger.js';
import { SimulatedPaymentGateway } from '../simulated-payment-gateway/simulated-payment-gateway.js';
import { StripePaymentGateway } from './stripe-payment-gateway.js';

type PaymentSettings = Pick<Config, 'NODE_ENV' | 'STRIPE_SECRET_KEY' | 'STRIPE_WEBHOOK_SECRET' | 'STRIPE_API_BASE'>;

/**
 * Stripe when a key is configured; otherwise the simulated gateway, said loudly, since its
 * payments succeed by themselves (it keeps its intents in `pool`'s database, shared by every
 * process). Production refuses to start without a key and a webhook
 * secret: money must never be simulated there, nor its webhooks go unverified.
 */
export function createPaymentGateway(config: PaymentSettings, logger: Logger, events: ProviderEventDeps, pool: pg.Pool): PaymentGateway {
  const production = config.NODE_ENV === 'production';
  if (config.STRIPE_SECRET_KEY) {
    if (!config.STRIPE_WEBHOOK_SECRET) {
      if (production) throw new ConfigError('Invalid configuration:\n  STRIPE_WEBHOOK_SECRET: required with STRIPE_SECRET_KEY in production');
      logger.warn('STRIPE_WEBHOOK_SECRET is not set: every Stripe webhook will be refused, so no payment will ever complete');
    }
    const apiBase = config.STRIPE_API_BASE ? new URL(config.STRIPE_API_BASE) : undefined;
    logger.info({ apiBase: apiBase?.origin ?? 'https://api.stripe.com' }, 'payments go to Stripe');
    return StripePaymentGateway.fromOptions({ secretKey: config.STRIPE_SECRET_KEY, ...(apiBase ? { apiBase } : {}) });
  }
  if (production) throw new ConfigError('Invalid configuration:\n  STRIPE_SECRET_KEY: required in production (without it payments are only simulated)');
  logger.warn(
    '*** PAYMENTS ARE SIMULATED: STRIPE_SECRET_KEY is not set. Every payment succeeds by itself after a moment and no money moves. ' +
      'Set STRIPE_SECRET_KEY and STRIPE_WEBHOOK_SECRET to take real payments. ***',
  );
  const context = { actor: paymentProviderActor, requestId: 'simulated-gateway', correlationId: 'simulated-gateway', causationId: 'simulated-gateway' };
  return new SimulatedPaymentGateway({
    pool,
    deliver: (event) => recordProviderEvent(events, event, { ...context, causationId: event.eventId }),
    onError: (err) => logger.warn({ err }, 'simulated gateway could not record a provider event'),
  });
}
