import { fc, test } from '@fast-check/vitest';
import { expect, it } from 'vitest';
import type { Actor } from '../../src/domain/shared/actor.js';
import { addDays } from '../../src/domain/shared/calendar-date.js';
import { DomainError } from '../../src/domain/shared/domain-error.js';
import { ForbiddenError } from '../../src/domain/shared/forbidden-error.js';
import type { BookingCommand } from '../../src/domain/booking/booking.commands.js';
import { bookingDecider, isRecorded, type BookingState } from '../../src/domain/booking/booking.decider.js';
import type { BookingEvent } from '../../src/domain/booking/booking.events.js';

const bookingId = 'booking-p';
const startMs = Date.parse('2026-05-01T08:00:00Z');
const actors: Actor[] = [
  { id: 'consumer-1', roles: ['CONSUMER'] },
  { id: 'owner-1', roles: ['OWNER'] },
  { id: 'admin-1', roles: ['ADMIN'] },
  { id: 'consumer-2', roles: ['CONSUMER'] },
];
const actor = fc.constantFrom(...actors);
const total = (state: BookingState) => (isRecorded(state) ? state.booking.total : 0);
const currencyOf = (state: BookingState) => (isRecorded(state) ? state.booking.currency : 'EUR');

/** A command without its clock and, for payments, the amount the booking asks for. */
type Build = (now: string, state: BookingState) => BookingCommand;

/** The terms of a request that a rule may refuse; the listing's price, zone and currency are any. */
type Terms = {
  consumerId: fc.Arbitrary<string>;
  active: fc.Arbitrary<boolean>;
  startOffset: fc.Arbitrary<number>;
  nights: fc.Arbitrary<number>;
  holdMinutes: fc.Arbitrary<number>;
};
const requestFrom = (terms: Terms): fc.Arbitrary<Build> =>
  fc
    .record({
      ...terms,
      pricePerDay: fc.integer({ min: 1, max: 50_000 }),
      timeZone: fc.constantFrom('UTC', 'Europe/Lisbon', 'Pacific/Auckland'),
      currency: fc.constantFrom('EUR', 'JPY', 'USD'),
    })
    .map(({ consumerId, active, startOffset, nights, pricePerDay, holdMinutes, timeZone, currency }) => (now) => {
      const startDate = addDays(now.slice(0, 10), startOffset);
      return {
        type: 'RequestBooking',
        data: {
          bookingId,
          listingId: 'listing-1',
          consumerId,
          startDate,
          endDate: addDays(startDate, nights),
          holdExpiresAt: new Date(Date.parse(now) + holdMinutes * 60_000).toISOString(),
          now,
          listing: { ownerId: 'owner-1', active, pricePerDay, currency, timeZone },
        },
      };
    });
// Mostly a valid request, now and then one a rule refuses.
const request = requestFrom({
  consumerId: fc.constantFrom('consumer-1', 'consumer-1', 'consumer-1', 'owner-1'),
  active: fc.constantFrom(true, true, true, false),
  startOffset: fc.integer({ min: -1, max: 30 }),
  nights: fc.integer({ min: 0, max: 10 }),
  holdMinutes: fc.integer({ min: -5, max: 60 }),
});
/** A request every rule accepts when made at the start of a run (08:00 UTC: the same date in every zone here). */
const acceptedRequest = requestFrom({
  consumerId: fc.constant('consumer-1'),
  active: fc.constant(true),
  startOffset: fc.integer({ min: 0, max: 30 }),
  nights: fc.integer({ min: 1, max: 10 }),
  holdMinutes: fc.integer({ min: 1, max: 60 }),
});
const markPaid: fc.Arbitrary<Build> = fc
  .record({ paymentId: fc.constantFrom('payment-1', 'payment-2'), off: fc.constantFrom(0, 0, 0, 1), otherCurrency: fc.constantFrom(false, false, false, true) })
  .map(({ paymentId, off, otherCurrency }) => (_now, state) => {
    const currency = otherCurrency ? 'CHF' : currencyOf(state);
    return { type: 'MarkBookingPaid', data: { bookingId, paymentId, amount: total(state) + off, currency } };
  });
const payInFull: Build = (_now, state) => ({ type: 'MarkBookingPaid', data: { bookingId, paymentId: 'payment-1', amount: total(state), currency: currencyOf(state) } });
const confirmIt: Build = () => ({ type: 'ConfirmBooking', data: { bookingId } });
const confirm = fc.constant(confirmIt);
const complete: fc.Arbitrary<Build> = actor.map((actor) => (now) => ({ type: 'CompleteBooking', data: { bookingId, actor, now } }));
const cancel: fc.Arbitrary<Build> = actor.map((actor) => (now) => ({ type: 'CancelBooking', data: { bookingId, actor, reason: 'because', now } }));
const expire: fc.Arbitrary<Build> = fc.constant((now: string) => ({ type: 'ExpireBooking', data: { bookingId, now } }));
const abandonIt: Build = (now) => ({ type: 'AbandonBooking', data: { bookingId, now } });
const abandon = fc.constant(abandonIt);

/**
 * When the next command happens: some hours later, or (so that stays get completed) on the stay's
 * end date or soon after it.
 */
type When = { readonly hoursLater: number } | { readonly hoursAfterEnd: number };
const when: fc.Arbitrary<When> = fc.oneof(
  { weight: 2, arbitrary: fc.record({ hoursLater: fc.oneof(fc.integer({ min: 0, max: 2 }), fc.integer({ min: 0, max: 24 * 10 })) }) },
  { weight: 1, arbitrary: fc.record({ hoursAfterEnd: fc.integer({ min: 0, max: 48 }) }) },
);

/** The clock never goes back. */
function nextClock(clock: number, when: When, state: BookingState): number {
  if ('hoursLater' in when) return clock + when.hoursLater * 3_600_000;
  if (!isRecorded(state)) return clock;
  // The zones here are UTC or east of it: at midnight UTC the end date has begun in all of them.
  return Math.max(clock, Date.parse(`${state.booking.endDate}T00:00:00Z`) + when.hoursAfterEnd * 3_600_000);
}

const step = fc.record({
  when,
  build: fc.oneof(request, { weight: 3, arbitrary: markPaid }, { weight: 2, arbitrary: confirm }, { weight: 2, arbitrary: complete }, cancel, expire, abandon),
});

/** Where one event may take each state. */
const next: Record<BookingState['status'], readonly BookingState['status'][]> = {
  none: ['requested', 'abandoned'],
  abandoned: [],
  requested: ['paid', 'cancelled', 'expired'],
  paid: ['confirmed', 'cancelled'],
  confirmed: ['completed', 'cancelled'],
  completed: [],
  cancelled: [],
  expired: [],
};

function invariants(state: BookingState): void {
  if (!isRecorded(state)) return;
  expect(state.booking.total).toBe(state.booking.nights * state.booking.pricePerNight);
  expect(state.booking.consumerId).not.toBe(state.booking.ownerId);
  if (state.status === 'cancelled') {
    expect(state.refundAmount).toBeLessThanOrEqual(state.payment?.amount ?? 0);
    expect(state.refundAmount).toBeGreaterThanOrEqual(0);
  }
  if (state.status === 'paid' || state.status === 'confirmed' || state.status === 'completed') {
    expect(state.payment.amount).toBe(state.booking.total);
    expect(state.payment.currency).toBe(state.booking.currency);
  }
}

// Most runs start with a request or two, so that the later commands mostly have a booking to work
// on, or with a booking requested, paid and confirmed, so that stays get completed too; a few with
// the id given up, so that every command meets an abandoned booking.
const atOnce = (build: Build) => ({ when: { hoursLater: 0 }, build });
const requests = fc.array(request.map(atOnce), { minLength: 1, maxLength: 2 });
const confirmedBooking = acceptedRequest.map((request) => [request, payInFull, confirmIt].map(atOnce));
const abandoned = fc.constant([atOnce(abandonIt)]);
const steps = fc.tuple(
  fc.oneof({ weight: 2, arbitrary: requests }, { weight: 2, arbitrary: confirmedBooking }, { weight: 1, arbitrary: abandoned }),
  fc.array(step, { minLength: 3, maxLength: 25 }),
);

it('states only move forward and evolve accepts whatever decide emits', () => {
  const numRuns = 200;
  let completedRuns = 0;
  fc.assert(
    fc.property(steps, ([first, rest]) => {
      let state = bookingDecider.initialState;
      let clock = startMs;
      for (const { when, build } of [...first, ...rest]) {
        clock = nextClock(clock, when, state);
        let events: BookingEvent[];
        try {
          events = bookingDecider.decide(build(new Date(clock).toISOString(), state), state);
        } catch (error) {
          if (error instanceof DomainError) continue;
          throw error;
        }
        for (const event of events) {
          const after = bookingDecider.evolve(state, event);
          expect(next[state.status], `${state.status} → ${after.status} by ${event.type}`).toContain(after.status);
          state = after;
        }
        invariants(state);
      }
      if (state.status === 'completed') completedRuns += 1;
    }),
    { numRuns },
  );
  // "Nothing leaves completed" means little unless a fair share of runs get there.
  expect(completedRuns).toBeGreaterThan(numRuns / 10);
});

// Properties from one valid booking, built by construction rather than filtered. Zones without DST,
// so the start of a local day is written out here instead of asking the code under test.
const hourMs = 3_600_000;
const zone = fc.constantFrom({ name: 'UTC', offset: '+00:00' }, { name: 'Asia/Tokyo', offset: '+09:00' }, { name: 'America/Bogota', offset: '-05:00' });
type Zone = { readonly name: string; readonly offset: string };
const offsetMs = ({ offset }: Zone) => (offset.startsWith('-') ? -1 : 1) * (Number(offset.slice(1, 3)) * hourMs + Number(offset.slice(4, 6)) * 60_000);
const localDate = (ms: number, at: Zone) => new Date(ms + offsetMs(at)).toISOString().slice(0, 10);
const startOfLocalDay = (date: string, at: Zone) => Date.parse(`${date}T00:00:00${at.offset}`);
const iso = (ms: number) => new Date(ms).toISOString();

const validRequest = fc.record({
  zone,
  currency: fc.constantFrom('EUR', 'USD', 'JPY', 'GBP'),
  requestedAt: fc.integer({ min: Date.parse('2026-01-01T00:00:00Z'), max: Date.parse('2026-12-01T00:00:00Z') }),
  daysAhead: fc.integer({ min: 0, max: 60 }),
  nights: fc.integer({ min: 1, max: 14 }),
  pricePerDay: fc.integer({ min: 1, max: 50_000 }),
  holdMinutes: fc.integer({ min: 1, max: 60 }),
});
type ValidRequest = typeof validRequest extends fc.Arbitrary<infer T> ? T : never;

function requestOf(given: ValidRequest): BookingCommand & { type: 'RequestBooking' } {
  const startDate = addDays(localDate(given.requestedAt, given.zone), given.daysAhead);
  return {
    type: 'RequestBooking',
    data: {
      bookingId,
      listingId: 'listing-1',
      consumerId: 'consumer-1',
      startDate,
      endDate: addDays(startDate, given.nights),
      holdExpiresAt: iso(given.requestedAt + given.holdMinutes * 60_000),
      now: iso(given.requestedAt),
      listing: { ownerId: 'owner-1', active: true, pricePerDay: given.pricePerDay, currency: given.currency, timeZone: given.zone.name },
    },
  };
}

function fold(commands: readonly BookingCommand[]): BookingState {
  return commands.reduce((state, command) => bookingDecider.decide(command, state).reduce(bookingDecider.evolve, state), bookingDecider.initialState);
}

/** The booking requested, and then paid and confirmed as far as `upTo` asks. */
function bookingAt(given: ValidRequest, upTo: 'requested' | 'paid' | 'confirmed'): BookingState {
  const request = requestOf(given);
  const total = given.nights * given.pricePerDay;
  const paid: BookingCommand = { type: 'MarkBookingPaid', data: { bookingId, paymentId: 'payment-1', amount: total, currency: given.currency } };
  const confirmed: BookingCommand = { type: 'ConfirmBooking', data: { bookingId } };
  return fold(upTo === 'requested' ? [request] : upTo === 'paid' ? [request, paid] : [request, paid, confirmed]);
}

function refusal(run: () => unknown): unknown {
  try {
    run();
  } catch (error) {
    return error;
  }
  return undefined;
}

const codeOf = (error: unknown) => (error instanceof DomainError ? error.code : String(error));

test.prop([validRequest])('given a valid request, when decided, then the booking is requested with its terms', (given) => {
  const events = bookingDecider.decide(requestOf(given), bookingDecider.initialState);

  expect(events).toMatchObject([
    { type: 'BookingRequested', data: { nights: given.nights, total: given.nights * given.pricePerDay, currency: given.currency, consumerId: 'consumer-1', ownerId: 'owner-1' } },
  ]);
});

test.prop([validRequest, fc.integer({ min: 1, max: 30 })])('given a start date before today in the listing\'s zone, when requested, then it is refused', (given, daysBack) => {
  const request = requestOf(given);
  const startDate = addDays(localDate(given.requestedAt, given.zone), -daysBack);
  const past = { ...request, data: { ...request.data, startDate, endDate: addDays(startDate, given.nights) } };

  expect(codeOf(refusal(() => bookingDecider.decide(past, bookingDecider.initialState)))).toBe('dates-in-past');
});

test.prop([validRequest, fc.constantFrom('EUR', 'USD', 'JPY', 'GBP', 'CHF')])(
  'given a requested booking, when paid its total, then it is paid only in its own currency',
  (given, currency) => {
    const state = bookingAt(given, 'requested');
    const pay: BookingCommand = { type: 'MarkBookingPaid', data: { bookingId, paymentId: 'payment-1', amount: given.nights * given.pricePerDay, currency } };

    if (currency === given.currency) expect(bookingDecider.decide(pay, state)).toMatchObject([{ type: 'BookingPaid' }]);
    else expect(codeOf(refusal(() => bookingDecider.decide(pay, state)))).toBe('payment-mismatch');
  },
);

const anyone = fc.constantFrom<Actor>(
  { id: 'consumer-1', roles: ['CONSUMER'] },
  { id: 'owner-1', roles: ['OWNER'] },
  { id: 'admin-1', roles: ['ADMIN'] },
  { id: 'consumer-1', roles: ['CONSUMER', 'ADMIN'] },
  { id: 'consumer-2', roles: ['CONSUMER'] },
  { id: 'owner-2', roles: ['OWNER'] },
  { id: 'doctor-1', roles: ['DOCTOR', 'AUDITOR'] },
);
const cancellerOf = (actor: Actor) =>
  actor.id === 'consumer-1' ? 'consumer' : actor.id === 'owner-1' ? 'owner' : actor.roles.includes('ADMIN') ? 'admin' : null;

test.prop([validRequest, fc.constantFrom('requested', 'paid', 'confirmed' as const), anyone])(
  'given a live booking, when someone cancels it, then only its consumer, its owner or an admin may',
  (given, upTo, actor) => {
    const state = bookingAt(given, upTo);
    const cancel: BookingCommand = { type: 'CancelBooking', data: { bookingId, actor, reason: 'plans changed', now: iso(given.requestedAt) } };

    const canceller = cancellerOf(actor);
    if (canceller) expect(bookingDecider.decide(cancel, state)).toMatchObject([{ type: 'BookingCancelled', data: { cancelledBy: canceller } }]);
    else expect(refusal(() => bookingDecider.decide(cancel, state))).toBeInstanceOf(ForbiddenError);
  },
);

test.prop([validRequest, fc.double({ min: 0, max: 1, noNaN: true })])(
  'given a requested booking, when expired, then it is refused until its hold lapses and accepted from then on',
  (given, fraction) => {
    const state = bookingAt(given, 'requested');
    const holdMs = given.holdMinutes * 60_000;
    const before = given.requestedAt + Math.min(holdMs - 1, Math.floor(fraction * holdMs));
    const expire = (now: number): BookingCommand => ({ type: 'ExpireBooking', data: { bookingId, now: iso(now) } });

    expect(codeOf(refusal(() => bookingDecider.decide(expire(before), state)))).toBe('hold-not-expired');
    expect(bookingDecider.decide(expire(given.requestedAt + holdMs), state)).toEqual([{ type: 'BookingExpired', data: { bookingId } }]);
  },
);

test.prop([validRequest, fc.integer({ min: 1, max: 20 * 24 * 60 })])(
  'given a confirmed booking, when completed, then it is refused before the end date begins and accepted from it',
  (given, minutesAround) => {
    const state = bookingAt(given, 'confirmed');
    const endDate = addDays(addDays(localDate(given.requestedAt, given.zone), given.daysAhead), given.nights);
    const endStarts = startOfLocalDay(endDate, given.zone);
    const complete = (now: number): BookingCommand => ({ type: 'CompleteBooking', data: { bookingId, actor: { id: 'owner-1', roles: ['OWNER'] }, now: iso(now) } });

    expect(codeOf(refusal(() => bookingDecider.decide(complete(endStarts - minutesAround * 60_000), state)))).toBe('stay-not-over');
    expect(bookingDecider.decide(complete(endStarts + (minutesAround - 1) * 60_000), state)).toEqual([{ type: 'BookingCompleted', data: { bookingId } }]);
  },
);

test.prop([validRequest, fc.integer({ min: 0, max: 20 * 24 * 60 }), anyone.filter((actor) => cancellerOf(actor) !== null)])(
  'given a confirmed stay that is over, when cancelled, then it is refused, and once completed too',
  (given, minutesAfter, actor) => {
    const state = bookingAt(given, 'confirmed');
    const endDate = addDays(addDays(localDate(given.requestedAt, given.zone), given.daysAhead), given.nights);
    const now = startOfLocalDay(endDate, given.zone) + minutesAfter * 60_000;
    const cancel: BookingCommand = { type: 'CancelBooking', data: { bookingId, actor, reason: 'too late', now: iso(now) } };

    expect(codeOf(refusal(() => bookingDecider.decide(cancel, state)))).toBe('stay-over');
    const done = bookingDecider
      .decide({ type: 'CompleteBooking', data: { bookingId, actor: { id: 'owner-1', roles: ['OWNER'] }, now: iso(now) } }, state)
      .reduce(bookingDecider.evolve, state);
    expect(codeOf(refusal(() => bookingDecider.decide(cancel, done)))).toBe('illegal-transition');
  },
);

/** Minutes before the stay's first local midnight; the policy's thresholds are 168 h and 48 h. */
const minutesBeforeStart = fc.oneof(
  fc.constantFrom(168 * 60, 168 * 60 - 1, 48 * 60, 48 * 60 - 1, 0, 1),
  fc.integer({ min: -24 * 60 + 1, max: 400 * 60 }),
);

test.prop([validRequest, fc.constantFrom('paid', 'confirmed' as const), minutesBeforeStart, anyone.filter((actor) => cancellerOf(actor) !== null)])(
  'given a paid booking, when cancelled, then the consumer gets 100 % from 7 days before the start, 50 % from 48 h, else nothing; others always 100 %',
  (given, upTo, minutesBefore, actor) => {
    const startDate = addDays(localDate(given.requestedAt, given.zone), given.daysAhead);
    const now = startOfLocalDay(startDate, given.zone) - minutesBefore * 60_000;
    const state = bookingAt(given, upTo);
    const cancel: BookingCommand = { type: 'CancelBooking', data: { bookingId, actor, reason: 'plans changed', now: iso(now) } };

    const expected = cancellerOf(actor) !== 'consumer' ? 100 : minutesBefore >= 168 * 60 ? 100 : minutesBefore >= 48 * 60 ? 50 : 0;
    const total = given.nights * given.pricePerDay;
    expect(bookingDecider.decide(cancel, state)).toMatchObject([
      { type: 'BookingCancelled', data: { refundPercent: expected, refundAmount: Math.floor((total * expected) / 100), currency: given.currency } },
    ]);
  },
);

test.prop([validRequest, fc.constantFrom('requested', 'paid', 'confirmed' as const), anyone.filter((actor) => cancellerOf(actor) !== null), anyone, fc.integer({ min: 0, max: 90 * 24 })])(
  'given a cancelled booking, when cancelled again at any time, then the party that cancelled it changes nothing, another is refused as already cancelled',
  (given, upTo, first, second, hoursLater) => {
    const cancel = (actor: Actor, now: number): BookingCommand => ({ type: 'CancelBooking', data: { bookingId, actor, reason: 'plans changed', now: iso(now) } });
    const live = bookingAt(given, upTo);
    const state = bookingDecider.decide(cancel(first, given.requestedAt), live).reduce(bookingDecider.evolve, live);
    const again = () => bookingDecider.decide(cancel(second, given.requestedAt + hoursLater * hourMs), state);

    const capacity = cancellerOf(second);
    if (capacity === null) expect(refusal(again)).toBeInstanceOf(ForbiddenError);
    else if (capacity === cancellerOf(first)) expect(again()).toEqual([]);
    else expect(codeOf(refusal(again))).toBe('already-cancelled');
  },
);

const anyCommand = fc.oneof(request, markPaid, confirm, complete, cancel, expire, abandon);

test.prop([fc.array(anyCommand, { minLength: 1, maxLength: 10 }), fc.integer({ min: 0, max: 10 * 24 })])(
  'given an abandoned booking id, when any command comes, then a request is refused as abandoned, the rest as for a missing booking, and nothing changes',
  (builds, hoursLater) => {
    const state = bookingDecider.decide(abandonIt(iso(startMs), bookingDecider.initialState), bookingDecider.initialState).reduce(bookingDecider.evolve, bookingDecider.initialState);
    expect(state).toEqual({ status: 'abandoned' });

    for (const build of builds) {
      const command = build(iso(startMs + hoursLater * hourMs), state);
      const decided = () => bookingDecider.decide(command, state);
      if (command.type === 'AbandonBooking') expect(decided()).toEqual([]);
      else expect(codeOf(refusal(decided))).toBe(command.type === 'RequestBooking' ? 'booking-abandoned' : 'not-found');
    }
  },
);

test.prop([validRequest, fc.constantFrom('requested', 'paid', 'confirmed' as const), fc.constantFrom('as it is', 'cancelled', 'expired' as const)])(
  'given a recorded booking, whatever became of it, when its id is given up, then nothing changes: it keeps its dates',
  (given, upTo, then) => {
    const live = bookingAt(given, upTo);
    const later = iso(given.requestedAt + given.holdMinutes * 60_000);
    const end: BookingCommand | undefined =
      then === 'cancelled'
        ? { type: 'CancelBooking', data: { bookingId, actor: { id: 'admin-1', roles: ['ADMIN'] }, reason: 'gone', now: iso(given.requestedAt) } }
        : then === 'expired' && upTo === 'requested'
          ? { type: 'ExpireBooking', data: { bookingId, now: later } }
          : undefined;
    const state = end ? bookingDecider.decide(end, live).reduce(bookingDecider.evolve, live) : live;

    expect(bookingDecider.decide(abandonIt(later, state), state)).toEqual([]);
  },
);
