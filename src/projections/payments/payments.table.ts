import type { JSONColumnType } from 'kysely';

/** `mismatched`: the provider captured another amount or currency; it pays for nothing and is refunded. */
export type PaymentStatus = 'initiated' | 'succeeded' | 'mismatched' | 'failed' | 'canceled';
export type RefundStatus = 'pending' | 'succeeded' | 'failed';

/** A refund as kept inside its payment's row: few per payment, always read with it. */
export type RefundEntry = {
  readonly refundId: string;
  readonly amount: number;
  readonly currency: string;
  readonly status: RefundStatus;
  readonly failureReason: string | null;
  readonly requestedAt: string;
};

/** One row per payment; `version` is the revision of the payment stream's last event applied. */
export type PaymentsTable = {
  payment_id: string;
  booking_id: string;
  provider_intent_id: string;
  /** Minor units; `bigint`, which pg returns as a string. */
  amount: string;
  currency: string;
  status: PaymentStatus;
  failure_reason: string | null;
  /** The provider reported another amount or currency than expected; recorded, not a success (status `mismatched`). */
  mismatch: boolean;
  /** What the provider captured instead (minor units of `received_currency`), set by the mismatch that made the payment `mismatched` (version 3). */
  received_amount: string | null;
  received_currency: string | null;
  refunds: JSONColumnType<RefundEntry[], string, string>;
  initiated_at: Date;
  updated_at: Date;
  version: number;
};

export type PaymentsTables = { payments: PaymentsTable };

/** The row as the projection folds it, refunds parsed. */
export type PaymentRow = Omit<PaymentsTable, 'refunds'> & { refunds: RefundEntry[] };

export const paymentsProjectionName = 'payments';
