import { hasRole, type Actor } from '../shared/actor.js';
import { nights } from '../shared/date-range.js';
import { assertNever, type Decider } from '../shared/decider.js';
import { DomainError, NotFoundError } from '../shared/domain-error.js';
import { ForbiddenError } from '../shared/forbidden-error.js';
import { percentOf } from '../shared/money.js';
import { assertBookableRange, todayIn } from '../listing-calendar/stay-range.rules.js';
import type {
  AbandonBooking,
  BookingCommand,
  CancelBooking,
  CompleteBooking,
  ConfirmBooking,
  ExpireBooking,
  MarkBookingPaid,
  RequestBooking,
} from './booking.commands.js';
import type { BookingEvent, BookingRequestedData, Canceller } from './booking.events.js';
import { refundPercent } from './cancellation.policy.js';

export const bookingStreamId = (bookingId: string) => `booking-${bookingId}`;

export type BookingPayment = { readonly paymentId: string; readonly amount: number; readonly currency: string };

export type BookingState =
  | { readonly status: 'none' }
  /** Its id given up before the booking was recorded (see `BookingAbandoned`): as good as none, for ever. */
  | { readonly status: 'abandoned' }
  | { readonly status: 'requested'; readonly booking: BookingRequestedData }
  | { readonly status: 'paid'; readonly booking: BookingRequestedData; readonly payment: BookingPayment }
  | { readonly status: 'confirmed'; readonly booking: BookingRequestedData; readonly payment: BookingPayment }
  | { readonly status: 'completed'; readonly booking: BookingRequestedData; readonly payment: BookingPayment }
  | {
      readonly status: 'cancelled';
      readonly booking: BookingRequestedData;
      readonly payment: BookingPayment | null;
      readonly cancelledBy: Canceller;
      /** What the policy granted when it was cancelled, paid or not. */
      readonly refundPercent: number;
      readonly refundAmount: number;
    }
  | { readonly status: 'expired'; readonly booking: BookingRequestedData };

export const initialState: BookingState = { status: 'none' };

/** A booking that was recorded, whatever became of it since: neither not yet made nor given up. */
export type RecordedBooking = Exclude<BookingState, { status: 'none' | 'abandoned' }>;

export function isRecorded(state: BookingState): state is RecordedBooking {
  return state.status !== 'none' && state.status !== 'abandoned';
}

function existing(state: BookingState, bookingId: string): RecordedBooking {
  if (!isRecorded(state)) throw new NotFoundError(`booking ${bookingId}`);
  return state;
}

function paymentOf(state: RecordedBooking): BookingPayment | null {
  return state.status === 'requested' || state.status === 'expired' ? null : state.payment;
}

/**
 * The consumer first, then the owner, then an admin: an admin cancelling their own stay gets
 * the consumer's refund, not an admin's. Anyone else may not cancel.
 */
function cancellerOf(actor: Actor, booking: BookingRequestedData): Canceller | null {
  if (actor.id === booking.consumerId) return 'consumer';
  if (actor.id === booking.ownerId) return 'owner';
  return hasRole(actor, 'ADMIN') ? 'admin' : null;
}

const cancellerNames: Record<Canceller, string> = { consumer: 'its consumer', owner: 'its owner', admin: 'an admin' };

/**
 * The party that cancelled asking again is a retry, answered with the booking as it is. Another
 * party is refused: answered alike, they would believe their own cancellation, with its refund
 * and their reason, had happened.
 */
function repeatCancellation(cancelledBy: Canceller, asking: Canceller): BookingEvent[] {
  if (asking === cancelledBy) return [];
  throw new DomainError('already-cancelled', `the booking was cancelled by ${cancellerNames[cancelledBy]}`);
}

function illegal(state: RecordedBooking, what: string): DomainError {
  return new DomainError('illegal-transition', `a ${state.status} booking cannot be ${what}`);
}

function requestBooking({ data }: RequestBooking, state: BookingState): BookingEvent[] {
  if (state.status === 'abandoned') {
    throw new DomainError('booking-abandoned', `booking ${data.bookingId} was given up after its request failed; book again`);
  }
  if (state.status !== 'none') throw new DomainError('already-exists', `booking ${data.bookingId} already exists`);
  const { listing } = data;
  if (data.consumerId === listing.ownerId) throw new DomainError('own-listing', 'an owner cannot book their own listing');
  if (!listing.active) throw new DomainError('listing-inactive', `listing ${data.listingId} takes no bookings`);
  const range = { startDate: data.startDate, endDate: data.endDate };
  assertBookableRange(range, todayIn(listing.timeZone, data.now));
  if (Date.parse(data.holdExpiresAt) <= Date.parse(data.now)) {
    throw new DomainError('invalid-hold-expiry', 'a hold must expire after now');
  }
  const total = nights(range) * listing.pricePerDay;
  if (!Number.isSafeInteger(listing.pricePerDay) || listing.pricePerDay <= 0 || !Number.isSafeInteger(total)) {
    throw new DomainError('invalid-price', 'the listing price must be a positive whole number of minor units');
  }
  const { bookingId, listingId, consumerId, holdExpiresAt } = data;
  const { ownerId, pricePerDay: pricePerNight, currency, timeZone } = listing;
  const terms = { nights: nights(range), pricePerNight, total, currency, timeZone, holdExpiresAt };
  return [{ type: 'BookingRequested', data: { bookingId, listingId, consumerId, ownerId, ...range, ...terms } }];
}

/** The same payment reported again is already true; a second, different payment is refused so that it gets refunded. */
function markBookingPaid({ data }: MarkBookingPaid, state: BookingState): BookingEvent[] {
  const current = existing(state, data.bookingId);
  if (paymentOf(current)?.paymentId === data.paymentId) return [];
  if (current.status === 'cancelled' || current.status === 'expired') throw illegal(current, 'paid');
  if (current.status !== 'requested') throw new DomainError('already-paid', `booking ${data.bookingId} is paid already`);
  const { total, currency } = current.booking;
  if (data.amount !== total || data.currency !== currency) {
    throw new DomainError('payment-mismatch', `paid ${data.amount} ${data.currency}, the booking costs ${total} ${currency}`);
  }
  const { bookingId, paymentId, amount } = data;
  return [{ type: 'BookingPaid', data: { bookingId, paymentId, amount, currency } }];
}

function confirmBooking({ data }: ConfirmBooking, state: BookingState): BookingEvent[] {
  const current = existing(state, data.bookingId);
  if (current.status === 'confirmed' || current.status === 'completed') return [];
  if (current.status !== 'paid') throw illegal(current, 'confirmed');
  return [{ type: 'BookingConfirmed', data: { bookingId: data.bookingId } }];
}

/** The stay is over on its end date (the check-out day, the first day not in `[start, end)`). */
function completeBooking({ data }: CompleteBooking, state: BookingState): BookingEvent[] {
  const current = existing(state, data.bookingId);
  const { booking } = current;
  if (data.actor.id !== booking.ownerId && !hasRole(data.actor, 'ADMIN')) {
    throw new ForbiddenError('only the owner or an admin may complete a booking');
  }
  if (current.status === 'completed') return [];
  if (current.status !== 'confirmed') throw illegal(current, 'completed');
  if (todayIn(booking.timeZone, data.now) < booking.endDate) {
    throw new DomainError('stay-not-over', `the stay ends on ${booking.endDate}`);
  }
  return [{ type: 'BookingCompleted', data: { bookingId: data.bookingId } }];
}

function cancelBooking({ data }: CancelBooking, state: BookingState): BookingEvent[] {
  const current = existing(state, data.bookingId);
  const { booking } = current;
  const cancelledBy = cancellerOf(data.actor, booking);
  if (!cancelledBy) throw new ForbiddenError('only the consumer, the owner or an admin may cancel a booking');
  if (current.status === 'cancelled') return repeatCancellation(current.cancelledBy, cancelledBy);
  if (current.status === 'completed' || current.status === 'expired') throw illegal(current, 'cancelled');
  // A confirmed stay that is over was had: cancelling it refunded the owner's or an admin's 100 %
  // of it, and its dates, already dropped from the calendar, stayed booked in every read model.
  if (current.status === 'confirmed' && todayIn(booking.timeZone, data.now) >= booking.endDate) {
    throw new DomainError('stay-over', `the stay ended on ${booking.endDate}: complete it rather than cancel it`);
  }
  const percent = refundPercent(cancelledBy, data.now, booking.startDate, booking.timeZone);
  const payment = paymentOf(current);
  const refundAmount = payment ? percentOf(payment.amount, percent) : 0;
  const { bookingId, reason } = data;
  const refund = { refundPercent: percent, refundAmount, currency: booking.currency };
  return [{ type: 'BookingCancelled', data: { bookingId, cancelledBy, cancelledById: data.actor.id, reason, ...refund } }];
}

function expireBooking({ data }: ExpireBooking, state: BookingState): BookingEvent[] {
  const current = existing(state, data.bookingId);
  if (current.status === 'expired') return [];
  if (current.status !== 'requested') throw illegal(current, 'expired');
  if (Date.parse(data.now) < Date.parse(current.booking.holdExpiresAt)) {
    throw new DomainError('hold-not-expired', `the hold runs until ${current.booking.holdExpiresAt}`);
  }
  return [{ type: 'BookingExpired', data: { bookingId: data.bookingId } }];
}

/** Only a booking not recorded yet is given up; one recorded meanwhile stays, and keeps its dates. */
function abandonBooking({ data }: AbandonBooking, state: BookingState): BookingEvent[] {
  if (state.status !== 'none') return [];
  return [{ type: 'BookingAbandoned', data: { bookingId: data.bookingId, abandonedAt: data.now } }];
}

export function decide(command: BookingCommand, state: BookingState): BookingEvent[] {
  switch (command.type) {
    case 'RequestBooking':
      return requestBooking(command, state);
    case 'MarkBookingPaid':
      return markBookingPaid(command, state);
    case 'ConfirmBooking':
      return confirmBooking(command, state);
    case 'CompleteBooking':
      return completeBooking(command, state);
    case 'CancelBooking':
      return cancelBooking(command, state);
    case 'ExpireBooking':
      return expireBooking(command, state);
    case 'AbandonBooking':
      return abandonBooking(command, state);
    default:
      return assertNever(command);
  }
}

/** Total: an event that does not fit the state (never emitted by `decide`) leaves it as it is. */
export function evolve(state: BookingState, event: BookingEvent): BookingState {
  switch (event.type) {
    case 'BookingRequested':
      return { status: 'requested', booking: event.data };
    case 'BookingPaid': {
      if (state.status !== 'requested') return state;
      const { paymentId, amount, currency } = event.data;
      return { status: 'paid', booking: state.booking, payment: { paymentId, amount, currency } };
    }
    case 'BookingConfirmed':
      return state.status === 'paid' ? { ...state, status: 'confirmed' } : state;
    case 'BookingCompleted':
      return state.status === 'confirmed' ? { ...state, status: 'completed' } : state;
    case 'BookingCancelled':
      if (!isRecorded(state)) return state;
      return {
        status: 'cancelled',
        booking: state.booking,
        payment: paymentOf(state),
        cancelledBy: event.data.cancelledBy,
        refundPercent: event.data.refundPercent,
        refundAmount: event.data.refundAmount,
      };
    case 'BookingExpired':
      return state.status === 'requested' ? { status: 'expired', booking: state.booking } : state;
    case 'BookingAbandoned':
      return state.status === 'none' ? { status: 'abandoned' } : state;
    default:
      return assertNever(event);
  }
}

export const bookingDecider: Decider<BookingCommand, BookingEvent, BookingState> = { initialState, decide, evolve };
