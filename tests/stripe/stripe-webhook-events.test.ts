import type Stripe from 'stripe';
import { describe, expect, it } from 'vitest';
import { toProviderEvents } from '../../src/infrastructure/stripe/stripe-webhook-events.js';

/** Only the fields the translation reads; Stripe's full objects are much larger. */
function event(id: string, type: string, object: Record<string, unknown>, created?: number): Stripe.Event {
  const parsed: Stripe.Event = JSON.parse(JSON.stringify({ id, object: 'event', type, created, data: { object } }));
  return parsed;
}

const refund = (id: string, status: string, metadata: Record<string, string>) => ({ id, object: 'refund', status, metadata, failure_reason: status === 'failed' ? 'lost_or_stolen_card' : null });

describe("Stripe events in our terms", () => {
  it('a success carries what was received, upper-case currency, our payment id, and when Stripe made the event as its capture time', () => {
    const intent = { id: 'pi_1', object: 'payment_intent', amount: 500, amount_received: 400, currency: 'eur', metadata: { paymentId: 'p1' } };
    expect(toProviderEvents(event('evt_1', 'payment_intent.succeeded', intent, 1_930_125_600))).toEqual([
      { kind: 'payment-succeeded', eventId: 'evt_1', paymentId: 'p1', intentId: 'pi_1', amount: 400, currency: 'EUR', capturedAt: '2031-03-01T10:00:00.000Z' },
    ]);
  });

  it('a success from an event without a usable time carries no capture time, rather than a made-up one', () => {
    const intent = { id: 'pi_1', object: 'payment_intent', amount: 500, amount_received: 500, currency: 'eur', metadata: { paymentId: 'p1' } };
    for (const created of [undefined, 0, 1.5, 1e15]) {
      expect(toProviderEvents(event('evt_1', 'payment_intent.succeeded', intent, created))[0]).not.toHaveProperty('capturedAt');
    }
  });

  it('a failure names the decline code, then the error code', () => {
    const intent = { id: 'pi_1', object: 'payment_intent', metadata: { paymentId: 'p1' }, last_payment_error: { code: 'card_declined', decline_code: 'insufficient_funds' } };
    expect(toProviderEvents(event('evt_2', 'payment_intent.payment_failed', intent))).toEqual([
      { kind: 'payment-failed', eventId: 'evt_2', paymentId: 'p1', intentId: 'pi_1', reason: 'insufficient_funds' },
    ]);
  });

  it('charge.refunded reports each listed refund under its own derived event id: ours on their payment, one without our metadata as unmatched', () => {
    const charge = {
      id: 'ch_1',
      object: 'charge',
      refunds: { object: 'list', data: [refund('re_1', 'succeeded', { paymentId: 'p1', refundId: 'r1' }), refund('re_2', 'failed', { paymentId: 'p1', refundId: 'r2' }), refund('re_3', 'succeeded', {})] },
    };
    expect(toProviderEvents(event('evt_3', 'charge.refunded', charge))).toEqual([
      { kind: 'refund-succeeded', eventId: 'evt_3:re_1', paymentId: 'p1', refundId: 'r1' },
      { kind: 'refund-failed', eventId: 'evt_3:re_2', paymentId: 'p1', refundId: 'r2', reason: 'lost_or_stolen_card' },
      { kind: 'unmatched', eventId: 'charge-listed:re_3:succeeded', eventType: 'charge.refunded', objectId: 're_3', reason: expect.any(String) },
    ]);
  });

  it('charge.refunded listing the same foreign refund again keeps it once per state it is seen in', () => {
    const listing = (status: string) => ({ id: 'ch_6', object: 'charge', refunds: { object: 'list', data: [refund('re_8', status, {})] } });
    const ids = ['pending', 'succeeded', 'succeeded'].map((status, n) => toProviderEvents(event(`evt_${20 + n}`, 'charge.refunded', listing(status)))[0]?.eventId);
    expect(ids).toEqual(['charge-listed:re_8:pending', 'charge-listed:re_8:succeeded', 'charge-listed:re_8:succeeded']);
  });

  it('charge.refunded listing only pending refunds of ours reports nothing yet, as their refund events do; the charge is not unmatched', () => {
    const pending = refund('re_6', 'pending', { paymentId: 'p1', refundId: 'r6' });
    const charge = { id: 'ch_3', object: 'charge', refunds: { object: 'list', data: [pending] } };
    expect(toProviderEvents(event('evt_8', 'charge.refunded', charge))).toEqual([]);
    expect(toProviderEvents(event('evt_9', 'refund.created', pending))).toEqual([]);
  });

  it('charge.refunded whose only listed refund is not ours keeps that refund, not the charge, as unmatched', () => {
    const charge = { id: 'ch_4', object: 'charge', refunds: { object: 'list', data: [refund('re_7', 'pending', {})] } };
    expect(toProviderEvents(event('evt_10', 'charge.refunded', charge))).toEqual([expect.objectContaining({ kind: 'unmatched', eventId: 'charge-listed:re_7:pending', objectId: 're_7' })]);
  });

  it('keeps what it cannot map (no refunds listed, no metadata) as unmatched; a pending refund is nothing yet', () => {
    expect(toProviderEvents(event('evt_4', 'charge.refunded', { id: 'ch_2', object: 'charge', refunds: null }))).toEqual([
      expect.objectContaining({ kind: 'unmatched', eventId: 'evt_4', objectId: 'ch_2' }),
    ]);
    expect(toProviderEvents(event('evt_11', 'charge.refunded', { id: 'ch_5', object: 'charge', refunds: { object: 'list', data: [] } }))).toEqual([
      expect.objectContaining({ kind: 'unmatched', eventId: 'evt_11', objectId: 'ch_5' }),
    ]);
    expect(toProviderEvents(event('evt_5', 'refund.updated', refund('re_4', 'succeeded', {})))).toEqual([expect.objectContaining({ kind: 'unmatched', objectId: 're_4' })]);
    expect(toProviderEvents(event('evt_6', 'refund.created', refund('re_5', 'pending', { paymentId: 'p', refundId: 'r' })))).toEqual([]);
    expect(toProviderEvents(event('evt_7', 'invoice.paid', { id: 'in_1', object: 'invoice' }))).toEqual([]);
  });

  it.each([
    ['an intent event without its object', 'payment_intent.succeeded', undefined, 'data.object'],
    ['an intent without metadata', 'payment_intent.succeeded', { id: 'pi_9', object: 'payment_intent', metadata: null, amount_received: 1, currency: 'eur' }, 'data.object.metadata'],
    ['a success whose amount is no number', 'payment_intent.succeeded', { id: 'pi_9', object: 'payment_intent', metadata: { paymentId: 'p9' }, amount_received: '100', currency: 'eur' }, 'data.object.amount_received'],
    ['a charge whose refunds are no list', 'charge.refunded', { id: 'ch_9', object: 'charge', refunds: { data: 'none' } }, 'data.object.refunds.data'],
    ['a refund whose metadata is a string', 'refund.updated', { id: 're_9', object: 'refund', status: 'succeeded', metadata: 'p9' }, 'data.object.metadata'],
  ])('%s is kept as unmatched ("malformed", naming the field), not thrown over', (_, type, object, field) => {
    const malformed: Stripe.Event = JSON.parse(JSON.stringify({ id: 'evt_m', object: 'event', type, data: object === undefined ? {} : { object } }));
    expect(toProviderEvents(malformed)).toEqual([{ kind: 'unmatched', eventId: 'evt_m', eventType: type, objectId: object?.id ?? 'evt_m', reason: expect.stringMatching(new RegExp(`^malformed: ${field.replaceAll('.', '\\.')}: `)) }]);
  });

  // Before, one field read only for the reason's text made the whole event unmatched: a refund
  // that failed stayed pending on our side, its money counted as given back.
  it('a field read only for the reason, of the wrong shape, gives the default reason: the ids and status still record the outcome', () => {
    const failedRefund = { ...refund('re_8', 'failed', { paymentId: 'p8', refundId: 'r8' }), failure_reason: { code: 'expired_or_canceled_card' } };
    expect(toProviderEvents(event('evt_8', 'refund.failed', failedRefund))).toEqual([{ kind: 'refund-failed', eventId: 'evt_8', paymentId: 'p8', refundId: 'r8', reason: 'failed' }]);
    const failedIntent = { id: 'pi_8', object: 'payment_intent', metadata: { paymentId: 'p8' }, last_payment_error: 'card_declined' };
    expect(toProviderEvents(event('evt_9', 'payment_intent.payment_failed', failedIntent))).toEqual([{ kind: 'payment-failed', eventId: 'evt_9', paymentId: 'p8', intentId: 'pi_8', reason: 'payment_failed' }]);
    const oddCode = { id: 'pi_9', object: 'payment_intent', metadata: { paymentId: 'p9' }, last_payment_error: { code: 7, message: 'declined' } };
    expect(toProviderEvents(event('evt_10', 'payment_intent.payment_failed', oddCode))).toEqual([{ kind: 'payment-failed', eventId: 'evt_10', paymentId: 'p9', intentId: 'pi_9', reason: 'declined' }]);
  });

  it('ids and statuses are still read strictly: a refund whose status is no string is malformed', () => {
    const [translated] = toProviderEvents(event('evt_11', 'refund.updated', { ...refund('re_11', 'failed', { paymentId: 'p', refundId: 'r' }), status: 3 }));
    expect(translated).toMatchObject({ kind: 'unmatched', reason: expect.stringMatching(/^malformed: data\.object\.status: /) });
  });
});
