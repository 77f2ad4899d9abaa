import { addDays, type CalendarDate, type Instant } from '../shared/calendar-date.js';
import type { DateRange } from '../shared/date-range.js';
import { assertNever, type Decider } from '../shared/decider.js';
import { DomainError } from '../shared/domain-error.js';
import type { BookDates, HoldDates, ListingCalendarCommand, ReleaseDates } from './listing-calendar.commands.js';
import type { ListingCalendarEvent, ReleaseReason } from './listing-calendar.events.js';
import { assertBookableRange, todayIn } from './stay-range.rules.js';

export const listingCalendarStreamId = (listingId: string) => `listingCalendar-${listingId}`;

/** Dates one booking keeps from everyone else: held while it is being paid, then booked. */
export type LiveRange = { readonly bookingId: string; readonly startDate: CalendarDate; readonly endDate: CalendarDate } & (
  | { readonly status: 'held'; readonly holdExpiresAt: Instant }
  | { readonly status: 'booked' }
);

/**
 * The calendar has no lifecycle of its own (it exists as soon as a listing does), so its state
 * is one shape rather than a union keyed by status; the union is on each live range instead.
 * Only what can still block a new hold or be booked is kept, so the state stays small however
 * long the stream grows: released ranges are removed, and so are booked ranges that ended by
 * `openFrom`.
 */
export type ListingCalendarState = {
  /** The listing takes no bookings (deactivated): no new hold is granted. */
  readonly closed: boolean;
  /**
   * The latest "today" on which a hold was taken, in the listing's time zone then. No new hold
   * may start more than `zoneSpreadDays` before it (see `earliestStart`).
   */
  readonly openFrom: CalendarDate | null;
  /**
   * Live ranges in date order. No two overlap, so their end dates are in order too: the ranges a
   * new one meets, and those ended by `openFrom`, are found by bisection, and every event costs
   * a copy of this array rather than a rebuilt dictionary (a busy listing has hundreds).
   */
  readonly live: readonly LiveRange[];
};

export const initialState: ListingCalendarState = { closed: false, openFrom: null, live: [] };

/**
 * How far apart "today" can be in two time zones (UTC+14 and UTC−12: two dates). A listing's
 * zone may change; a stay may start on today's date in its zone now, which can be before the
 * `openFrom` a hold taken under the old zone left (a day behind after a move from Kiritimati to
 * Pago Pago). So booked ranges are pruned only once they ended by this much before `openFrom`,
 * and no hold may start before that: pruning never drops a range a new hold could meet.
 */
const zoneSpreadDays = 2;

/** The first day a new hold may start on, whatever the listing's time zone is now. */
function earliestStart(openFrom: CalendarDate): CalendarDate {
  return addDays(openFrom, -zoneSpreadDays);
}

export function liveRangeOf(state: ListingCalendarState, bookingId: string): LiveRange | undefined {
  return state.live.find((range) => range.bookingId === bookingId);
}

/**
 * Whether the booking's dates are kept from everyone else at `now`: booked, or held and not
 * lapsed. A lapsed hold is still live (it may yet be booked) but anyone may displace it.
 */
export function keepsDates(state: ListingCalendarState, bookingId: string, now: Instant): boolean {
  const range = liveRangeOf(state, bookingId);
  return range !== undefined && !isLapsed(range, now);
}

/** Index of the first live range ending after `date` (the length if none does). */
function firstEndingAfter(live: readonly LiveRange[], date: CalendarDate): number {
  let low = 0;
  let high = live.length;
  while (low < high) {
    const middle = (low + high) >> 1;
    if ((live[middle]?.endDate ?? date) <= date) low = middle + 1;
    else high = middle;
  }
  return low;
}

/** The live ranges that overlap `range`, in date order. */
function overlapping(live: readonly LiveRange[], range: DateRange): LiveRange[] {
  const found: LiveRange[] = [];
  for (let i = firstEndingAfter(live, range.startDate); i < live.length; i++) {
    const other = live[i];
    if (!other || other.startDate >= range.endDate) break;
    found.push(other);
  }
  return found;
}

/** A hold whose expiry has passed: it no longer blocks anyone, but stays until released or displaced. */
function isLapsed(range: LiveRange, now: Instant): boolean {
  return range.status === 'held' && Date.parse(range.holdExpiresAt) <= Date.parse(now);
}

function released(listingId: string, bookingId: string, range: DateRange, reason: ReleaseReason): ListingCalendarEvent {
  return { type: 'DatesReleased', data: { listingId, bookingId, startDate: range.startDate, endDate: range.endDate, reason } };
}

/**
 * Lapsed holds in the way of a new hold, which the command did not name as displaceable: the
 * caller finds out whether their payments went through, and holds again naming those that did not.
 */
export class LapsedHoldsInTheWay extends DomainError {
  constructor(readonly bookingIds: readonly string[]) {
    super('lapsed-holds-in-the-way', `lapsed holds of ${bookingIds.join(', ')} are in the way; their payments are still to be checked`);
  }
}

/**
 * Lapsed holds that overlap the new range are released (reason `expired`) in the same decision,
 * so the state never holds two overlapping ranges; the process manager's own release of them
 * later finds nothing to do. Only those the command names as displaceable are: the others may
 * have been paid in time. A lapsed hold nobody competes for stays, and may still be booked.
 * The booking's own lapsed hold (a retried request whose first try died before recording the
 * booking) is taken again like a new one, so its booking is never told of a hold the calendar
 * no longer keeps for it.
 */
function holdDates({ data }: HoldDates, state: ListingCalendarState): ListingCalendarEvent[] {
  const range: DateRange = { startDate: data.startDate, endDate: data.endDate };
  const mine = liveRangeOf(state, data.bookingId);
  if (mine && (mine.startDate !== range.startDate || mine.endDate !== range.endDate)) {
    throw new DomainError('booking-holds-other-dates', `booking ${data.bookingId} already holds other dates`);
  }
  if (mine && !isLapsed(mine, data.now)) return [];
  if (state.closed) throw new DomainError('listing-inactive', `listing ${data.listingId} takes no bookings`);
  const zoneToday = todayIn(data.timeZone, data.now);
  const earliest = state.openFrom === null ? zoneToday : earliestStart(state.openFrom);
  const today = earliest > zoneToday ? earliest : zoneToday;
  assertBookableRange(range, today);
  if (Date.parse(data.holdExpiresAt) <= Date.parse(data.now)) {
    throw new DomainError('invalid-hold-expiry', 'a hold must expire after now');
  }
  const blocking = overlapping(state.live, range).filter((live) => live !== mine);
  if (blocking.some((live) => !isLapsed(live, data.now))) {
    throw new DomainError('dates-unavailable', `${range.startDate}..${range.endDate} overlaps dates another booking holds or has booked`);
  }
  const displaceable = new Set(data.displaceable);
  const unchecked = blocking.filter((live) => !displaceable.has(live.bookingId));
  if (unchecked.length > 0) throw new LapsedHoldsInTheWay(unchecked.map((live) => live.bookingId));
  const { listingId, bookingId, holdExpiresAt } = data;
  return [
    ...blocking.map((live) => released(listingId, live.bookingId, live, 'expired')),
    { type: 'DatesHeld', data: { listingId, bookingId, ...range, holdExpiresAt, heldOn: today } },
  ];
}

function bookDates({ data }: BookDates, state: ListingCalendarState): ListingCalendarEvent[] {
  const live = liveRangeOf(state, data.bookingId);
  if (!live) throw new DomainError('not-held', `booking ${data.bookingId} holds no dates on this calendar`);
  if (live.status === 'booked') return [];
  const { listingId, bookingId } = data;
  return [{ type: 'DatesBooked', data: { listingId, bookingId, startDate: live.startDate, endDate: live.endDate } }];
}

/** Releasing dates that are not (or no longer) live is already true: no events. */
function releaseDates({ data }: ReleaseDates, state: ListingCalendarState): ListingCalendarEvent[] {
  const live = liveRangeOf(state, data.bookingId);
  if (!live) return [];
  if (live.status === 'booked' && data.reason !== 'cancelled') {
    throw new DomainError('illegal-transition', `booked dates are released only by a cancellation, not as ${data.reason}`);
  }
  if (data.reason === 'expired' && !isLapsed(live, data.now)) {
    throw new DomainError('hold-not-expired', `the hold of booking ${data.bookingId} has not expired yet`);
  }
  return [released(data.listingId, data.bookingId, live, data.reason)];
}

export function decide(command: ListingCalendarCommand, state: ListingCalendarState): ListingCalendarEvent[] {
  switch (command.type) {
    case 'CloseCalendar':
      if (!state.closed) return [{ type: 'CalendarClosed', data: { listingId: command.data.listingId } }];
      return command.data.afterDeactivation ? [{ type: 'CalendarClosed', data: { listingId: command.data.listingId, alreadyClosed: true } }] : [];
    case 'ReopenCalendar':
      return state.closed ? [{ type: 'CalendarReopened', data: { listingId: command.data.listingId } }] : [];
    case 'HoldDates':
      return holdDates(command, state);
    case 'BookDates':
      return bookDates(command, state);
    case 'ReleaseDates':
      return releaseDates(command, state);
    default:
      return assertNever(command);
  }
}

export function evolve(state: ListingCalendarState, event: ListingCalendarEvent): ListingCalendarState {
  switch (event.type) {
    case 'DatesHeld': {
      const { bookingId, startDate, endDate, holdExpiresAt, heldOn } = event.data;
      const openFrom = state.openFrom !== null && state.openFrom > heldOn ? state.openFrom : heldOn;
      const held: LiveRange = { bookingId, status: 'held', startDate, endDate, holdExpiresAt };
      // A booking holding its lapsed dates again replaces its own range.
      const others = liveRangeOf(state, bookingId) ? state.live.filter((range) => range.bookingId !== bookingId) : state.live;
      // Booked ranges that ended by `earliestStart(openFrom)` can block nothing any more. A hold
      // that did is kept until it is booked or released: its booking may still be paid in time
      // (held at 23:55 for that night, paid at 00:05), and no new hold can reach back to its dates.
      const cut = firstEndingAfter(others, earliestStart(openFrom));
      const stillRelevant = [...others.slice(0, cut).filter((range) => range.status === 'held'), ...others.slice(cut)];
      const at = firstEndingAfter(stillRelevant, startDate);
      return { ...state, openFrom, live: stillRelevant.toSpliced(at, 0, held) };
    }
    case 'DatesBooked': {
      const { bookingId, startDate, endDate } = event.data;
      const booked: LiveRange = { bookingId, status: 'booked', startDate, endDate };
      return { ...state, live: state.live.map((range) => (range.bookingId === bookingId ? booked : range)) };
    }
    case 'DatesReleased':
      return { ...state, live: state.live.filter((range) => range.bookingId !== event.data.bookingId) };
    case 'CalendarClosed':
      return { ...state, closed: true };
    case 'CalendarReopened':
      return { ...state, closed: false };
    default:
      return assertNever(event);
  }
}

export const listingCalendarDecider: Decider<ListingCalendarCommand, ListingCalendarEvent, ListingCalendarState> = {
  initialState,
  decide,
  evolve,
};
