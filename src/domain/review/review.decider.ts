import { hasRole } from '../shared/actor.js';
import { assertNever, type Decider } from '../shared/decider.js';
import { DomainError, NotFoundError } from '../shared/domain-error.js';
import { ForbiddenError } from '../shared/forbidden-error.js';
import type { EditReview, HideReview, ReviewCommand, SubmitReview } from './review.commands.js';
import { characterCount, maxCommentCharacters, type ReviewEvent, type ReviewSubmitted } from './review.events.js';

/** One review per booking, so the booking id names the stream. */
export const reviewStreamId = (bookingId: string) => `review-${bookingId}`;

export const editWindowMs = 14 * 86_400_000;

export type Review = ReviewSubmitted['data'];

export type ReviewState =
  | { readonly status: 'none' }
  | { readonly status: 'published'; readonly review: Review }
  | { readonly status: 'hidden'; readonly review: Review; readonly hiddenReason: string };

export const initialState: ReviewState = { status: 'none' };

function existing(state: ReviewState, bookingId: string): Exclude<ReviewState, { status: 'none' }> {
  if (state.status === 'none') throw new NotFoundError(`review of booking ${bookingId}`);
  return state;
}

function assertValidContent(rating: number, comment: string): void {
  if (!Number.isInteger(rating) || rating < 1 || rating > 5) {
    throw new DomainError('invalid-rating', 'the rating is a whole number from 1 to 5');
  }
  if (characterCount(comment) > maxCommentCharacters) {
    throw new DomainError('comment-too-long', `a comment has at most ${maxCommentCharacters} characters`);
  }
}

function submitReview({ data }: SubmitReview, state: ReviewState): ReviewEvent[] {
  const { booking } = data;
  if (data.actor.id !== booking.consumerId) throw new ForbiddenError('only the consumer of the booking may review it');
  if (booking.status !== 'completed') throw new DomainError('booking-not-completed', `the booking is ${booking.status}, not completed`);
  if (booking.listingId !== data.listingId) throw new DomainError('wrong-listing', `the booking is not of listing ${data.listingId}`);
  if (state.status !== 'none') throw new DomainError('already-reviewed', `booking ${data.bookingId} has a review already`);
  assertValidContent(data.rating, data.comment);
  const { bookingId, listingId, rating, comment } = data;
  const authorId = data.actor.id;
  return [{ type: 'ReviewSubmitted', data: { bookingId, listingId, authorId, rating, comment, submittedAt: data.now } }];
}

function editReview({ data }: EditReview, state: ReviewState): ReviewEvent[] {
  const { review, status } = existing(state, data.bookingId);
  if (data.actor.id !== review.authorId) throw new ForbiddenError('only the author may edit a review');
  if (status === 'hidden') throw new DomainError('review-hidden', 'a hidden review cannot be edited');
  if (Date.parse(data.now) - Date.parse(review.submittedAt) > editWindowMs) {
    throw new DomainError('edit-window-closed', 'a review can be edited for 14 days after it was written');
  }
  const rating = data.rating ?? review.rating;
  const comment = data.comment ?? review.comment;
  assertValidContent(rating, comment);
  if (rating === review.rating && comment === review.comment) return [];
  return [{ type: 'ReviewEdited', data: { bookingId: review.bookingId, listingId: review.listingId, rating, comment } }];
}

function hideReview({ data }: HideReview, state: ReviewState): ReviewEvent[] {
  const { review, status } = existing(state, data.bookingId);
  if (!hasRole(data.actor, 'ADMIN')) throw new ForbiddenError('only an admin may hide a review');
  if (status === 'hidden') return [];
  const { bookingId, listingId } = review;
  return [{ type: 'ReviewHidden', data: { bookingId, listingId, hiddenById: data.actor.id, reason: data.reason } }];
}

export function decide(command: ReviewCommand, state: ReviewState): ReviewEvent[] {
  switch (command.type) {
    case 'SubmitReview':
      return submitReview(command, state);
    case 'EditReview':
      return editReview(command, state);
    case 'HideReview':
      return hideReview(command, state);
    default:
      return assertNever(command);
  }
}

/** Total: an event that does not fit the state (never emitted by `decide`) leaves it as it is. */
export function evolve(state: ReviewState, event: ReviewEvent): ReviewState {
  switch (event.type) {
    case 'ReviewSubmitted':
      return state.status === 'none' ? { status: 'published', review: event.data } : state;
    case 'ReviewEdited':
      if (state.status !== 'published') return state;
      return { status: 'published', review: { ...state.review, rating: event.data.rating, comment: event.data.comment } };
    case 'ReviewHidden':
      return state.status === 'none' ? state : { status: 'hidden', review: state.review, hiddenReason: event.data.reason };
    default:
      return assertNever(event);
  }
}

export const reviewDecider: Decider<ReviewCommand, ReviewEvent, ReviewState> = { initialState, decide, evolve };
