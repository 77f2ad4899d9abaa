import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { completeBooking, requestBooking } from '../../src/application/bookings/booking.use-cases.js';
import { createListing } from '../../src/application/listings/listing.use-cases.js';
import { submitReview } from '../../src/application/reviews/review.use-cases.js';
import { reviewStreamId } from '../../src/domain/review/review.decider.js';
import { reviewsProjection } from '../../src/projections/reviews/reviews.projection.js';
import { reviewsOfListing } from '../../src/projections/reviews/reviews.queries.js';
import { admin, as, consumer, listingInput, otherConsumer, owner } from '../support/command-side.js';
import { startReadModels, type ReadModelHarness } from './support/read-models.harness.js';
import { payBooking } from './support/scenarios.js';

describe('reviews read model', () => {
  let h: ReadModelHarness;
  let listingId: string;
  const bookings: string[] = [];

  beforeAll(async () => {
    h = await startReadModels([reviewsProjection]);
    listingId = (await createListing(h.side, listingInput, as(owner))).id;
    for (const [who, startDate, endDate] of [[consumer, '2030-01-20', '2030-01-22'], [otherConsumer, '2030-01-23', '2030-01-25']] as const) {
      const { id } = await requestBooking(h.side, { listingId, startDate, endDate }, as(who));
      await payBooking(h.side, id);
      bookings.push(id);
    }
    h.clock.advance(20 * 86_400_000);
    for (const id of bookings) await completeBooking(h.side, id, as(owner));
  });
  afterAll(() => h.close());

  it('given ReviewSubmitted, then listed newest first', async () => {
    const [first, second] = bookings;
    if (!first || !second) throw new Error('bookings missing');
    await submitReview(h.side, listingId, { bookingId: first, rating: 4, comment: 'Lovely' }, as(consumer));
    h.clock.advance(60_000);
    await submitReview(h.side, listingId, { bookingId: second, rating: 2, comment: 'Noisy' }, as(otherConsumer));
    await h.settle();
    const page = await reviewsOfListing(h.db, listingId, { limit: 20 });
    expect(page.items.map((r) => [r.bookingId, r.rating, r.comment, r.authorId])).toEqual([
      [second, 2, 'Noisy', otherConsumer.id],
      [first, 4, 'Lovely', consumer.id],
    ]);
    const one = await reviewsOfListing(h.db, listingId, { limit: 1 });
    expect(one.next).toEqual({ submittedAt: one.items[0]?.submittedAt, bookingId: second });
    expect((await reviewsOfListing(h.db, listingId, { limit: 1, after: one.next ?? undefined })).items.map((r) => r.bookingId)).toEqual([first]);
  });

  it('given ReviewEdited, then the new rating and comment; given ReviewHidden, then no longer listed', async () => {
    const [first, second] = bookings;
    if (!first || !second) throw new Error('bookings missing');
    await h.side.handlers.review.handle(
      reviewStreamId(first),
      { type: 'EditReview', data: { bookingId: first, actor: consumer, rating: 5, comment: 'Lovely, really', now: h.clock.now().toISOString() } },
      as(consumer),
    );
    await h.side.handlers.review.handle(reviewStreamId(second), { type: 'HideReview', data: { bookingId: second, actor: admin, reason: 'abusive' } }, as(admin));
    await h.settle();
    const page = await reviewsOfListing(h.db, listingId, { limit: 20 });
    expect(page.items).toMatchObject([{ bookingId: first, rating: 5, comment: 'Lovely, really' }]);
    expect(page.items[0]?.editedAt).not.toBeNull();
  });

  it('a replayed batch changes nothing', async () => {
    const before = await h.rows('reviews', 'reviews');
    await h.replay(reviewsProjection);
    expect(await h.rows('reviews', 'reviews')).toEqual(before);
  });
});
