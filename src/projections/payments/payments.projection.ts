import { sql, type Kysely, type Transaction } from 'kysely';
import { aggregates } from '../../application/aggregates/aggregates.js';
import type { RecordedEvent } from '../../application/ports/event-store.js';
import type { PaymentEvent } from '../../domain/payment/payment.events.js';
import { assertNever } from '../../domain/shared/decider.js';
import { decodeKnown, distinct, foldRows } from '../shared/batch-fold.js';
import { withinParameterLimit } from '../shared/parameter-limit.js';
import { defineProjection } from '../runtime/projection.js';
import { paymentsProjectionName, type PaymentRow, type PaymentsTables, type RefundEntry } from './payments.table.js';

const codec = aggregates.payment.codec;

async function migrate(db: Kysely<unknown>): Promise<void> {
  await db.schema
    .createTable('payments')
    .addColumn('payment_id', 'text', (c) => c.primaryKey())
    .addColumn('booking_id', 'text', (c) => c.notNull())
    .addColumn('provider_intent_id', 'text', (c) => c.notNull())
    .addColumn('amount', 'bigint', (c) => c.notNull())
    .addColumn('currency', 'text', (c) => c.notNull())
    .addColumn('status', 'text', (c) => c.notNull())
    .addColumn('failure_reason', 'text')
    .addColumn('mismatch', 'boolean', (c) => c.notNull())
    .addColumn('received_amount', 'bigint')
    .addColumn('received_currency', 'text')
    .addColumn('refunds', 'jsonb', (c) => c.notNull())
    .addColumn('initiated_at', 'timestamptz', (c) => c.notNull())
    .addColumn('updated_at', 'timestamptz', (c) => c.notNull())
    .addColumn('version', 'integer', (c) => c.notNull())
    .execute();
  // A booking's payments, latest first: the booking shows the state of its latest one.
  await db.schema.createIndex('payments_booking_idx').on('payments').columns(['booking_id', 'initiated_at desc', 'payment_id desc']).execute();
}

function settleRefund(refunds: readonly RefundEntry[], refundId: string, status: RefundEntry['status'], failureReason: string | null): RefundEntry[] {
  return refunds.map((refund) => (refund.refundId === refundId ? { ...refund, status, failureReason } : refund));
}

function evolve(row: PaymentRow | undefined, event: PaymentEvent, recorded: RecordedEvent): PaymentRow | undefined {
  const at = { version: recorded.revision, updated_at: recorded.recordedAt };
  if (event.type === 'PaymentInitiated') {
    const d = event.data;
    return {
      payment_id: d.paymentId,
      booking_id: d.bookingId,
      provider_intent_id: d.providerIntentId,
      amount: String(d.amount),
      currency: d.currency,
      status: 'initiated',
      failure_reason: null,
      mismatch: false,
      received_amount: null,
      received_currency: null,
      refunds: [],
      initiated_at: recorded.recordedAt,
      ...at,
    };
  }
  if (!row) return undefined;
  // Still waiting for its money: only an open payment takes an outcome.
  const open = row.status === 'initiated' || row.status === 'failed';
  switch (event.type) {
    // The decider ignores outcomes after a final one, so neither does this.
    case 'PaymentSucceeded':
      return open ? { ...row, ...at, status: 'succeeded', failure_reason: null } : { ...row, ...at };
    case 'PaymentMismatch': {
      // Kept only for the mismatch that decides the payment, as the decider keeps what it refunds.
      if (!open) return { ...row, ...at, mismatch: true };
      const received = { received_amount: String(event.data.receivedAmount), received_currency: event.data.receivedCurrency };
      return { ...row, ...at, ...received, status: 'mismatched', mismatch: true };
    }
    case 'PaymentFailed':
      return open ? { ...row, ...at, status: 'failed', failure_reason: event.data.reason } : { ...row, ...at };
    case 'PaymentCanceled':
      return row.status === 'succeeded' || row.status === 'mismatched' ? { ...row, ...at } : { ...row, ...at, status: 'canceled' };
    case 'RefundRequested': {
      const { refundId, amount, currency } = event.data;
      const refund: RefundEntry = { refundId, amount, currency, status: 'pending', failureReason: null, requestedAt: recorded.recordedAt.toISOString() };
      return { ...row, ...at, refunds: [...row.refunds, refund] };
    }
    case 'RefundSucceeded':
      return { ...row, ...at, refunds: settleRefund(row.refunds, event.data.refundId, 'succeeded', null) };
    case 'RefundFailed':
      return { ...row, ...at, refunds: settleRefund(row.refunds, event.data.refundId, 'failed', event.data.reason) };
    default:
      return assertNever(event);
  }
}

async function apply(trx: Transaction<PaymentsTables>, events: readonly RecordedEvent[]): Promise<void> {
  const decoded = decodeKnown(codec, events);
  if (decoded.length === 0) return;
  const ids = distinct(decoded.map(({ event }) => event.data.paymentId));
  const loaded = await trx.selectFrom('payments').selectAll().where('payment_id', 'in', ids).execute();
  const rows = foldRows({ events: decoded, loaded, keyOfRow: (row) => row.payment_id, keyOfEvent: (event) => event.data.paymentId, evolve });
  if (rows.length === 0) return;
  const encoded = rows.map((row) => ({ ...row, refunds: JSON.stringify(row.refunds) }));
  for (const run of withinParameterLimit(encoded)) {
    await trx
      .insertInto('payments')
      .values(run)
      .onConflict((oc) =>
        oc
          .column('payment_id')
          .doUpdateSet((eb) => ({
            status: eb.ref('excluded.status'),
            failure_reason: eb.ref('excluded.failure_reason'),
            mismatch: eb.ref('excluded.mismatch'),
            received_amount: eb.ref('excluded.received_amount'),
            received_currency: eb.ref('excluded.received_currency'),
            refunds: eb.ref('excluded.refunds'),
            updated_at: eb.ref('excluded.updated_at'),
            version: eb.ref('excluded.version'),
          }))
          .where('payments.version', '<', sql<number>`excluded.version`),
      )
      .execute();
  }
}

/** Payments with their refunds; `PaymentInitiated` names the booking each one pays. */
export const paymentsProjection = defineProjection<PaymentsTables>({
  name: paymentsProjectionName,
  // 2: a mismatch is its own status, no longer `initiated` with a flag.
  // 3: a mismatch keeps what the provider captured (`received_amount`, `received_currency`).
  version: 3,
  eventTypes: codec.eventTypes,
  migrate,
  apply,
});
