import { isCaptured, paymentStreamId } from '../../domain/payment/payment.decider.js';
import { DomainError } from '../../domain/shared/domain-error.js';
import { aggregates } from '../aggregates/aggregates.js';
import type { CommandSide } from '../command-handlers.js';
import { occurredAt } from '../metadata.js';
import type { EventStore, RecordedEvent } from '../ports/event-store.js';
import { refundOutcome } from '../payments/provider-events.js';
import { ProviderRefusedError, quickLook, type PaymentGateway } from '../ports/payment-gateway.js';
import { causeOf, commandCausedBy, runSweepLoop, type Cause, type SweepSummary } from './sweeping-process.js';

/** The event types this process follows; everything else is filtered out by the store. */
export const refundReconciliationEventTypes = ['RefundRequested', 'RefundSucceeded', 'RefundFailed'];

/** The `system:<name>` actor of what it records, and the prefix of its command ids. */
export const refundReconciliationName = 'refund-reconciliation';

/** The longest wait between two looks at one refund: a refund pending for days is still asked after a few times a day. */
const longestWaitMs = 6 * 3_600_000;

/**
 * A refund requested and not settled yet, as far as the log read so far says. `waitMs` is the wait
 * before `nextLookAt`, which the next look doubles.
 */
type PendingRefund = { paymentId: string; requestedAt: number; cause: Cause; nextLookAt: number; waitMs: number };

/**
 * What a refund's step came to, short of failing. `moot`: settled in the log already, the provider
 * not asked; `settled`: the provider's outcome recorded; `waiting`: still pending there, or not made yet.
 */
type Step = 'moot' | 'settled' | 'waiting';

export type RefundReconciliationOptions = {
  readonly eventStore: EventStore;
  readonly side: CommandSide;
  readonly gateway: PaymentGateway;
  /**
   * How long a refund may stay pending before the provider is asked for it: until then its outcome
   * is taken to be on its way (as a webhook), or its create still being retried by the payment process.
   */
  readonly graceMs: number;
  /** Told of each look that settled nothing and will be made again (`retried`), or of reading the log failing. */
  readonly onError?: (error: unknown, what: string, retried: boolean) => void;
  /** Told after each round of `run` whether it succeeded (`runSweepLoop`). */
  readonly onAttempt?: (succeeded: boolean) => void;
};

/**
 * Settles the refunds whose outcome never came. A refund the provider answers `pending` is settled
 * only by its later webhook (Stripe's `refund.updated`, `charge.refunded`); lost (the endpoint down
 * past Stripe's three days of retries, a webhook secret rotated wrongly), the refund stayed pending
 * in our log for ever, its amount counted as neither refunded nor refundable. So, once a refund has
 * been pending for the grace period, the provider is asked how it stands, and its outcome is
 * recorded as the webhook would have; still pending, or not made yet, it is asked again later,
 * each wait twice the last, at most 6 h.
 *
 * It follows the log from the start, so after a restart it knows again every refund still pending,
 * and only those: a refund settled in the log leaves the set. It only ever looks at the provider,
 * never makes a refund (the payment process does). Each outcome it records has a command id derived
 * from the refund's request, so two instances, or a restart, record it once.
 */
export class RefundReconciliation {
  /** By our refund id. */
  private readonly refunds = new Map<string, PendingRefund>();

  /**
   * The refunds still pending whose looks went unanswered in the last sweep that looked, when that
   * sweep got no answer at all; empty otherwise. A failed look puts its refund off for twice its
   * wait; were the sweeps in between, which look at nothing, to count as fine, the stall an
   * operator watches would read about 0 through an outage. The provider's silence, not one refund
   * stuck (that is its error count); and only while a refund it kept from us is still pending: one
   * settled meanwhile (its webhook came) leaves nothing to be stalled on.
   */
  private silentOn = new Set<string>();

  constructor(private readonly options: RefundReconciliationOptions) {}

  /** Keeps the pending refunds in step with one event. */
  observe(event: RecordedEvent): void {
    switch (event.type) {
      case 'RefundRequested': {
        const requested = aggregates.payment.codec.decode(event);
        if (requested.type !== 'RefundRequested') return;
        const { paymentId, refundId } = requested.data;
        const requestedAt = occurredAt(event).getTime();
        const waitMs = this.options.graceMs;
        this.refunds.set(refundId, { paymentId, requestedAt, cause: causeOf(event), nextLookAt: requestedAt + waitMs, waitMs });
        return;
      }
      case 'RefundSucceeded':
      case 'RefundFailed': {
        const settled = aggregates.payment.codec.decode(event);
        if (settled.type === 'RefundSucceeded' || settled.type === 'RefundFailed') this.forget(settled.data.refundId);
        return;
      }
    }
  }

  /** How many refunds are pending. */
  get pending(): number {
    return this.refunds.size;
  }

  /**
   * Looks at every refund that is due. A look is answered when the provider replied, whatever it
   * said (an outcome, still pending, not made yet, or a refusal: its final word on this request),
   * and counts `progressed`; one that failed otherwise (the provider unreachable or erring, or the
   * log as the look read or recorded) counts `failed`. Either way a refund left pending is looked at again later, a refusal or a failure
   * reported: it never stops the sweep. A sweep that looks at nothing counts 1 `failed` while the
   * last sweep that looked got no answer and a refund it looked at is still pending (`silentOn`).
   */
  async sweep(signal?: AbortSignal): Promise<SweepSummary> {
    const now = this.options.side.clock.now().getTime();
    let progressed = 0;
    let failed = 0;
    let answered = 0;
    const unanswered: string[] = [];
    for (const [refundId, refund] of this.refunds) {
      // Stopping: each look may take the provider's whole timeout, and a shutdown waits for the
      // sweep; what is left is due at the next one, here or in another instance.
      if (signal?.aborted) break;
      if (refund.nextLookAt > now) continue;
      try {
        const step = await this.reconcile(refundId, refund);
        if (step === 'waiting') this.lookAgainLater(refundId, refund, now);
        if (step !== 'moot') answered++;
        progressed++;
      } catch (error) {
        this.options.onError?.(error, `look at refund ${refundId} of payment ${refund.paymentId} at the provider`, true);
        this.lookAgainLater(refundId, refund, now);
        if (error instanceof ProviderRefusedError) {
          answered++;
          progressed++;
        } else {
          failed++;
          unanswered.push(refundId);
        }
      }
    }
    if (answered + failed > 0) this.silentOn = new Set(answered === 0 ? unanswered : []);
    else if (this.silentOn.size > 0) failed++;
    return { progressed, failed };
  }

  /** Until `signal` aborts, every `sweepEveryMs`: reads what the log gained, then looks at what is due (`runSweepLoop`). */
  run(signal: AbortSignal, sweepEveryMs: number): Promise<void> {
    const { eventStore, onError, onAttempt } = this.options;
    return runSweepLoop(this, { eventStore, eventTypes: refundReconciliationEventTypes, sweepEveryMs, onError: (error) => onError?.(error, 'read the log', true), onAttempt }, signal);
  }

  /**
   * Asks the provider about a refund still pending in the payment as it is now (a webhook may have
   * settled it since the log was read) and records its outcome.
   */
  private async reconcile(refundId: string, refund: PendingRefund): Promise<Step> {
    const { side, gateway } = this.options;
    const { paymentId } = refund;
    const { state } = await side.handlers.payment.read(paymentStreamId(paymentId));
    const current = isCaptured(state) ? state.refunds.find((r) => r.refundId === refundId) : undefined;
    if (!isCaptured(state) || current?.status !== 'pending') return this.settled(refundId, 'moot');
    const found = await gateway.retrieveRefund({ intentId: state.payment.providerIntentId, paymentId, refundId }, quickLook);
    if (!found) {
      const requested = new Date(refund.requestedAt).toISOString();
      const what = `find refund ${refundId} of payment ${paymentId} (requested ${requested}) at the provider: not made yet, or its create still being retried`;
      this.options.onError?.(new Error(`The provider has no refund ${refundId} of payment ${paymentId}`), what, true);
      return 'waiting';
    }
    const outcome = refundOutcome(paymentId, refundId, found);
    if (!outcome) return 'waiting';
    try {
      await side.handlers.payment.handle(paymentStreamId(paymentId), outcome, commandCausedBy(refundReconciliationName, refund.cause, `refund-${found.status}`));
    } catch (error) {
      // Settled otherwise a moment ago (a webhook failing it as this looked): nothing left to do.
      if (!(error instanceof DomainError)) throw error;
    }
    return this.settled(refundId, 'settled');
  }

  private settled(refundId: string, step: 'moot' | 'settled'): Step {
    this.forget(refundId);
    return step;
  }

  /** A refund no longer pending: nothing to look at, nor to be stalled on. */
  private forget(refundId: string): void {
    this.refunds.delete(refundId);
    this.silentOn.delete(refundId);
  }

  private lookAgainLater(refundId: string, refund: PendingRefund, now: number): void {
    const waitMs = Math.min(refund.waitMs * 2, longestWaitMs);
    this.refunds.set(refundId, { ...refund, nextLookAt: now + waitMs, waitMs });
  }
}
