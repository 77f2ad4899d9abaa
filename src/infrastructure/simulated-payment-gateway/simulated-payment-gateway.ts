import { createHash } from 'node:crypto';
import { sql, type Kysely, type RawBuilder, type Selectable } from 'kysely';
import type pg from 'pg';
import type { PaymentProviderEvent } from '../../application/payments/provider-events.js';
import type {
  CancelIntentRequest,
  CancelIntentResult,
  CreateIntentRequest,
  CreateRefundRequest,
  PaymentGateway,
  ProviderIntent,
  ProviderRefund,
  RetrieveRefundRequest,
} from '../../application/ports/payment-gateway.js';
import { createKysely } from '../postgres/database.js';
import type { SimulatedPaymentGatewayTables, SimulatedPaymentIntentsTable, SimulatedRefundsTable } from './simulated-payment-gateway.tables.js';

export type SimulatedGatewayOptions = {
  /** Where its intents and refunds live, shared with every other process on the database. */
  readonly pool: pg.Pool;
  /** Where its provider events go: the same recording the Stripe webhook does. */
  readonly deliver: (event: PaymentProviderEvent) => Promise<void>;
  /** How long after its creation an intent is "paid". Default 1.5 s. */
  readonly succeedAfterMs?: number;
  /** How often this process looks for intents to pay and provider events still owed. Default 200 ms. */
  readonly pollIntervalMs?: number;
  /**
   * How long a delivery may take before a poll, in any process, makes it again. Default 10 s: a
   * redelivery is harmless (recording is idempotent by event id), a lost one leaves a payment
   * unrecorded.
   */
  readonly redeliverAfterMs?: number;
  readonly onError?: (error: unknown) => void;
};

type IntentRow = Selectable<SimulatedPaymentIntentsTable>;
type RefundRow = Selectable<SimulatedRefundsTable>;

/**
 * At most this many intents, and as many refunds, per poll. Its claims share one lease
 * (`redeliverAfterMs`, 10 s by default) and are delivered one after another: 20 deliveries at
 * 100 ms each under load take 2 s, well within it. With 50 of each they took 10 s, the lease ran
 * out part-way and another process delivered the rest again. A full batch polls again at once,
 * so a backlog still drains as fast as deliveries go.
 */
const pollBatch = 10;

/**
 * Outcomes delivered are removed after this many days (from the intent's or refund's creation),
 * so that long soaks do not grow the tables without bound. A missing intent reads as canceled
 * (`intentOutcomeLearned`, `cancelIntent`), so a succeeded one must outlive every question its
 * payment may still ask: while the booking's hold lasts (BOOKING_HOLD_MINUTES, at most a day)
 * when paying again, and when the booking ends, if the payment is still live then (its outcome
 * arrived before the payment was recorded), which the payment process asks later still if it was
 * behind. A refund's idempotency key is answered as long as its row is kept: Stripe keeps keys
 * 24 h. A week covers both, with days to spare for a process that was down.
 */
const retentionDays = 7;
/** How often one process removes what is past retention: the other polls need not repeat it. */
const cleanupEveryMs = 60_000;

const shortId = (text: string) => createHash('sha256').update(text).digest('hex').slice(0, 24);

/**
 * A stand-in for Stripe when no key is configured, so the whole flow runs locally: every intent
 * is paid by itself shortly after it was created, and the provider events a webhook would bring
 * are delivered in-process. Like Stripe it answers a repeated idempotency key with the first
 * answer. Its intents and refunds are in PostgreSQL, so that every process (compose runs several
 * command processes and a projector) sees the same ones: one process's retry, cancel or repeated
 * key finds the intent another made, and each outcome is decided once, by the database. Each
 * process polls for intents due to be paid; a row claims its outcome's delivery, so one process
 * delivers it, and delivers it again later if it failed, as Stripe retries a webhook. Never for
 * production (config refuses it).
 */
export class SimulatedPaymentGateway implements PaymentGateway {
  readonly name = 'simulated';
  private readonly db: Kysely<SimulatedPaymentGatewayTables>;
  private readonly succeedAfterMs: number;
  private readonly pollIntervalMs: number;
  private readonly redeliverAfterMs: number;
  private timer: NodeJS.Timeout | undefined;
  private closed = false;
  /** When this process last removed old outcomes (its first poll does). */
  private cleanedAt = Number.NEGATIVE_INFINITY;
  /** Polls and deliveries under way, which `close` waits for. */
  private readonly running = new Set<Promise<void>>();

  constructor(private readonly options: SimulatedGatewayOptions) {
    this.db = createKysely<SimulatedPaymentGatewayTables>(options.pool);
    this.succeedAfterMs = options.succeedAfterMs ?? 1_500;
    this.pollIntervalMs = options.pollIntervalMs ?? 200;
    this.redeliverAfterMs = options.redeliverAfterMs ?? 10_000;
    this.schedulePoll();
  }

  async createIntent(request: CreateIntentRequest): Promise<ProviderIntent> {
    const intentId = `pi_sim_${shortId(request.idempotencyKey)}`;
    const created = await this.db
      .insertInto('simulated_payment_intents')
      .values({
        intent_id: intentId,
        payment_id: request.paymentId,
        amount: String(request.amount),
        currency: request.currency,
        status: 'awaiting-payment',
        // The database's clock: every process's poll compares with the same one.
        succeed_at: this.fromNow(this.succeedAfterMs),
      })
      .onConflict((conflict) => conflict.column('intent_id').doNothing())
      .returningAll()
      .executeTakeFirst();
    const row = created ?? (await this.intentRow(intentId).executeTakeFirstOrThrow());
    return toIntent(row);
  }

  async retrieveIntent(intentId: string): Promise<ProviderIntent | undefined> {
    const row = await this.intentRow(intentId).executeTakeFirst();
    return row && toIntent(row);
  }

  async cancelIntent(request: CancelIntentRequest): Promise<CancelIntentResult> {
    const canceled = await this.db
      .updateTable('simulated_payment_intents')
      .set({ status: 'canceled', deliver_at: this.fromNow(this.redeliverAfterMs) })
      .where('intent_id', '=', request.intentId)
      .where('status', '=', 'awaiting-payment')
      .returningAll()
      .executeTakeFirst();
    if (canceled) {
      this.deliverSoon(() => this.deliverIntentOutcome(canceled));
      return { outcome: 'canceled' };
    }
    const row = await this.intentRow(request.intentId).executeTakeFirst();
    // Unknown (made on another database, or before its table existed): nothing of it can still succeed.
    if (!row || row.status === 'canceled') return { outcome: 'canceled' };
    return { outcome: 'not-cancelable', status: row.status };
  }

  async createRefund(request: CreateRefundRequest): Promise<ProviderRefund> {
    const providerRefundId = `re_sim_${shortId(request.idempotencyKey)}`;
    const created = await this.db
      .insertInto('simulated_refunds')
      .values({
        idempotency_key: request.idempotencyKey,
        provider_refund_id: providerRefundId,
        payment_id: request.paymentId,
        refund_id: request.refundId,
        deliver_at: this.fromNow(this.redeliverAfterMs),
      })
      .onConflict((conflict) => conflict.column('idempotency_key').doNothing())
      .returningAll()
      .executeTakeFirst();
    if (created) this.deliverSoon(() => this.deliverRefundOutcome(created));
    return { providerRefundId, status: 'succeeded' };
  }

  /** Every refund it makes succeeds at once; one asked after is found by our ids (a short table: see `retentionDays`). */
  async retrieveRefund(request: RetrieveRefundRequest): Promise<ProviderRefund | undefined> {
    const row = await this.db
      .selectFrom('simulated_refunds')
      .select('provider_refund_id')
      .where('payment_id', '=', request.paymentId)
      .where('refund_id', '=', request.refundId)
      .executeTakeFirst();
    return row && { providerRefundId: row.provider_refund_id, status: 'succeeded' };
  }

  /** Stops this process's polling, and waits for its deliveries under way; the others carry on. */
  async close(): Promise<void> {
    this.closed = true;
    clearTimeout(this.timer);
    while (this.running.size > 0) await Promise.all([...this.running]);
  }

  private intentRow(intentId: string) {
    return this.db.selectFrom('simulated_payment_intents').selectAll().where('intent_id', '=', intentId);
  }

  private fromNow(ms: number): RawBuilder<Date> {
    return sql<Date>`now() + make_interval(secs => ${ms / 1_000})`;
  }

  private schedulePoll(delayMs = this.pollIntervalMs): void {
    if (this.closed) return;
    // A full batch leaves more due: the next poll claims them without waiting.
    this.timer = setTimeout(() => this.track(this.poll().then((full) => this.schedulePoll(full ? 0 : this.pollIntervalMs))), delayMs);
    // Polling must not keep the process alive on shutdown.
    this.timer.unref();
  }

  /**
   * Pays the intents that are due and claims the outcomes still owed, then delivers them. Rows
   * are claimed under `SKIP LOCKED`, and a claim moves `deliver_at` past now: a row another
   * process claims at the same moment is skipped, or no longer due once its claim commits.
   * Whether it claimed a full batch of either.
   */
  private async poll(): Promise<boolean> {
    // The pool ends as the process stops: what is still owed is delivered by another process's poll, or the next start's.
    if (this.options.pool.ending) {
      this.closed = true;
      return false;
    }
    try {
      const intents = await this.db
        .updateTable('simulated_payment_intents')
        .set({
          status: sql`CASE status WHEN 'awaiting-payment' THEN 'succeeded' ELSE status END`,
          succeeded_at: sql<Date | null>`CASE status WHEN 'awaiting-payment' THEN now() ELSE succeeded_at END`,
          deliver_at: this.fromNow(this.redeliverAfterMs),
        })
        .where('intent_id', 'in', (eb) =>
          eb
            .selectFrom('simulated_payment_intents')
            .select('intent_id')
            .where((row) => row.or([row.and([row('status', '=', 'awaiting-payment'), row('succeed_at', '<=', sql<Date>`now()`)]), row('deliver_at', '<=', sql<Date>`now()`)]))
            .limit(pollBatch)
            .forUpdate()
            .skipLocked(),
        )
        .returningAll()
        .execute();
      const refunds = await this.db
        .updateTable('simulated_refunds')
        .set({ deliver_at: this.fromNow(this.redeliverAfterMs) })
        .where('idempotency_key', 'in', (eb) =>
          eb.selectFrom('simulated_refunds').select('idempotency_key').where('deliver_at', '<=', sql<Date>`now()`).limit(pollBatch).forUpdate().skipLocked(),
        )
        .returningAll()
        .execute();
      for (const row of intents) await this.deliverIntentOutcome(row);
      for (const row of refunds) await this.deliverRefundOutcome(row);
      await this.removeOldOutcomes();
      return intents.length === pollBatch || refunds.length === pollBatch;
    } catch (error) {
      if (!this.options.pool.ending) this.options.onError?.(error);
      return false;
    }
  }

  /** Outcomes delivered, past retention: an intent still awaiting payment, or an outcome still owed, stays. */
  private async removeOldOutcomes(): Promise<void> {
    if (Date.now() - this.cleanedAt < cleanupEveryMs) return;
    // Before the deletes: one that failed is tried again a minute later, not on every poll.
    this.cleanedAt = Date.now();
    const cutoff = sql<Date>`now() - make_interval(days => ${retentionDays})`;
    await this.db
      .deleteFrom('simulated_payment_intents')
      .where('deliver_at', 'is', null)
      .where('status', '!=', 'awaiting-payment')
      .where('created_at', '<', cutoff)
      .execute();
    await this.db.deleteFrom('simulated_refunds').where('deliver_at', 'is', null).where('created_at', '<', cutoff).execute();
  }

  private async deliverIntentOutcome(row: IntentRow): Promise<void> {
    const event = intentEvent(row);
    if (!event) return;
    await this.deliverOwed(event, () => this.db.updateTable('simulated_payment_intents').set({ deliver_at: null }).where('intent_id', '=', row.intent_id).execute());
  }

  private async deliverRefundOutcome(row: RefundRow): Promise<void> {
    const event: PaymentProviderEvent = {
      kind: 'refund-succeeded',
      eventId: `evt_sim_${shortId(`refund:${row.provider_refund_id}`)}`,
      paymentId: row.payment_id,
      refundId: row.refund_id,
    };
    await this.deliverOwed(event, () => this.db.updateTable('simulated_refunds').set({ deliver_at: null }).where('idempotency_key', '=', row.idempotency_key).execute());
  }

  /** A failure leaves the event owed, for a later poll to deliver again. */
  private async deliverOwed(event: PaymentProviderEvent, settle: () => Promise<unknown>): Promise<void> {
    try {
      await this.options.deliver(event);
      await settle();
    } catch (error) {
      this.options.onError?.(error);
    }
  }

  /** After the current call has answered, as a webhook would arrive. */
  private deliverSoon(delivery: () => Promise<void>): void {
    this.track(new Promise<void>((resolve) => setImmediate(resolve)).then(delivery));
  }

  private track(work: Promise<void>): void {
    this.running.add(work);
    void work.finally(() => this.running.delete(work));
  }
}

function toIntent(row: IntentRow): ProviderIntent {
  const amount = Number(row.amount);
  return {
    intentId: row.intent_id,
    clientSecret: `${row.intent_id}_secret_${shortId(`secret:${row.intent_id}`)}`,
    status: row.status,
    amount,
    amountReceived: row.status === 'succeeded' ? amount : 0,
    currency: row.currency,
    ...capturedAt(row),
  };
}

function capturedAt(row: IntentRow): { capturedAt?: string } {
  return row.status === 'succeeded' && row.succeeded_at ? { capturedAt: row.succeeded_at.toISOString() } : {};
}

/** The provider event of an intent's outcome; its id derives from the intent's, so a redelivery repeats it. */
function intentEvent(row: IntentRow): PaymentProviderEvent | undefined {
  const { intent_id: intentId, payment_id: paymentId } = row;
  switch (row.status) {
    case 'awaiting-payment':
      return undefined;
    case 'succeeded':
      return { kind: 'payment-succeeded', eventId: `evt_sim_${shortId(`succeeded:${intentId}`)}`, paymentId, intentId, amount: Number(row.amount), currency: row.currency, ...capturedAt(row) };
    case 'canceled':
      return { kind: 'payment-canceled', eventId: `evt_sim_${shortId(`canceled:${intentId}`)}`, paymentId, intentId };
    default: {
      const _exhaustive: never = row.status;
      return _exhaustive;
    }
  }
}
