import { bookingDecider, bookingStreamId, isRecorded, type BookingState } from '../../domain/booking/booking.decider.js';
import type { ExpireBooking, RequestBooking } from '../../domain/booking/booking.commands.js';
import type { ReleaseReason } from '../../domain/listing-calendar/listing-calendar.events.js';
import { keepsDates, LapsedHoldsInTheWay, listingCalendarStreamId, liveRangeOf, type ListingCalendarState } from '../../domain/listing-calendar/listing-calendar.decider.js';
import type { ListingCalendarEvent } from '../../domain/listing-calendar/listing-calendar.events.js';
import type { HoldDates } from '../../domain/listing-calendar/listing-calendar.commands.js';
import { listingStreamId } from '../../domain/listing/listing.decider.js';
import { hasRole, type Actor } from '../../domain/shared/actor.js';
import type { CalendarDate } from '../../domain/shared/calendar-date.js';
import { DomainError, NotFoundError } from '../../domain/shared/domain-error.js';
import { deterministicUuid } from '../ids.js';
import type { CommandSide } from '../command-handlers.js';
import { compensating, givenUpOnFailure, outcome, refusedAfter, takeStep, unpinned, type CommandOutcome } from '../command-handling/command-outcome.js';
import type { CommandOptions, CommandResult } from '../command-handling/handle-command.js';
import { bookingPayment, paidAtProvider } from '../payments/payment-attempts.js';
import type { Position } from '../ports/position.js';
import { holdExpiryName } from '../process-managers/sweeping-process.js';

export type RequestBookingInput = { listingId: string; startDate: CalendarDate; endDate: CalendarDate };

/**
 * Dates first, then the booking: the calendar is the contended resource and its hold expires
 * by itself, so a crash between the two appends leaves only a hold that the expiry process
 * releases, never a booking without dates.
 */
export async function requestBooking(side: CommandSide, input: RequestBookingInput, request: CommandOptions): Promise<CommandOutcome> {
  const bookingId = deterministicUuid('booking', request.commandId);
  const result = (await recordedBefore(side, bookingId, request)) ?? (await bookNew(side, input, bookingId, request));
  await expireIfLapsed(side, result, request);
  return outcome(bookingId, result);
}

/**
 * A retry of a booking that was recorded (its answer lost, or never stored) is answered as it
 * was, before anything is checked again: the listing, the clock and the calendar have moved on
 * since, and could refuse a booking that holds its dates (after midnight, the night it booked is
 * past). Only a retry can find one; a command id made for this request alone spares the read.
 */
async function recordedBefore(side: CommandSide, bookingId: string, request: CommandOptions) {
  if (request.freshCommandId === true) return undefined;
  return side.handlers.booking.applied(bookingStreamId(bookingId), request.commandId);
}

/** Checks the booking against its listing and the clock, then holds the dates and records it. */
async function bookNew(side: CommandSide, input: RequestBookingInput, bookingId: string, request: CommandOptions) {
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
  // A hold left by a failed unkeyed request would keep its client's retry (a new booking) from
  // these dates until it lapsed.
  return givenUpOnFailure(
    request,
    () => holdThenRecord(side, command, request),
    async () => [await abandonBooking(side, { bookingId, listingId: input.listingId }, request)],
  );
}

async function holdThenRecord(side: CommandSide, command: RequestBooking, request: CommandOptions) {
  const { bookingId, listingId, startDate, endDate, holdExpiresAt, now, listing } = command.data;
  const booking = bookingStreamId(bookingId);
  const hold = (displaceable: readonly string[]): HoldDates => ({
    type: 'HoldDates',
    data: { listingId, startDate, endDate, bookingId, holdExpiresAt, now, timeZone: listing.timeZone, displaceable: [...displaceable] },
  });
  const calendar = await takeStep(
    unpinned(request),
    (options) => holdDisplacingUnpaid(side, listingCalendarStreamId(listingId), hold, options),
    // A hold of its own that lapsed keeps nothing from others: a retry finding one holds again.
    (state) => keepsDates(state, bookingId, now),
    // A retry that finds its hold released or lapsed holds again only for a booking still to be made.
    async () => (await side.handlers.booking.read(booking)).state.status === 'none',
  );
  // The booking is held for as long as the calendar holds its dates, which a retry found taken by
  // an earlier try (expiring sooner) or took again. No hold: the booking was recorded by an
  // earlier try, and this append is answered as already applied.
  const mine = liveRangeOf(calendar.state, bookingId);
  const heldUntil = mine?.status === 'held' ? mine.holdExpiresAt : holdExpiresAt;
  return side.handlers.booking.handle(booking, { ...command, data: { ...command.data, holdExpiresAt: heldUntil } }, unpinned(request));
}

/** Gives the booking id up unless the booking was recorded, and then its dates back: the release, if they went. */
async function abandonBooking(side: CommandSide, { bookingId, listingId }: { bookingId: string; listingId: string }, request: CommandOptions) {
  const now = side.clock.now().toISOString();
  const claim = await side.handlers.booking.handle(bookingStreamId(bookingId), { type: 'AbandonBooking', data: { bookingId, now } }, compensating(request, 'abandon'));
  if (claim.state.status !== 'abandoned') return undefined;
  return side.handlers.listingCalendar.handle(
    listingCalendarStreamId(listingId),
    { type: 'ReleaseDates', data: { listingId, bookingId, reason: 'failed', now } },
    compensating(request, 'release'),
  );
}

/**
 * A retry that found its hold still kept may record the booking only once the hold has lapsed,
 * after the sweep found no booking, released the dates and stopped looking after them: a booking
 * without dates that nothing else would expire. So a booking whose hold has lapsed by the time it
 * is recorded is expired here, as the sweep does, and refused as a payment would be. Only the
 * clock is read first: a booking just held has its whole hold ahead of it.
 */
async function expireIfLapsed(
  side: CommandSide,
  requested: { readonly state: BookingState; readonly position: Position },
  request: CommandOptions,
): Promise<void> {
  const { state } = requested;
  if (state.status !== 'requested' || Date.parse(state.booking.holdExpiresAt) > side.clock.now().getTime()) return;
  const { bookingId, holdExpiresAt } = state.booking;
  const lapsed = await expireUnpaidBooking(side, bookingId, compensating(request, 'lapsed'));
  if (lapsed.paid) return;
  const refusal = new DomainError('hold-expired', `the dates were held until ${holdExpiresAt}`);
  refusedAfter(refusal, [requested, lapsed.expired]);
  throw refusal;
}

/**
 * Expires a booking whose hold lapsed while it still waits for its payment; one paid meanwhile
 * (the payment process books its dates) or moved on is left as it is. Answers where it stood,
 * and the expiry if there was one. Our log may be behind the provider (a card taken within the
 * hold, its webhook late), so the provider is asked about the live attempts first: expired, that
 * booking was refunded in full. A success recorded between that look and the expiry's append
 * still loses the booking (and is refunded), as before.
 */
export async function expireUnpaidBooking(
  side: CommandSide,
  bookingId: string,
  request: CommandOptions,
): Promise<{ readonly paid: boolean; readonly expired?: { readonly position: Position } }> {
  const booking = await bookingPayment(side, bookingId);
  if (booking.status !== 'requested' || booking.paid) return booking;
  if (await paidAtProvider(side, bookingId, request.context)) return { paid: true };
  const expire: ExpireBooking = { type: 'ExpireBooking', data: { bookingId, now: side.clock.now().toISOString() } };
  return { paid: false, expired: await side.handlers.booking.handle(bookingStreamId(bookingId), expire, request) };
}

/**
 * Holds the dates, displacing lapsed holds in the way only once their bookings are expired as the
 * sweep would (`expireUnpaidBooking`: our log, then the provider, which may know of a card taken
 * within the hold whose webhook is late). One paid in time keeps its dates until the payment
 * process books them; one expired here stops being payable now, not at the next sweep.
 * Holds lapse while we look, so a few rounds may be needed; past them, the dates count as taken.
 */
async function holdDisplacingUnpaid(
  side: CommandSide,
  calendar: string,
  hold: (displaceable: readonly string[]) => HoldDates,
  options: CommandOptions,
): Promise<CommandResult<ListingCalendarState, ListingCalendarEvent>> {
  const unpaid: string[] = [];
  for (let round = 1; ; round++) {
    try {
      return await side.handlers.listingCalendar.handle(calendar, hold(unpaid), options);
    } catch (error) {
      if (!(error instanceof LapsedHoldsInTheWay)) throw error;
      const expired = await Promise.all(error.bookingIds.map((id) => expiredUnpaid(side, id, options)));
      if (round >= 3 || expired.includes(false)) {
        throw new DomainError('dates-unavailable', 'the dates are held by a booking whose payment went through');
      }
      unpaid.push(...error.bookingIds);
    }
  }
}

/**
 * Whether the booking of a lapsed hold in the way is over unpaid: expired (here, or before), never
 * recorded, or ended otherwise. One that moved on between the look and the expiry (paid, say)
 * keeps its dates this time. The expiry is the system's, as the sweep's is (`system:hold-expiry`),
 * not the requester's: someone else's booking and payment must not list a stranger, with their
 * address, as who changed them. The request stays findable as its cause.
 */
async function expiredUnpaid(side: CommandSide, bookingId: string, request: CommandOptions): Promise<boolean> {
  const { requestId, correlationId, causationId } = request.context;
  const context = { actor: { id: `system:${holdExpiryName}`, roles: [] }, requestId, correlationId, causationId };
  try {
    const options = { commandId: `${request.commandId}:displace`, context, ...(request.freshCommandId ? { freshCommandId: true } : {}) };
    return !(await expireUnpaidBooking(side, bookingId, options)).paid;
  } catch (error) {
    if (error instanceof DomainError) return false;
    throw error;
  }
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
  const released = await releaseDates(side, result.state, 'cancelled', request);
  return outcome(bookingId, result, released);
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

/**
 * Gives the booking's dates back to its listing's calendar; releasing dates already free changes
 * nothing. The calendar's result, for the position a reader must reach to see the dates free.
 */
export async function releaseDates(side: CommandSide, booking: BookingState, reason: ReleaseReason, request: CommandOptions) {
  if (!isRecorded(booking)) return undefined;
  const { listingId, bookingId } = booking.booking;
  return side.handlers.listingCalendar.handle(
    listingCalendarStreamId(listingId),
    { type: 'ReleaseDates', data: { listingId, bookingId, reason, now: side.clock.now().toISOString() } },
    unpinned(request),
  );
}

/** A booking exists for its consumer, the listing's owner and admins; for anyone else it does not. */
async function visibleBooking(side: CommandSide, bookingId: string, actor: Actor) {
  const { state } = await side.handlers.booking.read(bookingStreamId(bookingId));
  const party =
    isRecorded(state) && (actor.id === state.booking.consumerId || actor.id === state.booking.ownerId || hasRole(actor, 'ADMIN'));
  if (!party) throw new NotFoundError(`booking ${bookingId}`);
  return state;
}
