import { describe, expect, it } from 'vitest';
import type { Actor } from '../../src/domain/shared/actor.js';
import { fold } from '../../src/domain/shared/decider.js';
import { isPersonal } from '../../src/domain/shared/personal-data.js';
import type { BookingCommand, RequestBooking } from '../../src/domain/booking/booking.commands.js';
import { bookingDecider, bookingStreamId } from '../../src/domain/booking/booking.decider.js';
import { bookingCancelledSchema, type BookingEvent } from '../../src/domain/booking/booking.events.js';
import { refundPercent } from '../../src/domain/booking/cancellation.policy.js';
import { deciderSpec } from '../support/decider-spec.js';

const spec = deciderSpec(bookingDecider);
const bookingId = 'booking-1';
const consumer: Actor = { id: 'consumer-1', roles: ['CONSUMER'] };
const owner: Actor = { id: 'owner-1', roles: ['OWNER'] };
const admin: Actor = { id: 'admin-1', roles: ['ADMIN'] };
const stranger: Actor = { id: 'consumer-2', roles: ['CONSUMER', 'OWNER'] };
const now = '2026-05-01T10:00:00.000Z';
const holdExpiresAt = '2026-05-01T10:15:00.000Z';
const listing = { ownerId: owner.id, active: true, pricePerDay: 10_000, currency: 'EUR', timeZone: 'Europe/Lisbon' };
// 1 June 00:00 in Lisbon (summer time, UTC+1) is 31 May 23:00 UTC.
const startsAt = Date.parse('2026-05-31T23:00:00.000Z');
const hoursBeforeStart = (hours: number) => new Date(startsAt - hours * 3_600_000).toISOString();

const request = (overrides: Partial<RequestBooking['data']> = {}): BookingCommand => ({
  type: 'RequestBooking',
  data: { bookingId, listingId: 'listing-1', consumerId: consumer.id, startDate: '2026-06-01', endDate: '2026-06-04', holdExpiresAt, now, listing, ...overrides },
});
const requested: BookingEvent = {
  type: 'BookingRequested',
  data: {
    bookingId,
    listingId: 'listing-1',
    consumerId: consumer.id,
    ownerId: owner.id,
    startDate: '2026-06-01',
    endDate: '2026-06-04',
    nights: 3,
    pricePerNight: 10_000,
    total: 30_000,
    currency: 'EUR',
    timeZone: 'Europe/Lisbon',
    holdExpiresAt,
  },
};
const paid: BookingEvent = { type: 'BookingPaid', data: { bookingId, paymentId: 'payment-1', amount: 30_000, currency: 'EUR' } };
const confirmed: BookingEvent = { type: 'BookingConfirmed', data: { bookingId } };
const completed: BookingEvent = { type: 'BookingCompleted', data: { bookingId } };
const expired: BookingEvent = { type: 'BookingExpired', data: { bookingId } };
const cancelledUnpaid: BookingEvent = {
  type: 'BookingCancelled',
  data: { bookingId, cancelledBy: 'consumer', cancelledById: consumer.id, reason: 'plans changed', refundPercent: 100, refundAmount: 0, currency: 'EUR' },
};

const markPaid = (paymentId = 'payment-1', amount = 30_000, currency = 'EUR'): BookingCommand => ({
  type: 'MarkBookingPaid',
  data: { bookingId, paymentId, amount, currency },
});
const confirm: BookingCommand = { type: 'ConfirmBooking', data: { bookingId } };
const complete = (actor: Actor, at = '2026-06-04T09:00:00.000Z'): BookingCommand => ({ type: 'CompleteBooking', data: { bookingId, actor, now: at } });
const cancel = (actor: Actor, at = now, reason = 'plans changed'): BookingCommand => ({ type: 'CancelBooking', data: { bookingId, actor, reason, now: at } });
const expire = (at: string): BookingCommand => ({ type: 'ExpireBooking', data: { bookingId, now: at } });

const cancelled = (cancelledBy: 'consumer' | 'owner' | 'admin', actor: Actor, refundPercent: number, refundAmount: number): BookingEvent => ({
  type: 'BookingCancelled',
  data: { bookingId, cancelledBy, cancelledById: actor.id, reason: 'plans changed', refundPercent, refundAmount, currency: 'EUR' },
});

describe('booking stream', () => {
  it('is named booking-<id>', () => expect(bookingStreamId('abc')).toBe('booking-abc'));
});

describe('RequestBooking', () => {
  it('holds the dates at nights × the price of the moment', () => spec.given([]).when(request()).then([requested]));

  it('takes the price the listing has when requested', () =>
    spec
      .given([])
      .when(request({ listing: { ...listing, pricePerDay: 12_500, currency: 'CHF' } }))
      .then([{ type: 'BookingRequested', data: { ...requested.data, pricePerNight: 12_500, total: 37_500, currency: 'CHF' } }]));

  it('refuses a booking id that exists', () => spec.given([requested]).when(request()).thenFails('already-exists'));
  it('refuses the owner booking their own listing', () => spec.given([]).when(request({ consumerId: owner.id })).thenFails('own-listing'));
  it('refuses an inactive listing', () => spec.given([]).when(request({ listing: { ...listing, active: false } })).thenFails('listing-inactive'));
  it('refuses an end not after the start', () => spec.given([]).when(request({ endDate: '2026-06-01' })).thenFails('invalid-range'));
  it('refuses more than 90 nights', () => spec.given([]).when(request({ endDate: '2026-08-31' })).thenFails('stay-too-long'));
  it('accepts a stay whose last night is 365 days from today and refuses one whose last night is 366, in the listing time zone', () => {
    const stay = (startDate: string, endDate: string) => ({ startDate, endDate });
    // Today in Lisbon is 2026-05-01, so the last bookable night is 2027-05-01.
    const [accepted] = bookingDecider.decide(request(stay('2027-04-29', '2027-05-02')), bookingDecider.initialState);
    expect(accepted).toMatchObject({ type: 'BookingRequested', data: stay('2027-04-29', '2027-05-02') });
    spec.given([]).when(request(stay('2027-04-30', '2027-05-03'))).thenFails('dates-too-far-ahead');
    spec.given([]).when(request(stay('2027-05-02', '2027-05-05'))).thenFails('dates-too-far-ahead');
  });
  it('refuses a start before today in the listing time zone', () =>
    spec.given([]).when(request({ startDate: '2026-04-30', endDate: '2026-05-02' })).thenFails('dates-in-past'));
  it('refuses a listing time zone nobody knows', () =>
    spec.given([]).when(request({ listing: { ...listing, timeZone: 'Mars/Olympus' } })).thenFails('invalid-time-zone'));
  it('refuses a hold that has already run out', () => spec.given([]).when(request({ holdExpiresAt: now })).thenFails('invalid-hold-expiry'));
  it('refuses a listing without a positive price', () =>
    spec.given([]).when(request({ listing: { ...listing, pricePerDay: 0 } })).thenFails('invalid-price'));
});

describe('MarkBookingPaid', () => {
  it('records the payment of a requested booking', () => spec.given([requested]).when(markPaid()).then([paid]));
  it('is already true when the same payment is reported again', () => {
    spec.given([requested, paid]).when(markPaid()).then([]);
    spec.given([requested, paid, confirmed]).when(markPaid()).then([]);
    spec.given([requested, paid, confirmed, completed]).when(markPaid()).then([]);
    spec.given([requested, paid, cancelled('owner', owner, 100, 30_000)]).when(markPaid()).then([]);
  });
  it('refuses a second, different payment', () => spec.given([requested, paid]).when(markPaid('payment-2')).thenFails('already-paid'));
  it('refuses a wrong amount', () => spec.given([requested]).when(markPaid('payment-1', 29_999)).thenFails('payment-mismatch'));
  it('refuses a wrong currency', () => spec.given([requested]).when(markPaid('payment-1', 30_000, 'USD')).thenFails('payment-mismatch'));
  it('refuses a cancelled booking', () => spec.given([requested, cancelledUnpaid]).when(markPaid()).thenFails('illegal-transition'));
  it('refuses an expired booking', () => spec.given([requested, expired]).when(markPaid()).thenFails('illegal-transition'));
  it('refuses a booking that does not exist', () => spec.given([]).when(markPaid()).thenFails('not-found'));
});

describe('ConfirmBooking', () => {
  it('confirms a paid booking', () => spec.given([requested, paid]).when(confirm).then([confirmed]));
  it('is already true when confirmed or completed', () => {
    spec.given([requested, paid, confirmed]).when(confirm).then([]);
    spec.given([requested, paid, confirmed, completed]).when(confirm).then([]);
  });
  it('refuses an unpaid booking', () => spec.given([requested]).when(confirm).thenFails('illegal-transition'));
  it('refuses a cancelled booking', () => spec.given([requested, paid, cancelled('owner', owner, 100, 30_000)]).when(confirm).thenFails('illegal-transition'));
  it('refuses an expired booking', () => spec.given([requested, expired]).when(confirm).thenFails('illegal-transition'));
  it('refuses a booking that does not exist', () => spec.given([]).when(confirm).thenFails('not-found'));
});

describe('CompleteBooking', () => {
  const stay = [requested, paid, confirmed];
  it('completes a confirmed booking on its end date, for the owner', () => spec.given(stay).when(complete(owner)).then([completed]));
  it('completes it for an admin', () => spec.given(stay).when(complete(admin, '2026-06-10T00:00:00.000Z')).then([completed]));
  it('refuses before the end date in the listing time zone', () => {
    spec.given(stay).when(complete(owner, '2026-06-03T22:59:00.000Z')).thenFails('stay-not-over');
    spec.given(stay).when(complete(owner, '2026-06-03T23:00:00.000Z')).then([completed]); // midnight in Lisbon
  });
  it('refuses the consumer and strangers', () => {
    spec.given(stay).when(complete(consumer)).thenFails('forbidden');
    spec.given(stay).when(complete(stranger)).thenFails('forbidden');
  });
  it('is already true when completed', () => spec.given([...stay, completed]).when(complete(owner)).then([]));
  it('refuses a booking that is not confirmed', () => {
    spec.given([requested, paid]).when(complete(owner)).thenFails('illegal-transition');
    spec.given([requested, cancelledUnpaid]).when(complete(owner)).thenFails('illegal-transition');
  });
  it('refuses a booking that does not exist', () => spec.given([]).when(complete(owner)).thenFails('not-found'));
});

describe('CancelBooking', () => {
  const paidStay = [requested, paid, confirmed];
  it('refunds the consumer fully at least 7 days before the start', () => {
    spec.given(paidStay).when(cancel(consumer)).then([cancelled('consumer', consumer, 100, 30_000)]);
    spec.given(paidStay).when(cancel(consumer, hoursBeforeStart(168))).then([cancelled('consumer', consumer, 100, 30_000)]);
  });
  it('refunds the consumer half from 7 days to 48 hours before', () => {
    spec.given(paidStay).when(cancel(consumer, hoursBeforeStart(167.9))).then([cancelled('consumer', consumer, 50, 15_000)]);
    spec.given(paidStay).when(cancel(consumer, hoursBeforeStart(48))).then([cancelled('consumer', consumer, 50, 15_000)]);
  });
  it('refunds the consumer nothing within 48 hours of the start, or later', () => {
    spec.given(paidStay).when(cancel(consumer, hoursBeforeStart(47.9))).then([cancelled('consumer', consumer, 0, 0)]);
    spec.given(paidStay).when(cancel(consumer, hoursBeforeStart(-30))).then([cancelled('consumer', consumer, 0, 0)]);
  });
  it('refunds fully when the owner or an admin cancels, however late', () => {
    spec.given(paidStay).when(cancel(owner, hoursBeforeStart(1))).then([cancelled('owner', owner, 100, 30_000)]);
    spec.given(paidStay).when(cancel(admin, hoursBeforeStart(1))).then([cancelled('admin', admin, 100, 30_000)]);
  });
  it('treats an admin who is the consumer as the consumer', () => {
    const adminConsumer: Actor = { id: consumer.id, roles: ['CONSUMER', 'ADMIN'] };
    spec.given(paidStay).when(cancel(adminConsumer, hoursBeforeStart(1))).then([cancelled('consumer', adminConsumer, 0, 0)]);
  });
  it('rounds a partial refund down to a whole minor unit', () => {
    const odd: BookingEvent = { type: 'BookingRequested', data: { ...requested.data, pricePerNight: 10_001, total: 30_003 } };
    const oddPaid: BookingEvent = { type: 'BookingPaid', data: { ...paid.data, amount: 30_003 } };
    spec.given([odd, oddPaid]).when(cancel(consumer, hoursBeforeStart(100))).then([cancelled('consumer', consumer, 50, 15_001)]);
  });
  it('refuses a confirmed stay that is over, from its end date in the listing time zone', () => {
    spec.given(paidStay).when(cancel(admin, '2026-06-03T22:59:00.000Z')).then([cancelled('admin', admin, 100, 30_000)]);
    spec.given(paidStay).when(cancel(admin, '2026-06-03T23:00:00.000Z')).thenFails('stay-over'); // midnight in Lisbon
    spec.given(paidStay).when(cancel(owner, '2026-06-10T00:00:00.000Z')).thenFails('stay-over');
    spec.given(paidStay).when(cancel(consumer, '2026-06-10T00:00:00.000Z')).thenFails('stay-over');
  });
  it('still cancels a paid booking never confirmed after its dates (the payment process undoing it)', () =>
    spec.given([requested, paid]).when(cancel(admin, '2026-06-10T00:00:00.000Z')).then([cancelled('admin', admin, 100, 30_000)]));
  it('refunds no amount when nothing was paid', () => spec.given([requested]).when(cancel(consumer)).then([cancelledUnpaid]));
  it('refunds a paid but unconfirmed booking', () => spec.given([requested, paid]).when(cancel(owner)).then([cancelled('owner', owner, 100, 30_000)]));
  it('refuses anyone else', () => spec.given(paidStay).when(cancel(stranger)).thenFails('forbidden'));
  describe('once cancelled', () => {
    const byConsumer = [...paidStay, cancelled('consumer', consumer, 50, 15_000)];
    const byOwner = [...paidStay, cancelled('owner', owner, 100, 30_000)];
    const byAdmin = [...paidStay, cancelled('admin', admin, 100, 30_000)];
    const refusal = (events: BookingEvent[], command: BookingCommand) => () => bookingDecider.decide(command, fold(bookingDecider, events));

    it('changes nothing when the party that cancelled it cancels again: a retry', () => {
      spec.given([requested, cancelledUnpaid]).when(cancel(consumer)).then([]);
      spec.given(byConsumer).when(cancel(consumer, '2026-06-10T00:00:00.000Z')).then([]); // even once the stay is over
      spec.given(byOwner).when(cancel(owner, hoursBeforeStart(1), 'another reason')).then([]);
      // Any admin acts in the one capacity of an admin.
      spec.given(byAdmin).when(cancel({ id: 'admin-2', roles: ['ADMIN'] })).then([]);
    });
    it('refuses another party, naming who cancelled it: they must not believe their own cancellation happened', () => {
      spec.given(byConsumer).when(cancel(owner)).thenFails('already-cancelled');
      spec.given(byConsumer).when(cancel(admin)).thenFails('already-cancelled');
      spec.given(byOwner).when(cancel(consumer)).thenFails('already-cancelled');
      spec.given(byAdmin).when(cancel(owner)).thenFails('already-cancelled');
      expect(refusal(byConsumer, cancel(owner))).toThrow('the booking was cancelled by its consumer');
      expect(refusal(byOwner, cancel(admin))).toThrow('the booking was cancelled by its owner');
      expect(refusal(byAdmin, cancel(consumer))).toThrow('the booking was cancelled by an admin');
    });
    it('judges the capacity as a new cancellation would: an admin who is the consumer retries as the consumer', () => {
      const adminConsumer: Actor = { id: consumer.id, roles: ['CONSUMER', 'ADMIN'] };
      spec.given(byConsumer).when(cancel(adminConsumer)).then([]);
      spec.given(byAdmin).when(cancel(adminConsumer)).thenFails('already-cancelled');
    });
    it('refuses anyone else as forbidden first', () => spec.given(byConsumer).when(cancel(stranger)).thenFails('forbidden'));
  });
  it('refuses a completed or expired booking', () => {
    spec.given([...paidStay, completed]).when(cancel(admin)).thenFails('illegal-transition');
    spec.given([requested, expired]).when(cancel(consumer)).thenFails('illegal-transition');
  });
  it('refuses a booking that does not exist', () => spec.given([]).when(cancel(consumer)).thenFails('not-found'));
  it('marks the reason as personal data', () => {
    expect(isPersonal(bookingCancelledSchema.shape.data.shape.reason)).toBe(true);
  });
});

describe('ExpireBooking', () => {
  it('expires an unpaid booking once its hold ran out', () => {
    spec.given([requested]).when(expire(holdExpiresAt)).then([expired]);
    spec.given([requested]).when(expire('2026-05-02T00:00:00.000Z')).then([expired]);
  });
  it('refuses while the hold still runs', () => spec.given([requested]).when(expire('2026-05-01T10:14:59.999Z')).thenFails('hold-not-expired'));
  it('is already true when expired', () => spec.given([requested, expired]).when(expire(holdExpiresAt)).then([]));
  it('refuses a paid or cancelled booking', () => {
    spec.given([requested, paid]).when(expire(holdExpiresAt)).thenFails('illegal-transition');
    spec.given([requested, cancelledUnpaid]).when(expire(holdExpiresAt)).thenFails('illegal-transition');
  });
  it('refuses a booking that does not exist', () => spec.given([]).when(expire(holdExpiresAt)).thenFails('not-found'));
});

describe('AbandonBooking', () => {
  const abandon: BookingCommand = { type: 'AbandonBooking', data: { bookingId, now } };
  const abandoned: BookingEvent = { type: 'BookingAbandoned', data: { bookingId, abandonedAt: now } };

  it('gives up the id of a booking not recorded yet', () => spec.given([]).when(abandon).then([abandoned]));
  it('is already true when given up', () => spec.given([abandoned]).when(abandon).then([]));
  it('leaves a booking recorded meanwhile as it is, whatever became of it', () => {
    spec.given([requested]).when(abandon).then([]);
    spec.given([requested, paid, confirmed]).when(abandon).then([]);
    spec.given([requested, expired]).when(abandon).then([]);
  });
  it('refuses the request it was given up for, landing late', () => spec.given([abandoned]).when(request()).thenFails('booking-abandoned'));
  it('leaves nothing to pay, confirm, complete, cancel or expire: the booking does not exist', () => {
    spec.given([abandoned]).when(markPaid()).thenFails('not-found');
    spec.given([abandoned]).when(confirm).thenFails('not-found');
    spec.given([abandoned]).when(complete(owner)).thenFails('not-found');
    spec.given([abandoned]).when(cancel(consumer)).thenFails('not-found');
    spec.given([abandoned]).when(expire(holdExpiresAt)).thenFails('not-found');
  });
});

describe('state', () => {
  it('follows the lifecycle', () => {
    expect(fold(bookingDecider, [requested]).status).toBe('requested');
    expect(fold(bookingDecider, [{ type: 'BookingAbandoned', data: { bookingId, abandonedAt: now } }])).toEqual({ status: 'abandoned' });
    expect(fold(bookingDecider, [requested, paid]).status).toBe('paid');
    expect(fold(bookingDecider, [requested, paid, confirmed, completed]).status).toBe('completed');
    expect(fold(bookingDecider, [requested, paid, cancelled('owner', owner, 100, 30_000)])).toMatchObject({
      status: 'cancelled',
      payment: { paymentId: 'payment-1', amount: 30_000 },
      refundAmount: 30_000,
    });
  });
});

describe('cancellation policy', () => {
  it('counts hours to 00:00 of the start date in the listing time zone', () => {
    expect(refundPercent('consumer', '2026-05-24T22:59:59.000Z', '2026-06-01', 'Europe/Lisbon')).toBe(100);
    expect(refundPercent('consumer', '2026-05-24T23:00:01.000Z', '2026-06-01', 'Europe/Lisbon')).toBe(50);
    expect(refundPercent('consumer', '2026-05-24T23:00:01.000Z', '2026-06-01', 'UTC')).toBe(100);
  });
});
