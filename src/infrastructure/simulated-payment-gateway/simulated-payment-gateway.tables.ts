import type { Generated } from 'kysely';

/**
 * The simulated gateway's state, shared by every process on the database: an intent made by one
 * process is retrieved, canceled, answered to a repeated key and paid by whichever process is
 * asked, as Stripe's would be. Amounts are `bigint` in minor units, which pg returns as strings.
 */
export interface SimulatedPaymentIntentsTable {
  intent_id: string;
  payment_id: string;
  amount: string;
  currency: string;
  status: 'awaiting-payment' | 'succeeded' | 'canceled';
  /** By the database's clock, which every process shares: when an awaiting intent is paid. */
  succeed_at: Date;
  /** When it was paid (the database's clock): the capture time its success reports. */
  succeeded_at: Date | null;
  /**
   * Its outcome's provider event is owed until this is cleared: set when the outcome is reached
   * (a lease for the process delivering it), cleared once delivered. A delivery that failed, or a
   * process that died delivering, leaves it set, and a poll after it delivers again, as Stripe
   * retries a webhook.
   */
  deliver_at: Date | null;
  created_at: Generated<Date>;
}

export interface SimulatedRefundsTable {
  idempotency_key: string;
  provider_refund_id: string;
  payment_id: string;
  /** Ours, which the provider event names. */
  refund_id: string;
  /** As for intents: the refund's provider event is owed until this is cleared. */
  deliver_at: Date | null;
  created_at: Generated<Date>;
}

export interface SimulatedPaymentGatewayTables {
  simulated_payment_intents: SimulatedPaymentIntentsTable;
  simulated_refunds: SimulatedRefundsTable;
}
