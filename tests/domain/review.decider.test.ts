import { describe, expect, it } from 'vitest';
import type { Actor } from '../../src/domain/shared/actor.js';
import { fold } from '../../src/domain/shared/decider.js';
import { isPersonal } from '../../src/domain/shared/personal-data.js';
import { submitReviewSchema, type BookingFacts, type ReviewCommand, type SubmitReview } from '../../src/domain/review/review.commands.js';
import { reviewDecider, reviewStreamId } from '../../src/domain/review/review.decider.js';
import { reviewEditedSchema, reviewHiddenSchema, reviewSubmittedSchema, type ReviewEvent } from '../../src/domain/review/review.events.js';
import { deciderSpec } from '../support/decider-spec.js';

const spec = deciderSpec(reviewDecider);
const bookingId = 'booking-1';
const listingId = 'listing-1';
const consumer: Actor = { id: 'consumer-1', roles: ['CONSUMER'] };
const otherConsumer: Actor = { id: 'consumer-2', roles: ['CONSUMER'] };
const admin: Actor = { id: 'admin-1', roles: ['ADMIN'] };
const submittedAt = '2026-06-10T12:00:00.000Z';
const completedBooking: BookingFacts = { consumerId: consumer.id, listingId, status: 'completed' };

const submit = (overrides: Partial<SubmitReview['data']> = {}): ReviewCommand => ({
  type: 'SubmitReview',
  data: { bookingId, listingId, actor: consumer, booking: completedBooking, rating: 4, comment: 'Lovely stay.', now: submittedAt, ...overrides },
});
const submitted: ReviewEvent = {
  type: 'ReviewSubmitted',
  data: { bookingId, listingId, authorId: consumer.id, rating: 4, comment: 'Lovely stay.', submittedAt },
};
const edit = (changes: { rating?: number; comment?: string }, now = '2026-06-11T12:00:00.000Z', actor = consumer): ReviewCommand => ({
  type: 'EditReview',
  data: { bookingId, actor, now, ...changes },
});
const edited = (rating: number, comment: string): ReviewEvent => ({ type: 'ReviewEdited', data: { bookingId, listingId, rating, comment } });
const hide = (actor = admin): ReviewCommand => ({ type: 'HideReview', data: { bookingId, actor, reason: 'insults the host' } });
const hidden: ReviewEvent = { type: 'ReviewHidden', data: { bookingId, listingId, hiddenById: admin.id, reason: 'insults the host' } };

describe('review stream', () => {
  it('is named review-<bookingId>', () => expect(reviewStreamId('abc')).toBe('review-abc'));
});

describe('SubmitReview', () => {
  it('publishes the review of a completed booking by its consumer', () => spec.given([]).when(submit()).then([submitted]));
  it('accepts ratings 1 and 5 and a comment of 2,000 characters (emoji count once)', () => {
    const longest = '😀'.repeat(2000);
    spec.given([]).when(submit({ rating: 1 })).then([{ type: 'ReviewSubmitted', data: { ...submitted.data, rating: 1 } }]);
    spec.given([]).when(submit({ rating: 5, comment: longest })).then([{ type: 'ReviewSubmitted', data: { ...submitted.data, rating: 5, comment: longest } }]);
  });
  it('refuses anyone but the consumer of the booking', () => {
    spec.given([]).when(submit({ actor: otherConsumer })).thenFails('forbidden');
    spec.given([]).when(submit({ actor: admin })).thenFails('forbidden');
  });
  it.each(['requested', 'paid', 'confirmed', 'cancelled', 'expired'] as const)('refuses a %s booking', (status) =>
    spec.given([]).when(submit({ booking: { ...completedBooking, status } })).thenFails('booking-not-completed'));
  it('refuses a booking of another listing', () => spec.given([]).when(submit({ listingId: 'listing-2' })).thenFails('wrong-listing'));
  it('refuses a second review of the same booking', () => {
    spec.given([submitted]).when(submit({ rating: 2 })).thenFails('already-reviewed');
    spec.given([submitted, hidden]).when(submit()).thenFails('already-reviewed');
  });
  it.each([0, 6, 3.5])('refuses rating %s', (rating) => spec.given([]).when(submit({ rating })).thenFails('invalid-rating'));
  it('refuses a comment over 2,000 characters', () => spec.given([]).when(submit({ comment: 'a'.repeat(2001) })).thenFails('comment-too-long'));
  it('has a schema that rejects the same at the edge', () => {
    const parse = (overrides: Partial<SubmitReview['data']>) => submitReviewSchema.safeParse(submit(overrides)).success;
    expect(parse({})).toBe(true);
    expect(parse({ rating: 0 })).toBe(false);
    expect(parse({ rating: 2.5 })).toBe(false);
    expect(parse({ comment: 'a'.repeat(2001) })).toBe(false);
  });
  it('marks the comment as personal data', () => {
    expect(isPersonal(reviewSubmittedSchema.shape.data.shape.comment)).toBe(true);
    expect(isPersonal(reviewEditedSchema.shape.data.shape.comment)).toBe(true);
    expect(isPersonal(reviewHiddenSchema.shape.data.shape.reason)).toBe(true);
  });
});

describe('EditReview', () => {
  it('records the new rating and comment', () => spec.given([submitted]).when(edit({ rating: 5 })).then([edited(5, 'Lovely stay.')]));
  it('may change the comment only', () => spec.given([submitted]).when(edit({ comment: 'Lovely.' })).then([edited(4, 'Lovely.')]));
  it('is open until exactly 14 days after it was written', () => {
    spec.given([submitted]).when(edit({ rating: 3 }, '2026-06-24T12:00:00.000Z')).then([edited(3, 'Lovely stay.')]);
    spec.given([submitted]).when(edit({ rating: 3 }, '2026-06-24T12:00:00.001Z')).thenFails('edit-window-closed');
  });
  it('counts from the first writing, not the last edit', () =>
    spec.given([submitted, edited(5, 'Great')]).when(edit({ rating: 3 }, '2026-06-25T00:00:00.000Z')).thenFails('edit-window-closed'));
  it('records nothing when nothing changes', () => spec.given([submitted]).when(edit({ rating: 4, comment: 'Lovely stay.' })).then([]));
  it('refuses anyone but the author, admins included', () => {
    spec.given([submitted]).when(edit({ rating: 1 }, undefined, otherConsumer)).thenFails('forbidden');
    spec.given([submitted]).when(edit({ rating: 1 }, undefined, admin)).thenFails('forbidden');
  });
  it('refuses a hidden review', () => spec.given([submitted, hidden]).when(edit({ rating: 5 })).thenFails('review-hidden'));
  it('refuses a bad rating or comment', () => {
    spec.given([submitted]).when(edit({ rating: 9 })).thenFails('invalid-rating');
    spec.given([submitted]).when(edit({ comment: 'a'.repeat(2001) })).thenFails('comment-too-long');
  });
  it('refuses a review that does not exist', () => spec.given([]).when(edit({ rating: 5 })).thenFails('not-found'));
});

describe('HideReview', () => {
  it('hides a review for an admin, with the reason', () => spec.given([submitted]).when(hide()).then([hidden]));
  it('is already true when hidden', () => spec.given([submitted, hidden]).when(hide()).then([]));
  it('refuses anyone but an admin', () => {
    spec.given([submitted]).when(hide(consumer)).thenFails('forbidden');
    spec.given([submitted]).when(hide({ id: 'owner-1', roles: ['OWNER'] })).thenFails('forbidden');
  });
  it('refuses a review that does not exist', () => spec.given([]).when(hide()).thenFails('not-found'));
  it('keeps the original review in the state as well as in the history', () =>
    expect(fold(reviewDecider, [submitted, hidden])).toEqual({ status: 'hidden', review: submitted.data, hiddenReason: 'insults the host' }));
});
