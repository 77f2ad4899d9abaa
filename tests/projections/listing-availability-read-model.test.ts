import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { cancelBooking, requestBooking } from '../../src/application/bookings/booking.use-cases.js';
import { createListing } from '../../src/application/listings/listing.use-cases.js';
import { listingAvailabilityProjection } from '../../src/projections/listing-availability/listing-availability.projection.js';
import { listingAvailability } from '../../src/projections/listing-availability/listing-availability.queries.js';
import { as, consumer, listingInput, otherConsumer, owner } from '../support/command-side.js';
import { startReadModels, type ReadModelHarness } from './support/read-models.harness.js';
import { payBooking } from './support/scenarios.js';

const days = (statuses: Record<string, string>, from: string, to: string) => {
  const result: { date: string; status: string }[] = [];
  for (let d = new Date(`${from}T00:00:00Z`); d.toISOString().slice(0, 10) < to; d = new Date(d.getTime() + 86_400_000)) {
    const date = d.toISOString().slice(0, 10);
    result.push({ date, status: statuses[date] ?? 'free' });
  }
  return result;
};

describe('listing availability read model', () => {
  let h: ReadModelHarness;
  let listingId: string;

  beforeAll(async () => {
    h = await startReadModels([listingAvailabilityProjection]);
    listingId = (await createListing(h.side, listingInput, as(owner))).id;
  });
  afterAll(() => h.close());

  it('given DatesHeld, then the nights [start, end) are held while the hold lasts, and free once it lapsed', async () => {
    await requestBooking(h.side, { listingId, startDate: '2030-02-02', endDate: '2030-02-04' }, as(consumer));
    await h.settle();
    const now = h.clock.now();
    expect(await listingAvailability(h.db, listingId, { from: '2030-02-01', to: '2030-02-05' }, now)).toEqual(
      days({ '2030-02-02': 'held', '2030-02-03': 'held' }, '2030-02-01', '2030-02-05'),
    );
    const later = new Date(now.getTime() + 16 * 60_000);
    expect(await listingAvailability(h.db, listingId, { from: '2030-02-01', to: '2030-02-05' }, later)).toEqual(days({}, '2030-02-01', '2030-02-05'));
  });

  it('given DatesBooked, then booked for good; given DatesReleased, then free again', async () => {
    const { id } = await requestBooking(h.side, { listingId, startDate: '2030-03-10', endDate: '2030-03-12' }, as(otherConsumer));
    await payBooking(h.side, id);
    await h.settle();
    const far = new Date('2031-01-01T00:00:00Z');
    expect(await listingAvailability(h.db, listingId, { from: '2030-03-10', to: '2030-03-13' }, far)).toEqual(
      days({ '2030-03-10': 'booked', '2030-03-11': 'booked' }, '2030-03-10', '2030-03-13'),
    );
    await cancelBooking(h.side, id, { reason: 'no longer needed' }, as(otherConsumer));
    await h.settle();
    expect(await listingAvailability(h.db, listingId, { from: '2030-03-10', to: '2030-03-13' }, far)).toEqual(days({}, '2030-03-10', '2030-03-13'));
    expect(await h.rows('listing_availability', 'listing_calendars')).toEqual([{ listing_id: listingId, version: 3 }]);
  });

  it('a replayed batch changes nothing', async () => {
    const before = await h.rows('listing_availability', 'calendar_ranges');
    await h.replay(listingAvailabilityProjection);
    expect(await h.rows('listing_availability', 'calendar_ranges')).toEqual(before);
  });
});
