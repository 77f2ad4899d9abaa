import { bookingStreamId, isRecorded, type BookingState, type RecordedBooking } from '../../domain/booking/booking.decider.js';
import { listingCalendarStreamId } from '../../domain/listing-calendar/listing-calendar.decider.js';
import { isCaptured, paymentStreamId, refundable, type CapturedPayment, type PaymentState } from '../../domain/payment/payment.decider.js';
import type { Actor } from '../../domain/shared/actor.js';
import { DomainError } from '../../domain/shared/domain-error.js';
import { percentOf } from '../../domain/shared/money.js';
import { aggregates } from '../aggregates/aggregates.js';
import type { CommandSide } from '../command-handlers.js';
import type { CommandOptions } from '../command-handling/handle-command.js';
import { deterministicUuid } from '../ids.js';
import { occurredAt } from '../metadata.js';
import { bookedOnCalendar } from '../bookings/booked-dates.js';
import { isLive, paymentAttempts } from '../payments/payment-attempts.js';
import { intentOutcomeLearned, recordProviderEvent, refundOutcome } from '../payments/provider-events.js';
import type { EventStore, RecordedEvent } from '../ports/event-store.js';
import { comparePositions, type Position } from '../ports/position.js';
import { sleep } from '../sleep.js';
import { causeOf, commandCausedBy } from './sweeping-process.js';
import { idempotencyKeys, ProviderRefusedError, type PaymentGateway, type ProviderRefund } from '../ports/payment-gateway.js';
import type { ProcessCheckpoints } from '../ports/process-checkpoints.js';

/** The event types this process follows; everything else is filtered out by the store. */
export const paymentProcessEventTypes = ['PaymentInitiated', 'PaymentSucceeded', 'PaymentMismatch', 'PaymentFailed', 'RefundRequested', 'BookingCancelled', 'BookingExpired'];

/** Its checkpoint row, and the `system:<name>` actor of what it sends. */
export const paymentProcessName = 'payment-process';

/**
 * It cancels bookings whose dates were lost before the payment came in: that is never the
 * consumer's fault, so it acts with the admin's capacity (a full refund), under its own id.
 */
const processActor: Actor = { id: `system:${paymentProcessName}`, roles: ['ADMIN'] };

export type PaymentProcessOptions = {
  readonly eventStore: EventStore;
  readonly side: CommandSide;
  readonly gateway: PaymentGateway;
  readonly checkpoints: ProcessCheckpoints;
  /** First wait before an event whose handling failed (provider down, database gone) is tried again; doubles up to 30 s. */
  readonly retryDelayMs?: number;
  /** Told of each failure: `retried` false for a step a rule or the provider refused, which is dropped. */
  readonly onError?: (error: unknown, what: string, retried: boolean) => void;
  /**
   * Told whether each attempt at what every later event waits on succeeded: handling the event at
   * the head (its checkpoint saved), or following the log. An operator's stall signal is how long
   * attempts have failed without one succeeding.
   */
  readonly onAttempt?: (succeeded: boolean) => void;
};

type SucceededPayment = Extract<PaymentState, { status: 'succeeded' }>;

/** A booking as the command side read it: its state, and its last event's revision and position. */
type BookingRead = { readonly state: BookingState; readonly version: number; readonly position: Position };

/**
 * Stripe's clock is not ours (NTP keeps the two well within a second), and Stripe stamps whole
 * seconds, rounded down: a capture stamped this close to a cancellation cannot be put before or
 * after it by the clocks. There the log's order decides, as it did before capture times were
 * kept: the race that remains is one of seconds, not of however late the webhook is.
 */
const tooCloseToCallMs = 2_000;

/** The longest wait before a retry. */
const longestRetryWaitMs = 30_000;

/**
 * The integration edge between payments and bookings: payment events become booking commands,
 * booking events become provider calls and payment commands.
 *
 * - PaymentSucceeded → MarkBookingPaid, BookDates, ConfirmBooking; for a booking that is meanwhile
 *   cancelled, expired or paid otherwise: a full refund.
 * - PaymentMismatch (another amount or currency captured) → a full refund of what was received.
 * - BookingCancelled → the policy's refund (RequestRefund), and any live intent canceled.
 * - BookingExpired → any live intent canceled.
 * - PaymentInitiated, PaymentFailed for a booking cancelled or expired → its live intents canceled.
 * - RefundRequested → the provider's refund, then RecordRefundSucceeded/Failed.
 *
 * It follows the log from its own checkpoint and saves it after each event. Every step is
 * idempotent on its own (the deciders ignore what is already true, command ids derive from the
 * causing event, provider calls carry keys derived from our ids), so the replay after a crash at
 * any point finishes the work without doing any of it twice.
 */
export class PaymentProcess {
  private readonly retryDelayMs: number;

  constructor(private readonly options: PaymentProcessOptions) {
    this.retryDelayMs = options.retryDelayMs ?? 200;
  }

  /**
   * Follows the log from the checkpoint until `signal` aborts. When following fails (the
   * subscription's read, loading or saving the checkpoint: the database gone for a moment; or the
   * subscription ending unasked), it subscribes again from the checkpoint after a wait: stopping
   * for good would leave every later payment unconfirmed and every refund unsent until someone
   * restarted the process.
   */
  async run(signal: AbortSignal): Promise<void> {
    for (let failures = 0; !signal.aborted; ) {
      let progressed = false;
      try {
        await this.follow(signal, () => (progressed = true));
        return;
      } catch (error) {
        if (signal.aborted) return;
        this.options.onError?.(error, 'follow the log; subscribing again from the checkpoint', true);
        this.options.onAttempt?.(false);
        failures = progressed ? 1 : failures + 1;
        await sleep(this.backoffMs(failures - 1), signal);
      }
    }
  }

  /** The wait before retry `attempt` (from 0): doubling from `retryDelayMs`, at most 30 s. */
  private backoffMs(attempt: number): number {
    return Math.min(this.retryDelayMs * 2 ** attempt, longestRetryWaitMs);
  }

  private async follow(signal: AbortSignal, progressed: () => void): Promise<void> {
    const { eventStore, checkpoints, onAttempt } = this.options;
    const after = await checkpoints.load(paymentProcessName);
    const subscription = eventStore.subscribeToAll({ ...(after ? { after } : {}), filter: { eventTypes: paymentProcessEventTypes }, signal });
    // A quiet log brings no event to show that following works again after a failure; a
    // subscription open this long without failing does (PostgreSQL's reads the log every second).
    const quiet = setTimeout(() => onAttempt?.(true), longestRetryWaitMs);
    try {
      for await (const event of subscription) {
        clearTimeout(quiet);
        if (!(await this.handleUntilDone(event, signal))) return;
        await checkpoints.save(paymentProcessName, event.position);
        progressed();
        onAttempt?.(true);
      }
    } finally {
      clearTimeout(quiet);
    }
    // The port ends a subscription only on its signal; a store that ends it otherwise (a server
    // closing the stream) must not pass for a stop, which nobody would hear of.
    if (!signal.aborted) throw new Error('The subscription to the log ended although the process was not stopped');
  }

  /** Handles one event; idempotent, so handing it the same event twice changes nothing. */
  async handle(event: RecordedEvent): Promise<void> {
    switch (event.type) {
      case 'PaymentInitiated':
        return this.paymentInitiated(event);
      case 'PaymentSucceeded':
        return this.paymentSucceeded(event);
      case 'PaymentMismatch':
        return this.paymentMismatch(event);
      case 'PaymentFailed':
        return this.paymentFailed(event);
      case 'RefundRequested':
        return this.refundRequested(event);
      case 'BookingCancelled':
        return this.bookingCancelled(event);
      case 'BookingExpired':
        return this.bookingExpired(event);
    }
  }

  /**
   * A rule refusing a step means the world moved on (the step is moot): logged, not retried.
   * Anything else is retried with backoff, holding back later events so that their order holds.
   */
  private async handleUntilDone(event: RecordedEvent, signal: AbortSignal): Promise<boolean> {
    for (let attempt = 0; !signal.aborted; attempt++) {
      try {
        await this.handle(event);
        return true;
      } catch (error) {
        // A refusal would come again on every retry and hold up every later event.
        const refused = error instanceof DomainError || error instanceof ProviderRefusedError;
        this.options.onError?.(error, `handle ${event.type} ${event.id}`, !refused);
        if (refused) return true;
        this.options.onAttempt?.(false);
        await sleep(this.backoffMs(attempt), signal);
      }
    }
    return false;
  }

  private async paymentSucceeded(event: RecordedEvent): Promise<void> {
    const succeeded = aggregates.payment.codec.decode(event);
    if (succeeded.type !== 'PaymentSucceeded') return;
    const { paymentId } = succeeded.data;
    const payment = await this.payment(paymentId);
    if (payment?.status !== 'succeeded') return;
    const read = await this.readBooking(payment);
    const booking = read.state;
    if (booking.status === 'requested' || (booking.status === 'paid' && booking.payment.paymentId === paymentId)) {
      return this.confirm(booking, payment, event);
    }
    // Paid with this payment and cancelled since: the cancellation's own refund applies.
    if (paymentOf(booking)?.paymentId === paymentId) return;
    await this.refundUnapplied(payment, event, read);
  }

  /** Money that does not pay the booking's price pays for nothing: all of it goes back; the consumer may pay again. */
  private async paymentMismatch(event: RecordedEvent): Promise<void> {
    const mismatch = aggregates.payment.codec.decode(event);
    if (mismatch.type !== 'PaymentMismatch') return;
    const payment = await this.payment(mismatch.data.paymentId);
    if (payment?.status === 'mismatched') await this.requestRefund(payment, refundable(payment), event);
  }

  private readBooking(payment: SucceededPayment) {
    return this.options.side.handlers.booking.read(bookingStreamId(payment.payment.bookingId));
  }

  private async confirm(booking: RecordedBooking, payment: SucceededPayment, cause: RecordedEvent): Promise<void> {
    const { side } = this.options;
    const { bookingId, listingId } = booking.booking;
    const { paymentId, amount, currency } = payment.payment;
    try {
      await side.handlers.booking.handle(bookingStreamId(bookingId), { type: 'MarkBookingPaid', data: { bookingId, paymentId, amount, currency } }, step(cause, 'paid'));
    } catch (error) {
      // Expired or cancelled a moment ago, or paid by another payment: this money goes back.
      if (!(error instanceof DomainError)) throw error;
      return this.refundUnapplied(payment, cause, await this.readBooking(payment));
    }
    try {
      await side.handlers.listingCalendar.handle(listingCalendarStreamId(listingId), { type: 'BookDates', data: { listingId, bookingId } }, step(cause, 'book-dates'));
    } catch (error) {
      if (!(error instanceof DomainError) || error.code !== 'not-held') throw error;
      // Handled again (a replay) after the stay: paid with this payment and its dates booked
      // before, which the calendar's state dropped once the stay was over, its log did not. It is
      // confirmed, as the first handling would have, not cancelled and refunded.
      if (booking.status === 'paid' && (await bookedOnCalendar(this.options.eventStore, listingId, bookingId))) {
        await side.handlers.booking.handle(bookingStreamId(bookingId), { type: 'ConfirmBooking', data: { bookingId } }, step(cause, 'confirm'));
        return;
      }
      // The lapsed hold went to someone else before the money came: the booking cannot stand.
      const now = side.clock.now().toISOString();
      const reason = 'The dates were taken by another booking before the payment arrived';
      const cancel = { type: 'CancelBooking' as const, data: { bookingId, actor: processActor, reason, now } };
      // Cancelled by its consumer or owner meanwhile: theirs stands, and its refund follows it.
      await side.handlers.booking.handle(bookingStreamId(bookingId), cancel, step(cause, 'cancel')).catch((cancelError: unknown) => {
        if (!(cancelError instanceof DomainError) || cancelError.code !== 'already-cancelled') throw cancelError;
      });
      return;
    }
    await side.handlers.booking.handle(bookingStreamId(bookingId), { type: 'ConfirmBooking', data: { bookingId } }, step(cause, 'confirm'));
  }

  private async bookingCancelled(event: RecordedEvent): Promise<void> {
    const cancelled = aggregates.booking.codec.decode(event);
    if (cancelled.type !== 'BookingCancelled') return;
    const { bookingId, refundAmount } = cancelled.data;
    const { state: booking } = await this.options.side.handlers.booking.read(bookingStreamId(bookingId));
    const paid = booking.status === 'cancelled' ? booking.payment : null;
    if (paid && refundAmount > 0) {
      const payment = await this.payment(paid.paymentId);
      if (payment?.status === 'succeeded') await this.requestRefund(payment, refundAmount, event);
    }
    await this.cancelLiveIntents(bookingId, event);
  }

  /**
   * A payment started while its booking was being cancelled or expiring: the booking's event came
   * first and found no payment to cancel, so the intent created since is cancelled now, before
   * anyone pays into a booking that is gone.
   */
  private async paymentInitiated(event: RecordedEvent): Promise<void> {
    const initiated = aggregates.payment.codec.decode(event);
    if (initiated.type !== 'PaymentInitiated') return;
    await this.cancelLiveIntentsIfOver(initiated.data.bookingId, event);
  }

  /**
   * A debit still `processing` when its booking ended could not be canceled then (Stripe refuses),
   * and nothing else would try again. Its failure makes the intent payable again (another card),
   * so it is canceled now: else the money would be captured, then refunded, the fee lost.
   */
  private async paymentFailed(event: RecordedEvent): Promise<void> {
    const failed = aggregates.payment.codec.decode(event);
    if (failed.type !== 'PaymentFailed') return;
    const payment = await this.payment(failed.data.paymentId);
    // Paid or canceled since: nothing of it is left to cancel.
    if (payment?.status === 'failed') await this.cancelLiveIntentsIfOver(payment.payment.bookingId, event);
  }

  private async cancelLiveIntentsIfOver(bookingId: string, cause: RecordedEvent): Promise<void> {
    const { state: booking } = await this.options.side.handlers.booking.read(bookingStreamId(bookingId));
    if (booking.status === 'cancelled' || booking.status === 'expired') await this.cancelLiveIntents(bookingId, cause);
  }

  private async bookingExpired(event: RecordedEvent): Promise<void> {
    const expired = aggregates.booking.codec.decode(event);
    if (expired.type !== 'BookingExpired') return;
    await this.cancelLiveIntents(expired.data.bookingId, event);
  }

  /** Runs a requested refund at the provider; its key derives from the refund id, so a repeat is the same refund. */
  private async refundRequested(event: RecordedEvent): Promise<void> {
    const requested = aggregates.payment.codec.decode(event);
    if (requested.type !== 'RefundRequested') return;
    const { paymentId, refundId } = requested.data;
    const payment = await this.payment(paymentId);
    const refund = payment && isCaptured(payment) ? payment.refunds.find((r) => r.refundId === refundId) : undefined;
    if (!payment || !isCaptured(payment) || refund?.status !== 'pending') return;
    const result = await this.options.gateway
      .createRefund({
        intentId: payment.payment.providerIntentId,
        paymentId,
        refundId,
        amount: refund.amount,
        idempotencyKey: idempotencyKeys.createRefund(paymentId, refundId),
      })
      .catch((error: unknown): ProviderRefund => {
        // Refused for good: recorded as failed, so the amount counts as refundable again and someone sees it.
        if (!(error instanceof ProviderRefusedError)) throw error;
        return { providerRefundId: `refused:${refundId}`, status: 'failed', failureReason: `${error.code}: ${error.message}` };
      });
    const command = refundOutcome(paymentId, refundId, result);
    if (command) await this.options.side.handlers.payment.handle(paymentStreamId(paymentId), command, step(event, 'refund-outcome'));
  }

  /**
   * Money that paid for nothing goes back in full, but for one case: the payment had succeeded
   * (`cause`) before the booking was cancelled unpaid, i.e. the cancellation came while this
   * process had yet to mark the booking paid. The cancellation policy then stands as if it had
   * been marked paid: paying and cancelling at once must not be a way around it.
   */
  private async refundUnapplied(payment: SucceededPayment, cause: RecordedEvent, read: BookingRead): Promise<void> {
    const booking = read.state;
    const cancelledAfterPaying = booking.status === 'cancelled' && booking.payment === null && (await this.paidBeforeCancelling(cause, booking.booking.bookingId, read));
    const percent = cancelledAfterPaying ? booking.refundPercent : 100;
    await this.requestRefund(payment, percentOf(payment.payment.amount, percent), cause);
  }

  /**
   * Whether the success `cause` reports took the money before the booking (`read`, cancelled) was
   * cancelled. By the provider's capture time against the cancellation's: when the news reached
   * our log says nothing of when the consumer paid (a webhook may be late, and a success learned
   * from Stripe on cancelling the intent is recorded after the cancellation by nature). Without a
   * capture time (a success stored before it was kept, a provider that did not say), or too close
   * to call, by the log's order. (A cancellation is a booking's last event, so the booking's
   * revision and position as read are the cancellation's.)
   */
  private async paidBeforeCancelling(cause: RecordedEvent, bookingId: string, read: BookingRead): Promise<boolean> {
    const recordedFirst = comparePositions(cause.position, read.position) < 0;
    const succeeded = aggregates.payment.codec.decode(cause);
    const capturedAt = succeeded.type === 'PaymentSucceeded' ? succeeded.data.capturedAt : undefined;
    const cancelledAt = capturedAt === undefined ? undefined : await this.timeOf(bookingStreamId(bookingId), read.version, 'BookingCancelled');
    if (capturedAt === undefined || cancelledAt === undefined) return recordedFirst;
    const lead = cancelledAt.getTime() - Date.parse(capturedAt);
    return Math.abs(lead) <= tooCloseToCallMs ? recordedFirst : lead > 0;
  }

  /**
   * When the event at `revision` of `streamId` happened, if it is of `type` (`occurredAt`: the
   * command side's clock, the one a cancellation's policy was reckoned by).
   */
  private async timeOf(streamId: string, revision: number, type: string): Promise<Date | undefined> {
    const read = await this.options.eventStore.readStream(streamId, { from: revision, maxCount: 1 });
    if (read.status === 'no_stream') return undefined;
    for await (const event of read.events) return event.type === type ? occurredAt(event) : undefined;
    return undefined;
  }

  /**
   * The refund's id derives from the event that caused it: on a replay it is found and nothing
   * is asked again. The amount never exceeds what is left (an owner may have refunded part
   * already), as of the state the append is decided on: an owner's refund landing between our
   * read and our append is re-decided against, not refused over.
   */
  private async requestRefund(payment: CapturedPayment, amount: number, cause: RecordedEvent): Promise<void> {
    const { paymentId } = payment.payment;
    const refundId = deterministicUuid('refund', cause.id);
    if (payment.refunds.some((refund) => refund.refundId === refundId)) return;
    if (Math.min(amount, refundable(payment)) <= 0) return;
    await this.options.side.handlers.payment.handle(
      paymentStreamId(paymentId),
      (current) => {
        const requested = isCaptured(current) ? current.refunds.find((refund) => refund.refundId === refundId) : undefined;
        const capped = isCaptured(current) ? Math.min(amount, refundable(current)) : amount;
        return { type: 'RequestRefund', data: { paymentId, refundId, amount: requested?.amount ?? capped } };
      },
      step(cause, `refund:${paymentId}`),
    );
  }

  /**
   * Nobody should pay for a booking that is over. An intent that cannot be canceled any more
   * because it succeeded meanwhile is recorded as paid, as its webhook would (which may never
   * come: lost, misconfigured), so that the payment is refunded. One still processing is left as
   * it is: its failure (PaymentFailed) brings it back here, its success is refunded.
   */
  private async cancelLiveIntents(bookingId: string, cause: RecordedEvent): Promise<void> {
    const { side, gateway } = this.options;
    for (const { paymentId, state } of await paymentAttempts(side, bookingId)) {
      if (!isLive(state)) continue;
      const intentId = state.payment.providerIntentId;
      const result = await gateway.cancelIntent({ intentId });
      if (result.outcome === 'not-cancelable' && result.status === 'succeeded') {
        const learned = intentOutcomeLearned(paymentId, intentId, await gateway.retrieveIntent(intentId));
        if (learned) await recordProviderEvent({ side, eventStore: this.options.eventStore }, learned, step(cause, `learned:${paymentId}`).context);
      }
      if (result.outcome !== 'canceled') continue;
      await side.handlers.payment.handle(
        paymentStreamId(paymentId),
        { type: 'RecordPaymentCanceled', data: { paymentId, providerEventId: `gateway:canceled:${intentId}` } },
        step(cause, `cancel:${paymentId}`),
      );
    }
  }

  private async payment(paymentId: string): Promise<PaymentState | undefined> {
    const { state } = await this.options.side.handlers.payment.read(paymentStreamId(paymentId));
    return state.status === 'none' ? undefined : state;
  }
}

function paymentOf(booking: BookingState): { paymentId: string } | null {
  return !isRecorded(booking) || booking.status === 'requested' || booking.status === 'expired' ? null : booking.payment;
}

/** Command options for one step caused by `cause`: the same step of the same event always has the same id. */
function step(cause: RecordedEvent, name: string): CommandOptions {
  return commandCausedBy(paymentProcessName, causeOf(cause), name, processActor.roles);
}
