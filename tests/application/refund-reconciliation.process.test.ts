import { beforeEach, describe, expect, it } from 'vitest';
import type { CommandSide } from '../../src/application/command-handlers.js';
import {
  quickLook,
  ProviderRefusedError,
  ProviderUnavailableError,
  type PaymentGateway,
  type ProviderRefund,
  type QuickLook,
  type RetrieveRefundRequest,
} from '../../src/application/ports/payment-gateway.js';
import { RefundReconciliation } from '../../src/application/process-managers/refund-reconciliation.process.js';
import { MemoryEventStore } from '../../src/infrastructure/memory-event-store/memory-event-store.js';
import { admin, as, createTestSide, eventTypes, fakeClock, followAndSweep, streamEvents } from '../support/command-side.js';

const graceMs = 15 * 60_000;
const sixHours = 6 * 3_600_000;

const notAsked = () => Promise.reject(new Error('the reconciliation only ever looks'));

/** The provider as the sweep sees it: each refund as the test sets it, and every look it was asked for. */
class ProviderStub implements PaymentGateway {
  readonly name = 'stub';
  readonly refunds = new Map<string, ProviderRefund>();
  readonly looks: Array<{ readonly request: RetrieveRefundRequest; readonly quick: QuickLook | undefined }> = [];
  /** Refund ids the provider fails to answer for (an outage, say). */
  readonly failing = new Set<string>();
  /** Refund ids the provider refuses to look up (a 4xx: its final word), while it answers the others. */
  readonly refusing = new Set<string>();
  readonly createIntent = notAsked;
  readonly retrieveIntent = notAsked;
  readonly cancelIntent = notAsked;
  readonly createRefund = notAsked;

  async retrieveRefund(request: RetrieveRefundRequest, quick?: QuickLook): Promise<ProviderRefund | undefined> {
    this.looks.push({ request, quick });
    if (this.failing.has(request.refundId)) throw new ProviderUnavailableError('Stripe: api_error (HTTP 500)', { cause: new Error('injected') });
    if (this.refusing.has(request.refundId)) throw new ProviderRefusedError('resource_missing', 'No such payment_intent');
    return this.refunds.get(request.refundId);
  }

  looksAt(refundId: string): number {
    return this.looks.filter((look) => look.request.refundId === refundId).length;
  }
}

/** Attempts as runs of the same outcome in a row: hundreds of rounds read at a glance. */
function runsOf(attempts: readonly boolean[]): Array<{ succeeded: boolean; rounds: number }> {
  const runs: Array<{ succeeded: boolean; rounds: number }> = [];
  for (const succeeded of attempts) {
    const last = runs.at(-1);
    if (last?.succeeded === succeeded) last.rounds += 1;
    else runs.push({ succeeded, rounds: 1 });
  }
  return runs;
}

describe('refund reconciliation (a refund the provider answered `pending`, its webhook never come)', () => {
  let store: MemoryEventStore;
  let clock: ReturnType<typeof fakeClock>;
  let side: CommandSide;
  let provider: ProviderStub;

  beforeEach(() => {
    store = new MemoryEventStore();
    clock = fakeClock('2031-03-01T10:00:00Z');
    side = createTestSide(store, clock);
    provider = new ProviderStub();
  });

  /** A payment of 240.00 EUR taken with intent `pi_<paymentId>`, and a refund of it that the payment process left pending. */
  async function givenPendingRefund(paymentId = 'pay-1', refundId = `ref-of-${paymentId}`): Promise<{ paymentId: string; refundId: string; stream: string }> {
    const stream = `payment-${paymentId}`;
    const intentId = `pi_${paymentId}`;
    await side.handlers.payment.handle(stream, { type: 'InitiatePayment', data: { paymentId, bookingId: `booking-of-${paymentId}`, providerIntentId: intentId, amount: 24_000, currency: 'EUR' } }, as(admin));
    await side.handlers.payment.handle(stream, { type: 'RecordPaymentSucceeded', data: { paymentId, providerEventId: `evt_paid_${paymentId}`, amount: 24_000, currency: 'EUR' } }, as(admin));
    await side.handlers.payment.handle(stream, { type: 'RequestRefund', data: { paymentId, refundId, amount: 12_000 } }, as(admin));
    return { paymentId, refundId, stream };
  }

  /**
   * A process started now, on `processSide`: each turn reads what the log gained since the last
   * one (from the start, the first time), then sweeps, as `run` does.
   */
  /** The process on the test's store and provider; `onAttempt` hears each round of `run`. */
  function startProcess(processSide: CommandSide = side, onAttempt?: (succeeded: boolean) => void) {
    const errors: Array<{ what: string; retried: boolean }> = [];
    const process = new RefundReconciliation({
      eventStore: store,
      side: processSide,
      gateway: provider,
      graceMs,
      onError: (_error, what, retried) => errors.push({ what, retried }),
      ...(onAttempt ? { onAttempt } : {}),
    });
    const turn = followAndSweep(store, process);
    return { process, turn, errors };
  }

  it('a refund still pending past the grace period: the provider is asked, with a quick look, and the success it reports is recorded', async () => {
    const { paymentId, refundId, stream } = await givenPendingRefund();
    provider.refunds.set(refundId, { providerRefundId: 're_1', status: 'succeeded' });
    const { turn } = startProcess();

    clock.advance(graceMs);
    expect(await turn()).toEqual({ progressed: 1, failed: 0 });

    expect(provider.looks).toEqual([{ request: { intentId: `pi_${paymentId}`, paymentId, refundId }, quick: quickLook }]);
    expect(await eventTypes(store, stream)).toEqual(['PaymentInitiated', 'PaymentSucceeded', 'RefundRequested', 'RefundSucceeded']);
    const [, , , succeeded] = await streamEvents(store, stream);
    expect(succeeded).toMatchObject({ data: { paymentId, refundId, providerEventId: 'gateway:refund:re_1' }, metadata: { actorId: 'system:refund-reconciliation' } });
    expect((await side.handlers.payment.read(stream)).state).toMatchObject({ refunds: [{ refundId, status: 'succeeded' }] });
  });

  it('before the grace period is over the provider is not asked: the webhook may still come', async () => {
    const { refundId, stream } = await givenPendingRefund();
    provider.refunds.set(refundId, { providerRefundId: 're_1', status: 'succeeded' });
    const { process, turn } = startProcess();

    clock.advance(graceMs - 1);
    expect(await turn()).toEqual({ progressed: 0, failed: 0 });

    expect(provider.looks).toEqual([]);
    expect(process.pending).toBe(1);
    expect(await eventTypes(store, stream)).toEqual(['PaymentInitiated', 'PaymentSucceeded', 'RefundRequested']);
  });

  it('a refund that failed at the provider is recorded failed, with the provider\'s reason: its amount counts as refundable again', async () => {
    const { refundId, stream } = await givenPendingRefund();
    provider.refunds.set(refundId, { providerRefundId: 're_1', status: 'failed', failureReason: 'expired_or_canceled_card' });
    const { process, turn } = startProcess();

    clock.advance(graceMs);
    expect(await turn()).toEqual({ progressed: 1, failed: 0 });

    const [, , , failed] = await streamEvents(store, stream);
    expect(failed).toMatchObject({ type: 'RefundFailed', data: { refundId, providerEventId: 'gateway:refund:re_1', reason: 'expired_or_canceled_card' } });
    expect((await side.handlers.payment.read(stream)).state).toMatchObject({ refunds: [{ refundId, status: 'failed' }] });
    expect(process.pending).toBe(0);
  });

  it('a refund its webhook settled after the process read the request: the provider is not asked, and the refund is dropped', async () => {
    const { paymentId, refundId, stream } = await givenPendingRefund();
    const { process, turn } = startProcess();
    expect(await turn()).toEqual({ progressed: 0, failed: 0 });
    await side.handlers.payment.handle(stream, { type: 'RecordRefundSucceeded', data: { paymentId, refundId, providerEventId: 'evt_refund_webhook' } }, as(admin));

    clock.advance(graceMs);
    await process.sweep();

    expect(provider.looks).toEqual([]);
    expect(process.pending).toBe(0);
    expect(await eventTypes(store, stream)).toEqual(['PaymentInitiated', 'PaymentSucceeded', 'RefundRequested', 'RefundSucceeded']);
  });

  it('a refund its webhook settled before the process read the log is never pending for it', async () => {
    const { paymentId, refundId, stream } = await givenPendingRefund();
    await side.handlers.payment.handle(stream, { type: 'RecordRefundFailed', data: { paymentId, refundId, providerEventId: 'evt_refund_webhook', reason: 'lost_or_stolen_card' } }, as(admin));
    const { process, turn } = startProcess();

    clock.advance(graceMs);
    expect(await turn()).toEqual({ progressed: 0, failed: 0 });

    expect(process.pending).toBe(0);
    expect(provider.looks).toEqual([]);
  });

  it('a refund still pending at the provider is asked after again only once twice the last wait has passed, the wait growing to 6 hours at most', async () => {
    const { refundId, stream } = await givenPendingRefund();
    provider.refunds.set(refundId, { providerRefundId: 're_1', status: 'pending' });
    const { process, turn } = startProcess();
    clock.advance(graceMs);
    await turn();
    expect(provider.looksAt(refundId)).toBe(1);

    // The waits after each look: 30 min, 1 h, 2 h, 4 h, then 6 h (not 8 h), and 6 h again.
    const waits = [2, 4, 8, 16].map((times) => times * graceMs).concat([sixHours, sixHours]);
    for (const [index, wait] of waits.entries()) {
      clock.advance(wait - 1);
      await turn();
      expect(provider.looksAt(refundId)).toBe(index + 1);
      clock.advance(1);
      await turn();
      expect(provider.looksAt(refundId)).toBe(index + 2);
    }
    expect(process.pending).toBe(1);
    expect(await eventTypes(store, stream)).toEqual(['PaymentInitiated', 'PaymentSucceeded', 'RefundRequested']);

    provider.refunds.set(refundId, { providerRefundId: 're_1', status: 'succeeded' });
    clock.advance(sixHours);
    expect(await turn()).toEqual({ progressed: 1, failed: 0 });
    expect(await eventTypes(store, stream)).toEqual(['PaymentInitiated', 'PaymentSucceeded', 'RefundRequested', 'RefundSucceeded']);
  });

  it('a refund the provider has not made (the payment process still retrying its create) is reported, kept, and asked after later; nothing is made', async () => {
    const { paymentId, refundId, stream } = await givenPendingRefund();
    const { process, turn, errors } = startProcess();

    clock.advance(graceMs);
    // The provider answered (it has none): progress, though nothing is settled
    expect(await turn()).toEqual({ progressed: 1, failed: 0 });

    expect(errors).toEqual([{ what: expect.stringContaining(`refund ${refundId} of payment ${paymentId}`), retried: true }]);
    expect(process.pending).toBe(1);
    clock.advance(2 * graceMs);
    provider.refunds.set(refundId, { providerRefundId: 're_late', status: 'succeeded' });
    expect(await turn()).toEqual({ progressed: 1, failed: 0 });
    expect(provider.looksAt(refundId)).toBe(2);
    expect(await eventTypes(store, stream)).toEqual(['PaymentInitiated', 'PaymentSucceeded', 'RefundRequested', 'RefundSucceeded']);
  });

  it('the provider failing on one refund is reported and retried at its next due time; the sweep goes on with the others', async () => {
    const down = await givenPendingRefund('pay-1');
    const up = await givenPendingRefund('pay-2');
    provider.failing.add(down.refundId);
    provider.refunds.set(down.refundId, { providerRefundId: 're_1', status: 'succeeded' });
    provider.refunds.set(up.refundId, { providerRefundId: 're_2', status: 'succeeded' });
    const { process, turn, errors } = startProcess();

    clock.advance(graceMs);
    expect(await turn()).toEqual({ progressed: 1, failed: 1 });

    expect(errors).toEqual([{ what: expect.stringContaining(`refund ${down.refundId} of payment pay-1`), retried: true }]);
    expect(await eventTypes(store, up.stream)).toContain('RefundSucceeded');
    expect(await eventTypes(store, down.stream)).not.toContain('RefundSucceeded');
    expect(process.pending).toBe(1);

    provider.failing.clear();
    // Nothing due, and nothing failing: the provider answered the other look of the last sweep
    expect(await turn()).toEqual({ progressed: 0, failed: 0 });
    expect(provider.looksAt(down.refundId)).toBe(1);
    clock.advance(2 * graceMs);
    expect(await turn()).toEqual({ progressed: 1, failed: 0 });
    expect(await eventTypes(store, down.stream)).toContain('RefundSucceeded');
  });

  it('run: a round whose every due look fails (the provider down) is a failed attempt, so an operator sees it stall; the first round that settles one is a successful attempt', async () => {
    // Given a refund due, and the provider down for the first three rounds
    const { refundId, stream } = await givenPendingRefund();
    provider.refunds.set(refundId, { providerRefundId: 're_1', status: 'succeeded' });
    provider.failing.add(refundId);
    const downRounds = 3;
    const attempts: boolean[] = [];
    const stop = new AbortController();
    const { process } = startProcess(side, (succeeded) => {
      attempts.push(succeeded);
      if (attempts.length === downRounds) provider.failing.clear();
      if (attempts.length === downRounds + 1) stop.abort();
      // Between rounds, as long as the longest wait: the refund is due again at each one.
      clock.advance(sixHours);
    });
    clock.advance(graceMs);

    // When the loop runs rounds
    await process.run(stop.signal, 1);

    // Then each round the provider was down reported a failed attempt, and the round it answered a successful one
    expect(attempts).toEqual([false, false, false, true]);
    expect(provider.looksAt(refundId)).toBe(downRounds + 1);
    expect(await eventTypes(store, stream)).toContain('RefundSucceeded');
  });

  it('run: with the provider down, every round reports a failed attempt while the refund waits for its next look, not only the rounds that looked; the first round whose look the provider answers is a successful one', async () => {
    // Given a refund due, rounds every 5 s (the default interval, as the clock sees it), and the
    // provider down from the first look until the refund is due again 30 min later
    const sweepEveryMs = 5_000;
    const { refundId, stream } = await givenPendingRefund();
    provider.refunds.set(refundId, { providerRefundId: 're_1', status: 'pending' });
    provider.failing.add(refundId);
    const outageRounds = (2 * graceMs) / sweepEveryMs;
    const roundsAfter = 3;
    const attempts: boolean[] = [];
    const stop = new AbortController();
    const { process, errors } = startProcess(side, (succeeded) => {
      attempts.push(succeeded);
      if (attempts.length === outageRounds) provider.failing.clear();
      if (attempts.length === outageRounds + roundsAfter) stop.abort();
      clock.advance(sweepEveryMs);
    });
    clock.advance(graceMs);

    // When the loop runs rounds (1 ms apart in real time)
    await process.run(stop.signal, 1);

    // Then every round of the outage was a failed attempt, though only its first looked; the
    // provider's answer (still pending: nothing settled) made the next rounds successful ones
    expect(runsOf(attempts)).toEqual([
      { succeeded: false, rounds: outageRounds },
      { succeeded: true, rounds: roundsAfter },
    ]);
    expect(provider.looksAt(refundId)).toBe(2);
    expect(errors.map(({ what }) => what)).toEqual([expect.stringContaining(`look at refund ${refundId}`)]);
    expect(process.pending).toBe(1);
    expect(await eventTypes(store, stream)).toEqual(['PaymentInitiated', 'PaymentSucceeded', 'RefundRequested']);
  });

  it('run: one refund the provider refuses for ever, beside one it answers `pending`, is no stall: a refusal is an answer, so no round is a failed attempt, and each refusal is reported', async () => {
    // Given a refund the provider refuses to look up at every look (a 4xx), another it answers
    // `pending` at every look, and rounds 30 min apart (as the clock sees it) for a day
    const refused = await givenPendingRefund('pay-1');
    const healthy = await givenPendingRefund('pay-2');
    provider.refusing.add(refused.refundId);
    provider.refunds.set(healthy.refundId, { providerRefundId: 're_2', status: 'pending' });
    const rounds = 48;
    const attempts: boolean[] = [];
    const stop = new AbortController();
    const { process, errors } = startProcess(side, (succeeded) => {
      attempts.push(succeeded);
      if (attempts.length === rounds) stop.abort();
      clock.advance(30 * 60_000);
    });
    clock.advance(graceMs);

    // When the loop runs the rounds (1 ms apart in real time)
    await process.run(stop.signal, 1);

    // Then every round was a successful attempt: the provider answered every look made
    expect(runsOf(attempts)).toEqual([{ succeeded: true, rounds }]);
    // Each refund looked at 15 min after its request, then 30 min, 1 h, 2 h, 4 h, 6 h and 6 h later
    expect(provider.looksAt(refused.refundId)).toBe(7);
    expect(provider.looksAt(healthy.refundId)).toBe(7);
    // And every refusal was reported (the error count an operator sees grow), to be asked again later
    expect(errors).toEqual(Array.from({ length: 7 }, () => ({ what: expect.stringContaining(`look at refund ${refused.refundId}`), retried: true })));
    expect(process.pending).toBe(2);
  });

  it('a refund its webhook settles after the provider went silent on it leaves nothing to be stalled on: the quiet sweeps after are no failures', async () => {
    // Given a refund due whose look the provider leaves unanswered (down)
    const { paymentId, refundId, stream } = await givenPendingRefund();
    provider.failing.add(refundId);
    const { process, turn } = startProcess();
    clock.advance(graceMs);
    expect(await turn()).toEqual({ progressed: 0, failed: 1 });
    expect(await turn()).toEqual({ progressed: 0, failed: 1 });

    // When its webhook then settles it
    await side.handlers.payment.handle(stream, { type: 'RecordRefundSucceeded', data: { paymentId, refundId, providerEventId: 'evt_refund_webhook' } }, as(admin));

    // Then the sweeps after, with nothing pending, are no failures, hours on
    for (let round = 0; round < 3; round++) {
      clock.advance(sixHours);
      expect(await turn()).toEqual({ progressed: 0, failed: 0 });
    }
    expect(process.pending).toBe(0);
  });

  it('a process started later (after a restart) still finds the refund pending from the start of the log', async () => {
    const { refundId, stream } = await givenPendingRefund();
    provider.refunds.set(refundId, { providerRefundId: 're_1', status: 'succeeded' });
    clock.advance(7 * 86_400_000);

    expect(await startProcess().turn()).toEqual({ progressed: 1, failed: 0 });

    expect(await eventTypes(store, stream)).toEqual(['PaymentInitiated', 'PaymentSucceeded', 'RefundRequested', 'RefundSucceeded']);
  });

  it('two instances sweeping at once (two projector processes) record the outcome once', async () => {
    const { refundId, stream } = await givenPendingRefund();
    provider.refunds.set(refundId, { providerRefundId: 're_1', status: 'succeeded' });
    const one = startProcess(createTestSide(store, clock));
    const other = startProcess(createTestSide(store, clock));

    clock.advance(graceMs);
    await Promise.all([one.turn(), other.turn()]);
    await Promise.all([one.turn(), other.turn()]);

    expect(provider.looksAt(refundId)).toBe(2);
    expect(await eventTypes(store, stream)).toEqual(['PaymentInitiated', 'PaymentSucceeded', 'RefundRequested', 'RefundSucceeded']);
    expect([one.process.pending, other.process.pending]).toEqual([0, 0]);
  });

  it('stopping while the provider is slow: the sweep stops after the look in flight, leaving the other due refunds for the next sweep (a shutdown waits for it)', async () => {
    // Given three refunds due, and a provider taking 200 ms a look
    for (const paymentId of ['pay-1', 'pay-2', 'pay-3']) await givenPendingRefund(paymentId);
    const answer = provider.retrieveRefund.bind(provider);
    let started = 0;
    provider.retrieveRefund = async (request, quick) => {
      started += 1;
      await new Promise((resolve) => setTimeout(resolve, 200));
      return answer(request, quick);
    };
    const process = new RefundReconciliation({ eventStore: store, side, gateway: provider, graceMs });
    clock.advance(graceMs);

    // when the process is stopped once its first look has started
    const stop = new AbortController();
    const running = process.run(stop.signal, 60_000);
    while (started === 0) await new Promise((resolve) => setTimeout(resolve, 5));
    stop.abort();
    await running;

    // then it asked about the first refund only, and all three are still pending for the next sweep
    expect(provider.looks).toHaveLength(1);
    expect(process.pending).toBe(3);
  });
});
