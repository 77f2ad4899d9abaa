import { bookingDecider, bookingStreamId, type BookingState } from '../../domain/booking/booking.decider.js';
import type { RequestBooking } from '../../domain/booking/booking.commands.js';
import type { ReleaseReason } from '../../domain/listing-calendar/listing-calendar.events.js';
import { listingCalendarStreamId } from '../../domain/listing-calendar/listing-calendar.decider.js';
import { listingStreamId } from '../../domain/listing/listing.decider.js';
import { hasRole, type Actor } from '../../domain/shared/actor.js';
import type { CalendarDate } from '../../domain/shared/calendar-date.js';
import { NotFoundError } from '../../domain/shared/domain-error.js';
import { deterministicUuid } from '../ids.js';
import type { CommandSide } from '../command-handlers.js';
import { outcome, unpinned, type CommandOutcome } from '../command-handling/command-outcome.js';
import type { CommandOptions } from '../command-handling/handle-command.js';

export type RequestBookingInput = { listingId: string; startDate: CalendarDate; endDate: CalendarDate };

/**
 * Dates first, then the booking: the calendar is the contended resource and its hold expires
 * by itself, so a crash between the two appends leaves only a hold that the expiry process
 * releases, never a booking without dates.
 */
export async function requestBooking(side: CommandSide, input: RequestBookingInput, request: CommandOptions): Promise<CommandOutcome> {
  const bookingId = deterministicUuid('booking', request.commandId);
  const now = side.clock.now();
  const listing = await side.handlers.listing.read(listingStreamId(input.listingId));
  if (listing.state.status === 'none') throw new NotFoundError(`listing ${input.listingId}`);
  const { ownerId, details, price } = listing.state.listing;
  const command: RequestBooking = {
    type: 'RequestBooking',
    data: {
      bookingId,
      ...input,
      consumerId: request.context.actor.id,
      holdExpiresAt: new Date(now.getTime() + side.policy.holdMinutes * 60_000).toISOString(),
      now: now.toISOString(),
      listing: { ownerId, active: listing.state.status === 'active', ...price, timeZone: details.timeZone },
    },
  };
  // Deciding on a fresh booking first refuses what the booking's rules forbid (own listing,
  // inactive listing) before any dates are held for it.
  bookingDecider.decide(command, bookingDecider.initialState);
  await side.handlers.listingCalendar.handle(
    listingCalendarStreamId(input.listingId),
    { type: 'HoldDates', data: { ...input, bookingId, holdExpiresAt: command.data.holdExpiresAt, now: command.data.now, timeZone: details.timeZone } },
    unpinned(request),
  );
  const result = await side.handlers.booking.handle(bookingStreamId(bookingId), command, unpinned(request));
  return outcome(bookingId, result);
}

export async function cancelBooking(
  side: CommandSide,
  bookingId: string,
  input: { reason: string },
  request: CommandOptions,
): Promise<CommandOutcome> {
  await visibleBooking(side, bookingId, request.context.actor);
  const now = side.clock.now().toISOString();
  const result = await side.handlers.booking.handle(
    bookingStreamId(bookingId),
    { type: 'CancelBooking', data: { bookingId, actor: request.context.actor, reason: input.reason, now } },
    request,
  );
  await releaseDates(side, result.state, 'cancelled', request);
  return outcome(bookingId, result);
}

export async function completeBooking(side: CommandSide, bookingId: string, request: CommandOptions): Promise<CommandOutcome> {
  await visibleBooking(side, bookingId, request.context.actor);
  const now = side.clock.now().toISOString();
  const result = await side.handlers.booking.handle(
    bookingStreamId(bookingId),
    { type: 'CompleteBooking', data: { bookingId, actor: request.context.actor, now } },
    request,
  );
  return outcome(bookingId, result);
}

/** Gives the booking's dates back to its listing's calendar; releasing dates already free changes nothing. */
export async function releaseDates(side: CommandSide, booking: BookingState, reason: ReleaseReason, request: CommandOptions) {
  if (booking.status === 'none') return;
  const { listingId, bookingId } = booking.booking;
  await side.handlers.listingCalendar.handle(
    listingCalendarStreamId(listingId),
    { type: 'ReleaseDates', data: { listingId, bookingId, reason, now: side.clock.now().toISOString() } },
    unpinned(request),
  );
}

/** A booking exists for its consumer, the listing's owner and admins; for anyone else it does not. */
async function visibleBooking(side: CommandSide, bookingId: string, actor: Actor) {
  const { state } = await side.handlers.booking.read(bookingStreamId(bookingId));
  const party =
    state.status !== 'none' && (actor.id === state.booking.consumerId || actor.id === state.booking.ownerId || hasRole(actor, 'ADMIN'));
  if (!party) throw new NotFoundError(`booking ${bookingId}`);
  return state;
}
