import { fc, test } from '@fast-check/vitest';
import { expect } from 'vitest';
import { addDays, daysBetween } from '../../src/domain/shared/calendar-date.js';
import { maxDaysAhead } from '../../src/domain/shared/booking-horizon.js';
import { lastNight, overlaps } from '../../src/domain/shared/date-range.js';
import { DomainError } from '../../src/domain/shared/domain-error.js';
import type { HoldDates, ListingCalendarCommand } from '../../src/domain/listing-calendar/listing-calendar.commands.js';
import { listingCalendarDecider, liveRangeOf, type ListingCalendarState } from '../../src/domain/listing-calendar/listing-calendar.decider.js';
import type { ListingCalendarEvent } from '../../src/domain/listing-calendar/listing-calendar.events.js';

const listingId = 'listing-p';
const firstDay = '2026-05-01';
const startMs = Date.parse(`${firstDay}T00:00:00Z`);
const bookingIds = ['b1', 'b2', 'b3', 'b4', 'b5', 'b6'];
const bookingId = fc.constantFrom(...bookingIds);

/** A command without its clock; the run supplies `now` from a clock that mostly moves forward. */
type Step = { minutesLater: number; build: (now: string) => ListingCalendarCommand };

const hold = fc
  .record({
    bookingId,
    // Now and then about a year ahead, the last night on either side of how far a stay may reach.
    startOffset: fc.oneof({ weight: 9, arbitrary: fc.integer({ min: -1, max: 20 }) }, { weight: 1, arbitrary: fc.integer({ min: 363, max: 367 }) }),
    nights: fc.oneof(fc.integer({ min: 1, max: 6 }), fc.constantFrom(0, -2, 91)),
    holdMinutes: fc.integer({ min: -5, max: 60 }),
    timeZone: fc.constantFrom('UTC', 'Pacific/Auckland', 'America/Los_Angeles', 'Pacific/Kiritimati', 'Pacific/Pago_Pago'),
    // The holds whose payments the caller found had not gone through.
    displaceable: fc.subarray(bookingIds),
  })
  .map(
    ({ bookingId, startOffset, nights, holdMinutes, timeZone, displaceable }) =>
      (now: string): ListingCalendarCommand => {
        const startDate = addDays(now.slice(0, 10), startOffset);
        const holdExpiresAt = new Date(Date.parse(now) + holdMinutes * 60_000).toISOString();
        return { type: 'HoldDates', data: { listingId, bookingId, startDate, endDate: addDays(startDate, nights), holdExpiresAt, now, timeZone, displaceable } };
      },
  );
const book = bookingId.map((bookingId) => (): ListingCalendarCommand => ({ type: 'BookDates', data: { listingId, bookingId } }));
const release = fc.record({ bookingId, reason: fc.constantFrom('cancelled' as const, 'expired' as const, 'failed' as const) }).map(
  ({ bookingId, reason }) =>
    (now: string): ListingCalendarCommand => ({ type: 'ReleaseDates', data: { listingId, bookingId, reason, now } }),
);
const openOrClose = fc.constantFrom('CloseCalendar' as const, 'ReopenCalendar' as const).map((type) => (): ListingCalendarCommand => ({ type, data: { listingId } }));
const step: fc.Arbitrary<Step> = fc.record({
  // Now and then the clock steps back a little, as clocks on different machines do.
  minutesLater: fc.oneof({ weight: 9, arbitrary: fc.integer({ min: 0, max: 600 }) }, { weight: 1, arbitrary: fc.integer({ min: -1_500, max: 0 }) }),
  build: fc.oneof(
    { weight: 3, arbitrary: hold },
    { weight: 1, arbitrary: book },
    { weight: 2, arbitrary: release },
    { weight: 1, arbitrary: openOrClose },
  ),
});

function assertNoOverlap(state: ListingCalendarState, justHeld: boolean): void {
  for (const [i, a] of state.live.entries()) {
    for (const b of state.live.slice(i + 1)) {
      expect(overlaps(a, b), `${JSON.stringify(a)} vs ${JSON.stringify(b)}`).toBe(false);
      expect(a.startDate < b.startDate, `date order: ${a.bookingId} before ${b.bookingId}`).toBe(true);
    }
    // A new hold sweeps out booked ranges that ended two days before `openFrom`; a hold stays until booked or released.
    if (justHeld && state.openFrom !== null && a.status === 'booked') expect(a.endDate > addDays(state.openFrom, -2)).toBe(true);
  }
}

test.prop([fc.array(step, { maxLength: 40 })])('no two live ranges ever overlap, and evolve accepts whatever decide emits', (steps) => {
  let state = listingCalendarDecider.initialState;
  let clock = startMs;
  for (const { minutesLater, build } of steps) {
    clock += minutesLater * 60_000;
    let events: ListingCalendarEvent[];
    try {
      events = listingCalendarDecider.decide(build(new Date(clock).toISOString()), state);
    } catch (error) {
      if (error instanceof DomainError) continue;
      throw error;
    }
    const openBefore = state.openFrom;
    for (const event of events) state = listingCalendarDecider.evolve(state, event);
    assertNoOverlap(state, events.some((event) => event.type === 'DatesHeld'));
    if (openBefore !== null) expect(state.openFrom !== null && state.openFrom >= openBefore).toBe(true);
  }
});

test.prop([fc.array(step, { maxLength: 40 })])('no hold is granted while the calendar is closed', (steps) => {
  let state = listingCalendarDecider.initialState;
  let clock = startMs;
  for (const { minutesLater, build } of steps) {
    clock += minutesLater * 60_000;
    let events: ListingCalendarEvent[] = [];
    try {
      events = listingCalendarDecider.decide(build(new Date(clock).toISOString()), state);
    } catch (error) {
      if (!(error instanceof DomainError)) throw error;
    }
    if (state.closed) expect(events.filter((event) => event.type === 'DatesHeld')).toEqual([]);
    for (const event of events) state = listingCalendarDecider.evolve(state, event);
  }
});

test.prop([fc.array(step, { maxLength: 40 })])('a hold is granted only on dates no live, unexpired range covers', (steps) => {
  let state = listingCalendarDecider.initialState;
  let clock = startMs;
  for (const { minutesLater, build } of steps) {
    clock += minutesLater * 60_000;
    const now = new Date(clock).toISOString();
    const command = build(now);
    let events: ListingCalendarEvent[] = [];
    try {
      events = listingCalendarDecider.decide(command, state);
    } catch (error) {
      if (!(error instanceof DomainError)) throw error;
    }
    for (const event of events) {
      if (event.type === 'DatesHeld') {
        const blockers = state.live.filter(
          (live) => overlaps(live, event.data) && (live.status === 'booked' || Date.parse(live.holdExpiresAt) > clock),
        );
        expect(blockers).toEqual([]);
      }
    }
    for (const event of events) state = listingCalendarDecider.evolve(state, event);
  }
});

test.prop([fc.array(step, { maxLength: 40 })])('a hold is granted only for at most 90 nights, the last of them at most 365 days after the day it is held on', (steps) => {
  let state = listingCalendarDecider.initialState;
  let clock = startMs;
  for (const { minutesLater, build } of steps) {
    clock += minutesLater * 60_000;
    let events: ListingCalendarEvent[] = [];
    try {
      events = listingCalendarDecider.decide(build(new Date(clock).toISOString()), state);
    } catch (error) {
      if (!(error instanceof DomainError)) throw error;
    }
    for (const event of events) {
      if (event.type !== 'DatesHeld') continue;
      expect(daysBetween(event.data.startDate, event.data.endDate)).toBeLessThanOrEqual(90);
      expect(daysBetween(event.data.heldOn, lastNight(event.data))).toBeLessThanOrEqual(365);
    }
    for (const event of events) state = listingCalendarDecider.evolve(state, event);
  }
});

test.prop([fc.array(step, { maxLength: 40 })])('a hold displaces only the lapsed holds its command names as displaceable', (steps) => {
  let state = listingCalendarDecider.initialState;
  let clock = startMs;
  for (const { minutesLater, build } of steps) {
    clock += minutesLater * 60_000;
    const command = build(new Date(clock).toISOString());
    let events: ListingCalendarEvent[] = [];
    try {
      events = listingCalendarDecider.decide(command, state);
    } catch (error) {
      if (!(error instanceof DomainError)) throw error;
    }
    if (command.type === 'HoldDates') {
      const displaced = events.flatMap((event) => (event.type === 'DatesReleased' ? [event.data.bookingId] : []));
      for (const id of displaced) expect(command.data.displaceable ?? []).toContain(id);
    }
    for (const event of events) state = listingCalendarDecider.evolve(state, event);
  }
});

/** A client retrying its request: the last hold a run granted, sent again later with an expiry of its own. */
test.prop([fc.array(step, { maxLength: 40 }), fc.integer({ min: 0, max: 600 }), fc.integer({ min: 1, max: 60 })])(
  'a hold that is not refused leaves its booking keeping the dates past now: booked, or held until after it',
  (steps, minutesLater, holdMinutes) => {
    let state = listingCalendarDecider.initialState;
    let clock = startMs;
    let granted: HoldDates | undefined;
    for (const { minutesLater, build } of steps) {
      clock += minutesLater * 60_000;
      const command = build(new Date(clock).toISOString());
      let events: ListingCalendarEvent[] = [];
      try {
        events = listingCalendarDecider.decide(command, state);
      } catch (error) {
        if (!(error instanceof DomainError)) throw error;
      }
      if (command.type === 'HoldDates' && events.some((event) => event.type === 'DatesHeld')) granted = command;
      for (const event of events) state = listingCalendarDecider.evolve(state, event);
    }
    fc.pre(granted !== undefined);
    if (granted === undefined) return;
    clock += minutesLater * 60_000;
    const now = new Date(clock).toISOString();
    const retry: HoldDates = { type: 'HoldDates', data: { ...granted.data, now, holdExpiresAt: new Date(clock + holdMinutes * 60_000).toISOString() } };
    let events: ListingCalendarEvent[];
    try {
      events = listingCalendarDecider.decide(retry, state);
    } catch (error) {
      if (error instanceof DomainError) return;
      throw error;
    }
    for (const event of events) state = listingCalendarDecider.evolve(state, event);
    const mine = liveRangeOf(state, retry.data.bookingId);
    expect(mine, 'the booking keeps a range').toBeDefined();
    if (mine?.status === 'held') expect(Date.parse(mine.holdExpiresAt)).toBeGreaterThan(clock);
  },
);

/**
 * The other side of the safety properties above: a calendar that refused everything would pass
 * them. The range is free by construction: it lies in a gap between live ranges (or after the
 * last), starts two days after now's UTC date (today in any zone) and not before `openFrom`.
 */
test.prop([
  fc.array(step, { maxLength: 40 }),
  fc.nat(),
  fc.integer({ min: 1, max: 10 }),
  fc.integer({ min: 1, max: 60 }),
  fc.constantFrom('UTC', 'Pacific/Auckland', 'America/Los_Angeles', 'Pacific/Kiritimati', 'Pacific/Pago_Pago'),
])('given any history, when a new booking holds a free, valid range of the open calendar, then it is granted', (steps, pick, nights, holdMinutes, timeZone) => {
  let state = listingCalendarDecider.initialState;
  let clock = startMs;
  for (const { minutesLater, build } of steps) {
    clock += minutesLater * 60_000;
    try {
      for (const event of listingCalendarDecider.decide(build(new Date(clock).toISOString()), state)) state = listingCalendarDecider.evolve(state, event);
    } catch (error) {
      if (!(error instanceof DomainError)) throw error;
    }
  }
  if (state.closed) state = listingCalendarDecider.evolve(state, { type: 'CalendarReopened', data: { listingId } });
  const now = new Date(clock).toISOString();
  const afterToday = addDays(now.slice(0, 10), 2);
  const floor = state.openFrom !== null && state.openFrom > afterToday ? state.openFrom : afterToday;
  const gaps: { startDate: string; endDate: string | null }[] = [];
  let free = floor;
  for (const live of [...state.live].sort((a, b) => (a.startDate < b.startDate ? -1 : 1))) {
    if (live.startDate > free) gaps.push({ startDate: free, endDate: live.startDate });
    if (live.endDate > free) free = live.endDate;
  }
  gaps.push({ startDate: free, endDate: null });
  // Valid: every night within the year ahead, counted from the earliest today any of the zones has
  // (the day before now's UTC date), so the stay ends by `horizonEnd`.
  const horizonEnd = addDays(now.slice(0, 10), maxDaysAhead);
  const bookable = gaps.filter(({ startDate }) => startDate < horizonEnd);
  fc.pre(bookable.length > 0);
  const gap = bookable[pick % bookable.length] ?? { startDate: free, endDate: null };
  const endDate = [addDays(gap.startDate, nights), gap.endDate ?? horizonEnd, horizonEnd].reduce((a, b) => (a < b ? a : b));
  const holdExpiresAt = new Date(clock + holdMinutes * 60_000).toISOString();
  const command: HoldDates = { type: 'HoldDates', data: { listingId, bookingId: 'b-new', startDate: gap.startDate, endDate, holdExpiresAt, now, timeZone } };

  expect(listingCalendarDecider.decide(command, state)).toEqual([
    { type: 'DatesHeld', data: { listingId, bookingId: 'b-new', startDate: gap.startDate, endDate, holdExpiresAt, heldOn: expect.any(String) } },
  ]);
});
