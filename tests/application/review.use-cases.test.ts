import { beforeEach, describe, expect, it } from 'vitest';
import type { CommandSide } from '../../src/application/command-handlers.js';
import { completeBooking } from '../../src/application/bookings/booking.use-cases.js';
import { createListing } from '../../src/application/listings/listing.use-cases.js';
import { eraseSubject } from '../../src/application/privacy/erase-subject.use-case.js';
import { submitReview } from '../../src/application/reviews/review.use-cases.js';
import { paidBooking, registerUser } from '../projections/support/scenarios.js';
import { admin, as, consumer, createTestSide, eventTypes, fakeClock, InterruptibleStore, listingInput, owner } from '../support/command-side.js';
import { memoryVault } from '../support/personal-data.js';

const stay = { startDate: '2030-02-01', endDate: '2030-02-05' };
const day = 86_400_000;

describe('review use cases', () => {
  let store: InterruptibleStore;
  let clock: ReturnType<typeof fakeClock>;
  let side: CommandSide;
  let listingId: string;
  let bookingId: string;

  // Given a stay its consumer booked, paid and the owner completed.
  beforeEach(async () => {
    store = new InterruptibleStore();
    clock = fakeClock('2030-01-10T10:00:00Z');
    side = createTestSide(store, clock);
    await registerUser(side, consumer, 'Connie');
    listingId = (await createListing(side, listingInput, as(owner))).id;
    bookingId = await paidBooking(side, { listingId, ...stay }, consumer);
    clock.advance(30 * day);
    await completeBooking(side, bookingId, as(owner));
  });

  it("publishes the consumer's review of their completed stay", async () => {
    await submitReview(side, listingId, { bookingId, rating: 5, comment: 'Lovely' }, as(consumer));
    expect(await eventTypes(store, `review-${bookingId}`)).toEqual(['ReviewSubmitted']);
  });

  it("refuses a review sent with the token of a consumer erased since, and publishes nothing in their name", async () => {
    await eraseSubject({ side, vault: memoryVault(), outsideTheLog: { eraseSubject: async () => undefined } }, consumer.id, as(admin));

    await expect(submitReview(side, listingId, { bookingId, rating: 1, comment: 'Awful' }, as(consumer))).rejects.toMatchObject({ code: 'account-erased' });
    expect(await eventTypes(store, `review-${bookingId}`)).toEqual([]);
  });
});
