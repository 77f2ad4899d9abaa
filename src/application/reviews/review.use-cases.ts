import { bookingStreamId, isRecorded } from '../../domain/booking/booking.decider.js';
import { reviewStreamId } from '../../domain/review/review.decider.js';
import { DomainError, NotFoundError } from '../../domain/shared/domain-error.js';
import { isErased } from '../authorization/registered-users.js';
import type { CommandSide } from '../command-handlers.js';
import { outcome, unpinned, type CommandOutcome } from '../command-handling/command-outcome.js';
import type { CommandOptions } from '../command-handling/handle-command.js';

export type SubmitReviewInput = { bookingId: string; rating: number; comment: string };

/** One review per booking: the review's stream is named after the booking. */
export async function submitReview(
  side: CommandSide,
  listingId: string,
  input: SubmitReviewInput,
  request: CommandOptions,
): Promise<CommandOutcome> {
  const { actor } = request.context;
  const { state: booking } = await side.handlers.booking.read(bookingStreamId(input.bookingId));
  // Someone else's booking is not there for this caller.
  if (!isRecorded(booking) || booking.booking.consumerId !== actor.id) throw new NotFoundError(`booking ${input.bookingId}`);
  // A consumer's token outlives their erasure by some minutes: a review sent with it would be
  // published in their name, its rating counted, with nobody left behind it.
  if (await isErased(side, actor.id)) throw new DomainError('account-erased', `${actor.id} was erased`);
  const facts = { consumerId: booking.booking.consumerId, listingId: booking.booking.listingId, status: booking.status };
  const result = await side.handlers.review.handle(
    reviewStreamId(input.bookingId),
    { type: 'SubmitReview', data: { ...input, listingId, actor, booking: facts, now: side.clock.now().toISOString() } },
    unpinned(request),
  );
  return outcome(input.bookingId, result);
}
