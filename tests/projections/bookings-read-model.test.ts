import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { cancelBooking, completeBooking, requestBooking } from '../../src/application/bookings/booking.use-cases.js';
import { createListing } from '../../src/application/listings/listing.use-cases.js';
import { bookingStreamId } from '../../src/domain/booking/booking.decider.js';
import type { Actor } from '../../src/domain/shared/actor.js';
import { bookingsProjection } from '../../src/projections/bookings/bookings.projection.js';
import { bookingsOfConsumer, bookingsOfOwner, findBooking } from '../../src/projections/bookings/bookings.queries.js';
import { paymentsProjection } from '../../src/projections/payments/payments.projection.js';
import { as, consumer, listingInput, otherConsumer, owner } from '../support/command-side.js';
import { startReadModels, type ReadModelHarness } from './support/read-models.harness.js';
import { payBooking, system } from './support/scenarios.js';

describe('bookings read model', () => {
  let h: ReadModelHarness;
  let listingId: string;

  beforeAll(async () => {
    h = await startReadModels([bookingsProjection, paymentsProjection]);
    listingId = (await createListing(h.side, listingInput, as(owner))).id;
  });
  afterAll(() => h.close());

  it('given BookingRequested, then a requested booking with the server-computed total, on both parties\' pages', async () => {
    const { id } = await requestBooking(h.side, { listingId, startDate: '2030-02-01', endDate: '2030-02-05' }, as(consumer));
    await h.settle();
    const booking = await findBooking(h.db, id);
    expect(booking).toMatchObject({
      id,
      listingId,
      consumerId: consumer.id,
      ownerId: owner.id,
      nights: 4,
      pricePerNight: 12_000,
      total: 48_000,
      currency: 'EUR',
      status: 'requested',
      holdExpiresAt: '2030-01-10T10:15:00.000Z',
      paidAmount: null,
      cancellation: null,
      version: 0,
    });
    expect((await bookingsOfConsumer(h.db, consumer.id, {}, { limit: 20 })).items.map((b) => b.id)).toContain(id);
    expect((await bookingsOfOwner(h.db, owner.id, {}, { limit: 20 })).items.map((b) => b.id)).toContain(id);
    expect((await bookingsOfConsumer(h.db, otherConsumer.id, {}, { limit: 20 })).items).toEqual([]);
  });

  it('given BookingPaid, BookingConfirmed and BookingCompleted, then the status and the amount paid follow', async () => {
    const { id } = await requestBooking(h.side, { listingId, startDate: '2030-02-10', endDate: '2030-02-12' }, as(consumer));
    await payBooking(h.side, id, 'pay-complete');
    await h.settle();
    expect(await findBooking(h.db, id)).toMatchObject({ status: 'confirmed', paidAmount: 24_000, version: 2 });

    h.clock.advance(40 * 86_400_000);
    await completeBooking(h.side, id, as(owner));
    await h.settle();
    expect(await findBooking(h.db, id)).toMatchObject({ status: 'completed', version: 3 });
    h.clock.advance(-40 * 86_400_000);
  });

  it('given BookingCancelled, then cancelled with who cancelled and the refund granted', async () => {
    const { id } = await requestBooking(h.side, { listingId, startDate: '2030-03-01', endDate: '2030-03-03' }, as(consumer));
    await payBooking(h.side, id, 'pay-cancel');
    await cancelBooking(h.side, id, { reason: 'plans changed' }, as(consumer));
    await h.settle();
    expect(await findBooking(h.db, id)).toMatchObject({
      status: 'cancelled',
      cancellation: { cancelledBy: 'consumer', refundPercent: 100, refundAmount: 24_000 },
    });
  });

  it('given BookingExpired, then expired', async () => {
    const { id } = await requestBooking(h.side, { listingId, startDate: '2030-04-01', endDate: '2030-04-03' }, as(consumer));
    h.clock.advance(20 * 60_000);
    await h.side.handlers.booking.handle(bookingStreamId(id), { type: 'ExpireBooking', data: { bookingId: id, now: h.clock.now().toISOString() } }, as(system));
    await h.settle();
    expect(await findBooking(h.db, id)).toMatchObject({ status: 'expired' });
  });

  it('given BookingAbandoned, then no row: the booking was never recorded', async () => {
    const id = 'abandoned-before-recorded';
    await h.side.handlers.booking.handle(bookingStreamId(id), { type: 'AbandonBooking', data: { bookingId: id, now: h.clock.now().toISOString() } }, as(consumer));
    await h.settle();
    expect(await findBooking(h.db, id)).toBeUndefined();
  });

  it('pages newest first by a keyset, filters by status, and never repeats or skips a row', async () => {
    // A consumer of its own, so its pages hold exactly these bookings whichever tests run.
    const pager: Actor = { id: 'consumer-paging', roles: ['CONSUMER'] };
    const requested: string[] = [];
    for (const [startDate, endDate] of [['2030-05-01', '2030-05-03'], ['2030-05-05', '2030-05-07'], ['2030-05-09', '2030-05-11']] as const) {
      requested.push((await requestBooking(h.side, { listingId, startDate, endDate }, as(pager))).id);
      // A minute apart: newest first is then the reverse of the order they were requested in.
      h.clock.advance(60_000);
    }
    h.clock.advance(-3 * 60_000);
    const [, cancelledId] = requested;
    await cancelBooking(h.side, cancelledId ?? '', { reason: 'plans changed' }, as(pager));
    await h.settle();

    const all = await bookingsOfConsumer(h.db, pager.id, {}, { limit: 100 });
    expect(all.items.map((b) => b.id)).toEqual([...requested].reverse());
    const seen: string[] = [];
    let page = await bookingsOfConsumer(h.db, pager.id, {}, { limit: 1 });
    for (;;) {
      seen.push(...page.items.map((b) => b.id));
      if (!page.next) break;
      page = await bookingsOfConsumer(h.db, pager.id, {}, { limit: 1, after: page.next });
    }
    expect(seen).toEqual(all.items.map((b) => b.id));
    const cancelled = await bookingsOfConsumer(h.db, pager.id, { status: 'cancelled' }, { limit: 20 });
    expect(cancelled.items.map((b) => [b.id, b.status])).toEqual([[cancelledId, 'cancelled']]);
  });

  it('a replayed batch changes nothing', async () => {
    const before = await h.rows('bookings', 'bookings');
    await h.replay(bookingsProjection);
    expect(await h.rows('bookings', 'bookings')).toEqual(before);
  });
});
