import { sql, type Kysely } from 'kysely';
import type { Database } from '../read-models.js';
import { amount } from '../shared/page.js';
import { readAcrossGenerations } from '../shared/read-across-generations.js';
import type { PaymentStatus, RefundEntry } from './payments.table.js';

export type PaymentView = {
  readonly id: string;
  readonly bookingId: string;
  readonly amount: number;
  readonly currency: string;
  readonly status: PaymentStatus;
  readonly failureReason: string | null;
  readonly mismatch: boolean;
  /** What the provider captured instead of `amount` `currency`: set while `mismatched`, null otherwise. */
  readonly received: { readonly amount: number; readonly currency: string } | null;
  /**
   * Refunded in the payment's own `currency`: the refunds that succeeded in it. A mismatched
   * payment refunds what was `received`, maybe in another currency; those refunds are listed in
   * `refunds` with their currency and not counted here, so this never adds two currencies.
   */
  readonly refundedAmount: number;
  readonly refunds: RefundEntry[];
  readonly initiatedAt: string;
  readonly version: number;
};

/** A payment, and who may see it: the booking's consumer (the payer) and its owner. */
export type PaymentWithParties = PaymentView & { readonly payerId: string | null; readonly ownerId: string | null };

const shownColumns = ['p.payment_id', 'p.booking_id', 'p.amount', 'p.currency', 'p.status', 'p.failure_reason', 'p.mismatch', 'p.refunds', 'p.initiated_at', 'p.version'] as const;

/** The columns a payment is shown with, what a mismatch received among them (version 3). */
function payments(db: Kysely<Database>) {
  return db.selectFrom('rm_payments.payments as p').select([...shownColumns, 'p.received_amount', 'p.received_currency']);
}

/**
 * The same rows as version 2's tables hold them, without what a mismatch received: after a
 * deploy, version 3 rebuilds beside the active version 2, and payments must keep answering (with
 * `received: null`) until it swaps in. Remove once no deployment can still have version 2 active.
 */
function paymentsWithoutReceived(db: Kysely<Database>): ReturnType<typeof payments> {
  return db
    .selectFrom('rm_payments.payments as p')
    .select(shownColumns)
    .select([sql<string | null>`null`.as('received_amount'), sql<string | null>`null`.as('received_currency')]);
}

/** Reads with `payments`, or with `paymentsWithoutReceived` while version 2's tables still serve. */
function readPayments<T>(db: Kysely<Database>, read: (from: ReturnType<typeof payments>) => Promise<T>): Promise<T> {
  return readAcrossGenerations(() => read(payments(db)), () => read(paymentsWithoutReceived(db)));
}

type PaymentRecord = Awaited<ReturnType<ReturnType<typeof payments>['execute']>>[number];

function receivedOf(row: PaymentRecord): PaymentView['received'] {
  if (row.status !== 'mismatched' || row.received_amount === null || row.received_currency === null) return null;
  return { amount: amount(row.received_amount), currency: row.received_currency };
}

export function toPaymentView(row: PaymentRecord): PaymentView {
  const refunded = row.refunds.filter((refund) => refund.status === 'succeeded' && refund.currency === row.currency);
  return {
    id: row.payment_id,
    bookingId: row.booking_id,
    amount: amount(row.amount),
    currency: row.currency,
    status: row.status,
    failureReason: row.failure_reason,
    mismatch: row.mismatch,
    received: receivedOf(row),
    refundedAmount: refunded.reduce((sum, refund) => sum + refund.amount, 0),
    refunds: row.refunds,
    initiatedAt: row.initiated_at.toISOString(),
    version: row.version,
  };
}

/** One payment with its booking's parties, read from the bookings read model. */
export async function findPayment(db: Kysely<Database>, paymentId: string): Promise<PaymentWithParties | undefined> {
  const row = await readPayments(db, (from) =>
    from.leftJoin('rm_bookings.bookings as b', 'b.booking_id', 'p.booking_id').select(['b.consumer_id', 'b.owner_id']).where('p.payment_id', '=', paymentId).executeTakeFirst(),
  );
  return row && { ...toPaymentView(row), payerId: row.consumer_id, ownerId: row.owner_id };
}

/** The booking's latest payment, which is the one that tells its payment state. */
export async function latestPaymentOfBooking(db: Kysely<Database>, bookingId: string): Promise<PaymentView | undefined> {
  const row = await readPayments(db, (from) =>
    from.where('p.booking_id', '=', bookingId).orderBy('p.initiated_at', 'desc').orderBy('p.payment_id', 'desc').limit(1).executeTakeFirst(),
  );
  return row && toPaymentView(row);
}
