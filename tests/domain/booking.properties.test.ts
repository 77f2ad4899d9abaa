import { fc, test } from '@fast-check/vitest';
import { expect } from 'vitest';
import type { Actor } from '../../src/domain/shared/actor.js';
import { addDays } from '../../src/domain/shared/calendar-date.js';
import { DomainError } from '../../src/domain/shared/domain-error.js';
import type { BookingCommand } from '../../src/domain/booking/booking.commands.js';
import { bookingDecider, type BookingState } from '../../src/domain/booking/booking.decider.js';
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
const total = (state: BookingState) => (state.status === 'none' ? 0 : state.booking.total);

/** A command without its clock and, for payments, the amount the booking asks for. */
type Build = (now: string, state: BookingState) => BookingCommand;

const request: fc.Arbitrary<Build> = fc
  .record({
    // Mostly a valid request, now and then one a rule refuses.
    consumerId: fc.constantFrom('consumer-1', 'consumer-1', 'consumer-1', 'owner-1'),
    active: fc.constantFrom(true, true, true, false),
    startOffset: fc.integer({ min: -1, max: 30 }),
    nights: fc.integer({ min: 0, max: 10 }),
    pricePerDay: fc.integer({ min: 1, max: 50_000 }),
    holdMinutes: fc.integer({ min: -5, max: 60 }),
    timeZone: fc.constantFrom('UTC', 'Europe/Lisbon', 'Pacific/Auckland'),
  })
  .map(({ consumerId, active, startOffset, nights, pricePerDay, holdMinutes, timeZone }) => (now) => {
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
        listing: { ownerId: 'owner-1', active, pricePerDay, currency: 'EUR', timeZone },
      },
    };
  });
const markPaid: fc.Arbitrary<Build> = fc
  .record({ paymentId: fc.constantFrom('payment-1', 'payment-2'), off: fc.constantFrom(0, 0, 0, 1) })
  .map(({ paymentId, off }) => (_now, state) => ({ type: 'MarkBookingPaid', data: { bookingId, paymentId, amount: total(state) + off, currency: 'EUR' } }));
const confirm: fc.Arbitrary<Build> = fc.constant(() => ({ type: 'ConfirmBooking', data: { bookingId } }));
const complete: fc.Arbitrary<Build> = actor.map((actor) => (now) => ({ type: 'CompleteBooking', data: { bookingId, actor, now } }));
const cancel: fc.Arbitrary<Build> = actor.map((actor) => (now) => ({ type: 'CancelBooking', data: { bookingId, actor, reason: 'because', now } }));
const expire: fc.Arbitrary<Build> = fc.constant((now: string) => ({ type: 'ExpireBooking', data: { bookingId, now } }));

const step = fc.record({
  hoursLater: fc.oneof(fc.integer({ min: 0, max: 2 }), fc.integer({ min: 0, max: 24 * 10 })),
  build: fc.oneof(request, { weight: 3, arbitrary: markPaid }, { weight: 2, arbitrary: confirm }, { weight: 2, arbitrary: complete }, cancel, expire),
});

/** Where one event may take each state. */
const next: Record<BookingState['status'], readonly BookingState['status'][]> = {
  none: ['requested'],
  requested: ['paid', 'cancelled', 'expired'],
  paid: ['confirmed', 'cancelled'],
  confirmed: ['completed', 'cancelled'],
  completed: [],
  cancelled: [],
  expired: [],
};

function invariants(state: BookingState): void {
  if (state.status === 'none') return;
  expect(state.booking.total).toBe(state.booking.nights * state.booking.pricePerNight);
  expect(state.booking.consumerId).not.toBe(state.booking.ownerId);
  if (state.status === 'cancelled') {
    expect(state.refundAmount).toBeLessThanOrEqual(state.payment?.amount ?? 0);
    expect(state.refundAmount).toBeGreaterThanOrEqual(0);
  }
  if (state.status === 'paid' || state.status === 'confirmed' || state.status === 'completed') expect(state.payment.amount).toBe(state.booking.total);
}

// Every run starts with a request or two, so that the later commands mostly have a booking to work on.
const steps = fc.tuple(fc.array(fc.record({ hoursLater: fc.constant(0), build: request }), { minLength: 1, maxLength: 2 }), fc.array(step, { maxLength: 25 }));

test.prop([steps])('states only move forward and evolve accepts whatever decide emits', ([first, rest]) => {
  let state = bookingDecider.initialState;
  let clock = startMs;
  for (const { hoursLater, build } of [...first, ...rest]) {
    clock += hoursLater * 3_600_000;
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
});
