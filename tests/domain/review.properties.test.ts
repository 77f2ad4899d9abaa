import { fc, test } from '@fast-check/vitest';
import { expect } from 'vitest';
import type { Actor } from '../../src/domain/shared/actor.js';
import { DomainError } from '../../src/domain/shared/domain-error.js';
import { bookingStatusSchema } from '../../src/domain/booking/booking.status.js';
import type { ReviewCommand } from '../../src/domain/review/review.commands.js';
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

const steps = fc.array(
  fc.record({ daysLater: fc.integer({ min: 0, max: 5 }), build: fc.oneof(submit, { weight: 2, arbitrary: edit }, hide) }),
  { maxLength: 25 },
);

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
