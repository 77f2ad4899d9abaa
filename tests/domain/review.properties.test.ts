import { fc, test } from '@fast-check/vitest';
import { expect } from 'vitest';
import type { Actor } from '../../src/domain/shared/actor.js';
import { DomainError } from '../../src/domain/shared/domain-error.js';
import { ForbiddenError } from '../../src/domain/shared/forbidden-error.js';
import { bookingStatusSchema } from '../../src/domain/booking/booking.status.js';
import type { ReviewCommand, SubmitReview } from '../../src/domain/review/review.commands.js';
import { editWindowMs, reviewDecider, type ReviewState } from '../../src/domain/review/review.decider.js';
import { characterCount, type ReviewEvent } from '../../src/domain/review/review.events.js';

const bookingId = 'booking-p';
const startMs = Date.parse('2026-06-10T12:00:00Z');
const actors: Actor[] = [
  { id: 'consumer-1', roles: ['CONSUMER'] },
  { id: 'consumer-2', roles: ['CONSUMER'] },
  { id: 'admin-1', roles: ['ADMIN'] },
];
const actor = fc.constantFrom(...actors);
const author: Actor = { id: 'consumer-1', roles: ['CONSUMER'] };
const rating = fc.integer({ min: 0, max: 6 });
const comment = fc.oneof(fc.string({ maxLength: 40 }), fc.constant('x'.repeat(2001)));

type Build = (now: string) => ReviewCommand;

const submit: fc.Arbitrary<Build> = fc
  .record({ actor, status: fc.constantFrom('completed', 'completed', ...bookingStatusSchema.options), rating, comment })
  .map(({ actor, status, rating, comment }) => (now) => ({
    type: 'SubmitReview',
    data: { bookingId, listingId: 'listing-1', actor, booking: { consumerId: 'consumer-1', listingId: 'listing-1', status }, rating, comment, now },
  }));
const edit: fc.Arbitrary<Build> = fc
  .record({ actor, rating, comment }, { requiredKeys: ['actor'] })
  .map((changes) => (now) => ({ type: 'EditReview', data: { bookingId, now, ...changes } }));
const hide: fc.Arbitrary<Build> = actor.map((actor) => () => ({ type: 'HideReview', data: { bookingId, actor, reason: 'off topic' } }));

/** A submit every rule accepts, so that the edits and hides after it have a review to work on. */
const validSubmit: fc.Arbitrary<Build> = fc
  .record({ rating: fc.integer({ min: 1, max: 5 }), comment: fc.string({ maxLength: 40 }) })
  .map(({ rating, comment }) => (now) => ({
    type: 'SubmitReview',
    data: { bookingId, listingId: 'listing-1', actor: author, booking: { consumerId: 'consumer-1', listingId: 'listing-1', status: 'completed' }, rating, comment, now },
  }));

const steps = fc
  .tuple(
    validSubmit,
    fc.array(fc.record({ daysLater: fc.integer({ min: 0, max: 5 }), build: fc.oneof(submit, { weight: 3, arbitrary: edit }, hide) }), { maxLength: 25 }),
  )
  .map(([first, rest]) => [{ daysLater: 0, build: first }, ...rest]);

const next: Record<ReviewState['status'], readonly ReviewState['status'][]> = {
  none: ['published'],
  published: ['published', 'hidden'],
  hidden: [],
};

test.prop([steps])('one review per booking, by its consumer, edited only in its window, never un-hidden', (steps) => {
  let state = reviewDecider.initialState;
  let clock = startMs;
  for (const { daysLater, build } of steps) {
    clock += daysLater * 86_400_000;
    let events: ReviewEvent[];
    try {
      events = reviewDecider.decide(build(new Date(clock).toISOString()), state);
    } catch (error) {
      if (error instanceof DomainError) continue;
      throw error;
    }
    for (const event of events) {
      if (event.type === 'ReviewEdited' && state.status !== 'none') {
        expect(clock - Date.parse(state.review.submittedAt)).toBeLessThanOrEqual(editWindowMs);
      }
      const after = reviewDecider.evolve(state, event);
      expect(next[state.status]).toContain(after.status);
      if (state.status !== 'none' && after.status !== 'none') expect(after.review.submittedAt).toBe(state.review.submittedAt);
      state = after;
    }
    if (state.status === 'none') continue;
    expect(state.review.authorId).toBe('consumer-1');
    expect([1, 2, 3, 4, 5]).toContain(state.review.rating);
    expect(characterCount(state.review.comment)).toBeLessThanOrEqual(2000);
  }
});

const submittedAt = new Date(startMs).toISOString();
const published = (): ReviewState => reviewDecider.decide(validSubmitAt(submittedAt), reviewDecider.initialState).reduce(reviewDecider.evolve, reviewDecider.initialState);
function validSubmitAt(now: string): SubmitReview {
  return {
    type: 'SubmitReview',
    data: { bookingId, listingId: 'listing-1', actor: author, booking: { consumerId: 'consumer-1', listingId: 'listing-1', status: 'completed' }, rating: 3, comment: 'fine', now },
  };
}
const codeOf = (run: () => unknown): string | undefined => {
  try {
    run();
  } catch (error) {
    return error instanceof DomainError ? error.code : String(error);
  }
  return undefined;
};
const newRating = fc.constantFrom(1, 2, 4, 5);

test.prop([fc.integer({ min: 0, max: 30 * 86_400_000 }), newRating])(
  'given a hidden review, when its author edits it at any time, then it is refused',
  (msLater, rating) => {
    const hidden = reviewDecider
      .decide({ type: 'HideReview', data: { bookingId, actor: { id: 'admin-1', roles: ['ADMIN'] }, reason: 'off topic' } }, published())
      .reduce(reviewDecider.evolve, published());
    const edit: ReviewCommand = { type: 'EditReview', data: { bookingId, actor: author, rating, now: new Date(startMs + msLater).toISOString() } };

    expect(codeOf(() => reviewDecider.decide(edit, hidden))).toBe('review-hidden');
  },
);

test.prop([fc.oneof(fc.constantFrom(0, editWindowMs, editWindowMs + 1), fc.integer({ min: 0, max: 2 * editWindowMs })), newRating])(
  'given a published review, when its author edits it, then it is accepted up to 14 days after it was written, inclusive, and refused after',
  (msLater, rating) => {
    const edit: ReviewCommand = { type: 'EditReview', data: { bookingId, actor: author, rating, now: new Date(startMs + msLater).toISOString() } };

    if (msLater <= editWindowMs) expect(reviewDecider.decide(edit, published())).toMatchObject([{ type: 'ReviewEdited', data: { rating } }]);
    else expect(codeOf(() => reviewDecider.decide(edit, published()))).toBe('edit-window-closed');
  },
);

test.prop([fc.constantFrom(...bookingStatusSchema.options)])('given a booking in any status, when its consumer reviews it, then only a completed one is reviewable', (status) => {
  const submit = validSubmitAt(submittedAt);
  const command: ReviewCommand = { ...submit, data: { ...submit.data, booking: { ...submit.data.booking, status } } };

  if (status === 'completed') expect(reviewDecider.decide(command, reviewDecider.initialState)).toMatchObject([{ type: 'ReviewSubmitted' }]);
  else expect(codeOf(() => reviewDecider.decide(command, reviewDecider.initialState))).toBe('booking-not-completed');
});

test.prop([fc.constantFrom('listing-1', 'listing-2', 'listing-10')])('given a completed booking, when reviewed under a listing, then the listing must be the booking\'s', (listingId) => {
  const submit = validSubmitAt(submittedAt);
  const command: ReviewCommand = { ...submit, data: { ...submit.data, listingId } };

  if (listingId === 'listing-1') expect(reviewDecider.decide(command, reviewDecider.initialState)).toMatchObject([{ type: 'ReviewSubmitted', data: { listingId } }]);
  else expect(codeOf(() => reviewDecider.decide(command, reviewDecider.initialState))).toBe('wrong-listing');
});

test.prop([
  fc.record({
    id: fc.constantFrom('consumer-1', 'consumer-2', 'admin-1', 'owner-1'),
    roles: fc.subarray(['CONSUMER', 'OWNER', 'PATIENT', 'DOCTOR', 'ADMIN', 'AUDITOR'] as const),
  }),
])('given a published review, when someone hides it, then only an admin may', (actor) => {
  const hide: ReviewCommand = { type: 'HideReview', data: { bookingId, actor: { id: actor.id, roles: [...actor.roles] }, reason: 'off topic' } };

  if (actor.roles.includes('ADMIN')) expect(reviewDecider.decide(hide, published())).toMatchObject([{ type: 'ReviewHidden', data: { hiddenById: actor.id } }]);
  else expect(() => reviewDecider.decide(hide, published())).toThrow(ForbiddenError);
});
