import type { Kysely } from 'kysely';
import type { Database } from '../read-models.js';
import { amount } from '../shared/page.js';
import type { PaymentStatus, RefundEntry } from './payments.table.js';

export type PaymentView = {
  readonly id: string;
  readonly bookingId: string;
  readonly amount: number;
  readonly currency: string;
  readonly status: PaymentStatus;
  readonly failureReason: string | null;
  readonly mismatch: boolean;
  /** Sum of the refunds that succeeded. */
  readonly refundedAmount: number;
  readonly refunds: RefundEntry[];
  readonly initiatedAt: string;
  readonly version: number;
};

/** A payment, and who may see it: the booking's consumer (the payer) and its owner. */
export type PaymentWithParties = PaymentView & { readonly payerId: string | null; readonly ownerId: string | null };

type PaymentRecord = {
  payment_id: string;
  booking_id: string;
  amount: string;
  currency: string;
  status: PaymentStatus;
  failure_reason: string | null;
  mismatch: boolean;
  refunds: RefundEntry[];
  initiated_at: Date;
  version: number;
};

export function toPaymentView(row: PaymentRecord): PaymentView {
  return {
    id: row.payment_id,
    bookingId: row.booking_id,
    amount: amount(row.amount),
    currency: row.currency,
    status: row.status,
    failureReason: row.failure_reason,
    mismatch: row.mismatch,
    refundedAmount: row.refunds.filter((r) => r.status === 'succeeded').reduce((sum, r) => sum + r.amount, 0),
    refunds: row.refunds,
    initiatedAt: row.initiated_at.toISOString(),
    version: row.version,
  };
}

const paymentColumns = ['p.payment_id', 'p.booking_id', 'p.amount', 'p.currency', 'p.status', 'p.failure_reason', 'p.mismatch', 'p.refunds', 'p.initiated_at', 'p.version'] as const;

/** One payment with its booking's parties, read from the bookings read model. */
export async function findPayment(db: Kysely<Database>, paymentId: string): Promise<PaymentWithParties | undefined> {
  const row = await db
    .selectFrom('rm_payments.payments as p')
    .leftJoin('rm_bookings.bookings as b', 'b.booking_id', 'p.booking_id')
    .select(paymentColumns)
    .select(['b.consumer_id', 'b.owner_id'])
    .where('p.payment_id', '=', paymentId)
    .executeTakeFirst();
  return row && { ...toPaymentView(row), payerId: row.consumer_id, ownerId: row.owner_id };
}

/** The booking's latest payment, which is the one that tells its payment state. */
export async function latestPaymentOfBooking(db: Kysely<Database>, bookingId: string): Promise<PaymentView | undefined> {
  const row = await db
    .selectFrom('rm_payments.payments as p')
    .select(paymentColumns)
    .where('p.booking_id', '=', bookingId)
    .orderBy('p.initiated_at', 'desc')
    .orderBy('p.payment_id', 'desc')
    .limit(1)
    .executeTakeFirst();
  return row && toPaymentView(row);
}
