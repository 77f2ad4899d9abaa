import { randomUUID } from 'node:crypto';
import { beforeEach, describe, expect, it } from 'vitest';
import type { CommandSide } from '../../src/application/command-handlers.js';
import type { CommandOptions } from '../../src/application/command-handling/handle-command.js';
import { cancelBooking, requestBooking } from '../../src/application/bookings/booking.use-cases.js';
import { createListing, setListingActive, updateListing } from '../../src/application/listings/listing.use-cases.js';
import { deterministicUuid } from '../../src/application/ids.js';
import { liveRangeOf } from '../../src/domain/listing-calendar/listing-calendar.decider.js';
import { HoldExpiryProcess } from '../../src/application/process-managers/hold-expiry.process.js';
import { eventually } from '../support/eventually.js';
import { admin, as, consumer, createTestSide, eventTypes, fakeClock, InterruptibleStore, listingInput, otherConsumer, owner, streamEvents } from '../support/command-side.js';

const stay = { startDate: '2030-02-01', endDate: '2030-02-05' };

describe('booking use cases', () => {
  let store: InterruptibleStore;
  let clock: ReturnType<typeof fakeClock>;
  let side: CommandSide;
  let listingId: string;

  beforeEach(async () => {
    store = new InterruptibleStore();
    clock = fakeClock('2030-01-10T10:00:00Z');
    side = createTestSide(store, clock, 15);
    listingId = (await createListing(side, listingInput, as(owner))).id;
  });

  it('holds the dates on the calendar, then records the booking with the server-computed total', async () => {
    const result = await requestBooking(side, { listingId, ...stay }, as(consumer));

    expect(await eventTypes(store, `listingCalendar-${listingId}`)).toEqual(['DatesHeld']);
    expect(result.streamId).toBe(`booking-${result.id}`);
    const booking = await side.handlers.booking.read(result.streamId);
    expect(booking.state).toMatchObject({ status: 'requested', booking: { total: 4 * 12_000, currency: 'EUR', holdExpiresAt: '2030-01-10T10:15:00.000Z' } });
  });

  it('refuses overlapping dates for a second consumer', async () => {
    await requestBooking(side, { listingId, ...stay }, as(consumer));
    await expect(requestBooking(side, { listingId, startDate: '2030-02-04', endDate: '2030-02-06' }, as(otherConsumer))).rejects.toMatchObject({
      code: 'dates-unavailable',
    });
  });

  it('holds nothing for a booking its own rules refuse', async () => {
    await setListingActive(side, listingId, false, as(owner));
    await expect(requestBooking(side, { listingId, ...stay }, as(consumer))).rejects.toMatchObject({ code: 'listing-inactive' });
    expect(await eventTypes(store, `listingCalendar-${listingId}`)).toEqual(['CalendarClosed', 'CalendarClosed']);
  });

  it('answers a missing listing with not-found', async () => {
    await expect(requestBooking(side, { listingId: 'nope', ...stay }, as(consumer))).rejects.toMatchObject({ code: 'not-found' });
  });

  it('retried with the same command id, books once and answers the same', async () => {
    const request = as(consumer, 'retry-me');
    const first = await requestBooking(side, { listingId, ...stay }, request);
    clock.advance(1_000);
    const again = await requestBooking(side, { listingId, ...stay }, request);

    expect(again).toEqual(first);
    expect(await eventTypes(store, first.streamId)).toEqual(['BookingRequested']);
    expect(await eventTypes(store, `listingCalendar-${listingId}`)).toEqual(['DatesHeld']);
  });

  describe('deactivating the listing', () => {
    it('closes its calendar; reactivating opens it again', async () => {
      await setListingActive(side, listingId, false, as(owner));
      await expect(requestBooking(side, { listingId, ...stay }, as(consumer))).rejects.toMatchObject({ code: 'listing-inactive' });
      await setListingActive(side, listingId, true, as(owner));

      await expect(requestBooking(side, { listingId, ...stay }, as(consumer))).resolves.toBeDefined();
      // Closed before the listing is marked, and recorded again after it (see calendarFollowsListing).
      expect(await eventTypes(store, `listingCalendar-${listingId}`)).toEqual(['CalendarClosed', 'CalendarClosed', 'CalendarReopened', 'DatesHeld']);
    });

    it('refuses a booking that read the listing before the deactivation and holds its dates after it', async () => {
      let resume = () => {};
      const reached = store.pause((streamId) => streamId === `listingCalendar-${listingId}`, new Promise<void>((resolve) => (resume = resolve)));
      const booking = requestBooking(side, { listingId, ...stay }, as(consumer));
      await reached;
      // The other side of the race, in another process: its own caches.
      await setListingActive(createTestSide(store, clock, 15), listingId, false, as(owner));
      resume();

      await expect(booking).rejects.toMatchObject({ code: 'listing-inactive' });
      expect(await eventTypes(store, `listingCalendar-${listingId}`)).toEqual(['CalendarClosed', 'CalendarClosed']);
    });

    it('by an admin after its owner, records the moderation with the calendar still closed, answers its retry the same, and the owner may not undo it', async () => {
      await setListingActive(side, listingId, false, as(owner));
      const moderation = as(admin, 'moderate');
      const first = await setListingActive(side, listingId, false, moderation);

      expect(await eventTypes(store, `listing-${listingId}`)).toEqual(['ListingCreated', 'ListingDeactivated', 'ListingDeactivated']);
      expect((await side.handlers.listing.read(`listing-${listingId}`)).state).toMatchObject({ status: 'inactive', moderated: true });
      // The owner's close and its follow, then the moderation's follow: recorded on a closed calendar.
      expect(await eventTypes(store, `listingCalendar-${listingId}`)).toEqual(['CalendarClosed', 'CalendarClosed', 'CalendarClosed']);
      expect(await setListingActive(side, listingId, false, moderation)).toEqual(first);
      await expect(setListingActive(side, listingId, true, as(owner))).rejects.toMatchObject({ code: 'forbidden' });
      await expect(requestBooking(side, { listingId, ...stay }, as(consumer))).rejects.toMatchObject({ code: 'listing-inactive' });
      // The hold-expiry process finds listing and calendar in step: nothing to heal.
      const expiry = new HoldExpiryProcess({ eventStore: store, side, orphanSlotGraceMs: 60_000 });
      for await (const event of store.readAll()) expiry.observe(event);
      expect(expiry.pending.calendars).toBe(0);
    });

    it('by an admin before moderation was recorded (stored as version 1), stays the admin\'s: its owner may not undo it, an admin may', async () => {
      const stream = `listing-${listingId}`;
      await side.handlers.listingCalendar.handle(`listingCalendar-${listingId}`, { type: 'CloseCalendar', data: { listingId } }, as(admin));
      const metadata = { actorId: admin.id, actorRoles: [...admin.roles], correlationId: 'corr-old', causationId: 'req-old', requestId: 'req-old', occurredAt: '2030-01-01T00:00:00.000Z', schemaVersion: 1 };
      await store.appendToStream(stream, [{ id: randomUUID(), type: 'ListingDeactivated', data: { listingId }, metadata }]);

      await expect(setListingActive(side, listingId, true, as(owner))).rejects.toMatchObject({ code: 'forbidden' });
      expect(await eventTypes(store, stream)).toEqual(['ListingCreated', 'ListingDeactivated']);
      await setListingActive(side, listingId, true, as(admin));
      await expect(requestBooking(side, { listingId, ...stay }, as(consumer))).resolves.toBeDefined();
    });

    it('keeps the bookings made before it', async () => {
      const before = await requestBooking(side, { listingId, ...stay }, as(consumer));
      await setListingActive(side, listingId, false, as(owner));

      expect((await side.handlers.listingCalendar.read(`listingCalendar-${listingId}`)).state.live).toMatchObject([{ bookingId: before.id }]);
      await expect(cancelBooking(side, before.id, { reason: 'plans changed' }, as(consumer))).resolves.toMatchObject({ id: before.id });
    });

    it('is refused before the calendar closes when the caller may not, or pinned a stale version', async () => {
      await expect(setListingActive(side, listingId, false, as(otherConsumer))).rejects.toMatchObject({ code: 'forbidden' });
      await expect(setListingActive(side, listingId, false, { ...as(owner), expectedVersion: 5 })).rejects.toMatchObject({ name: 'VersionMismatchError' });
      expect(await eventTypes(store, `listingCalendar-${listingId}`)).toEqual([]);
    });

    /** The next append to `streamId` waits at the store until `resume`; `reached` once it is there. */
    function pauseAt(streamId: string): { reached: Promise<void>; resume: () => void } {
      let resume = () => {};
      const reached = store.pause((id) => id === streamId, new Promise<void>((resolve) => (resume = resolve)));
      return { reached, resume };
    }

    /** A deactivation pinned to version 0 whose listing changes (in another process) while its calendar closes. */
    async function overtakenDeactivation(change: (other: CommandSide) => Promise<unknown>, commandId = 'deactivate-v0'): Promise<unknown> {
      let resume = () => {};
      const reached = store.pause((streamId) => streamId === `listingCalendar-${listingId}`, new Promise<void>((resolve) => (resume = resolve)));
      const deactivation = setListingActive(side, listingId, false, { ...as(owner, commandId), expectedVersion: 0 });
      await reached;
      await change(createTestSide(store, clock, 15));
      resume();
      return deactivation.catch((error: unknown) => error);
    }

    it('refused after its calendar closed (If-Match overtaken), leaves the listing bookable', async () => {
      const refusal = await overtakenDeactivation((other) => updateListing(other, listingId, { title: 'Renamed meanwhile' }, as(admin)));

      expect(refusal).toMatchObject({ name: 'VersionMismatchError' });
      expect((await side.handlers.listing.read(`listing-${listingId}`)).state.status).toBe('active');
      await expect(requestBooking(side, { listingId, ...stay }, as(consumer))).resolves.toBeDefined();
      expect(await eventTypes(store, `listingCalendar-${listingId}`)).toEqual(['CalendarClosed', 'CalendarReopened', 'DatesHeld']);
    });

    it('retried and refused again, still leaves the listing bookable', async () => {
      await overtakenDeactivation((other) => updateListing(other, listingId, { title: 'Renamed meanwhile' }, as(admin)), 'same-key');
      await expect(setListingActive(side, listingId, false, { ...as(owner, 'same-key'), expectedVersion: 0 })).rejects.toMatchObject({ name: 'VersionMismatchError' });

      await expect(requestBooking(side, { listingId, ...stay }, as(consumer))).resolves.toBeDefined();
    });

    it('retried after two tries whose listing append failed, closes the calendar on the try that goes through', async () => {
      const request = as(owner, 'flaky-deactivation');
      for (let attempt = 1; attempt <= 2; attempt++) {
        store.interrupt((streamId) => streamId === `listing-${listingId}`);
        await expect(setListingActive(side, listingId, false, request)).rejects.toThrow(/died/);
      }
      await setListingActive(side, listingId, false, request);

      expect((await side.handlers.listing.read(`listing-${listingId}`)).state.status).toBe('inactive');
      expect((await side.handlers.listingCalendar.read(`listingCalendar-${listingId}`)).state.closed).toBe(true);
      await expect(requestBooking(side, { listingId, ...stay }, as(consumer))).rejects.toMatchObject({ code: 'listing-inactive' });
    });

    it('that found the calendar closed by a deactivation then refused and undone, closes it again once in', async () => {
      const refusedLater = pauseAt(`listing-${listingId}`);
      const refused = setListingActive(side, listingId, false, { ...as(owner), expectedVersion: 0 }).catch((error: unknown) => error);
      await refusedLater.reached;
      await updateListing(createTestSide(store, clock, 15), listingId, { title: 'Renamed meanwhile' }, as(admin));
      const landsLater = pauseAt(`listing-${listingId}`);
      const deactivation = setListingActive(createTestSide(store, clock, 15), listingId, false, as(admin));
      await landsLater.reached;
      refusedLater.resume();
      expect(await refused).toMatchObject({ name: 'VersionMismatchError' });
      landsLater.resume();
      await deactivation;

      expect((await side.handlers.listing.read(`listing-${listingId}`)).state.status).toBe('inactive');
      expect((await side.handlers.listingCalendar.read(`listingCalendar-${listingId}`)).state.closed).toBe(true);
    });

    it('racing a reactivation that read the listing before it, leaves the calendar closed once it has answered', async () => {
      await setListingActive(side, listingId, false, as(owner));
      const reopening = pauseAt(`listingCalendar-${listingId}`);
      const reactivation = setListingActive(side, listingId, true, as(owner));
      await reopening.reached;
      // The listing is active again and the reactivation's reopen on its way, when an admin
      // deactivates it (in another process) and is answered: the calendar was closed already.
      await setListingActive(createTestSide(store, clock, 15), listingId, false, as(admin));
      const afterReopen = pauseAt(`listingCalendar-${listingId}`);
      reopening.resume();
      await Promise.race([reactivation, afterReopen.reached]);

      // A hold decided on the listing as the reactivation left it, landing now, is refused.
      const hold = { type: 'HoldDates' as const, data: { listingId, bookingId: 'late', ...stay, holdExpiresAt: '2030-01-10T10:15:00.000Z', now: '2030-01-10T10:00:00.000Z', timeZone: 'UTC', displaceable: [] } };
      await expect(side.handlers.listingCalendar.handle(`listingCalendar-${listingId}`, hold, as(consumer))).rejects.toMatchObject({ code: 'listing-inactive' });
      afterReopen.resume();
      await reactivation;
      expect((await side.handlers.listing.read(`listing-${listingId}`)).state.status).toBe('inactive');
      expect((await side.handlers.listingCalendar.read(`listingCalendar-${listingId}`)).state.closed).toBe(true);
    });

    it('racing a retry of a reactivation that went through, leaves the calendar closed once it has answered', async () => {
      await setListingActive(side, listingId, false, as(owner));
      const reactivation = as(owner, 'reactivate-once');
      await setListingActive(side, listingId, true, reactivation);
      const marking = pauseAt(`listing-${listingId}`);
      const deactivation = setListingActive(createTestSide(store, clock, 15), listingId, false, as(admin));
      await marking.reached;
      // The deactivation has closed the calendar; the retry finds its own reopen applied, yet the
      // calendar closed, and reopens it again, decided on the listing still active.
      const reopening = pauseAt(`listingCalendar-${listingId}`);
      const retry = setListingActive(side, listingId, true, reactivation);
      await reopening.reached;
      marking.resume();
      await deactivation;
      reopening.resume();
      await retry;

      const calendar = await streamEvents(store, `listingCalendar-${listingId}`);
      // The deactivation's close recorded after its listing step: it had been answered by then.
      const answered = calendar.findLastIndex((event) => event.type === 'CalendarClosed' && event.data.alreadyClosed === true);
      expect(answered).toBeGreaterThan(2);
      expect(calendar.slice(answered).map((event) => event.type)).not.toContain('CalendarReopened');
      expect((await side.handlers.listing.read(`listing-${listingId}`)).state.status).toBe('inactive');
    });

    it('reactivated while its calendar is written between every look, says so rather than leave the calendar closed in silence', async () => {
      await setListingActive(side, listingId, false, as(owner));
      const calendar = `listingCalendar-${listingId}`;
      let writes = 0;
      const busy: CommandSide = {
        ...side,
        handlers: {
          ...side.handlers,
          listing: {
            ...side.handlers.listing,
            // Another process writes to the calendar each time this one reads the listing.
            read: async (streamId: string) => {
              await side.handlers.listingCalendar.handle(calendar, { type: 'CloseCalendar', data: { listingId, afterDeactivation: true } }, as(admin, `busy-${writes++}`));
              return side.handlers.listing.read(streamId);
            },
          },
        },
      };

      await expect(setListingActive(busy, listingId, true, as(owner))).rejects.toMatchObject({ name: 'TooMuchContentionError' });
      expect((await side.handlers.listing.read(`listing-${listingId}`)).state.status).toBe('active');
    });

    describe('whose listing append fails with its outcome unknown (the connection died), and lands after the failure was answered', () => {
      let faulty: AmbiguousStore;

      beforeEach(async () => {
        store = faulty = new AmbiguousStore();
        side = createTestSide(store, clock, 15);
        listingId = (await createListing(side, listingInput, as(owner))).id;
      });

      /** The deactivation fails for its caller; its listing append is stored once `landNow` is called. */
      async function deactivationInDoubt(request: CommandOptions): Promise<{ landNow: () => Promise<void> }> {
        let land = () => {};
        const landed = faulty.landLate((streamId) => streamId === `listing-${listingId}`, new Promise<void>((resolve) => (land = resolve)));
        await expect(setListingActive(side, listingId, false, request)).rejects.toThrow('connection');
        return {
          landNow: async () => {
            land();
            await landed;
          },
        };
      }

      const calendarClosed = async () => (await side.handlers.listingCalendar.read(`listingCalendar-${listingId}`)).state.closed;

      it('leaves the calendar closed, for the listing is deactivated after all', async () => {
        const { landNow } = await deactivationInDoubt(as(owner, 'deactivate-in-doubt'));
        await landNow();

        expect((await side.handlers.listing.read(`listing-${listingId}`)).state.status).toBe('inactive');
        expect(await calendarClosed()).toBe(true);
        // A hold decided on the listing as it was before the deactivation is refused.
        const hold = { type: 'HoldDates' as const, data: { listingId, bookingId: 'late', ...stay, holdExpiresAt: '2030-01-10T10:15:00.000Z', now: '2030-01-10T10:00:00.000Z', timeZone: 'UTC', displaceable: [] } };
        await expect(side.handlers.listingCalendar.handle(`listingCalendar-${listingId}`, hold, as(consumer))).rejects.toMatchObject({ code: 'listing-inactive' });
      });

      it('retried once it landed, closes the calendar that a reactivation reopened meanwhile', async () => {
        const request = as(owner, 'deactivate-in-doubt');
        const { landNow } = await deactivationInDoubt(request);
        // The owner, finding the listing still active, reactivates it (in another process): its calendar follows the listing, open.
        await setListingActive(createTestSide(store, clock, 15), listingId, true, as(owner));
        await landNow();
        expect(await calendarClosed()).toBe(false);

        await setListingActive(side, listingId, false, request);

        expect(await eventTypes(store, `listing-${listingId}`)).toEqual(['ListingCreated', 'ListingDeactivated']);
        expect(await calendarClosed()).toBe(true);
      });
    });

    it('refused because someone else deactivated it meanwhile, keeps the calendar closed', async () => {
      const refusal = await overtakenDeactivation((other) => setListingActive(other, listingId, false, as(admin)));

      expect(refusal).toMatchObject({ name: 'VersionMismatchError' });
      expect((await side.handlers.listing.read(`listing-${listingId}`)).state.status).toBe('inactive');
      await expect(requestBooking(side, { listingId, ...stay }, as(consumer))).rejects.toMatchObject({ code: 'listing-inactive' });
    });
  });

  describe('retried after the first attempt died between its two appends', () => {
    const retried = as(consumer, 'died-midway');

    /** The first attempt holds the dates and dies; the hold lapses and the expiry process releases it. */
    async function diedAndLapsed(): Promise<void> {
      store.interrupt((streamId) => streamId.startsWith('booking-'));
      await expect(requestBooking(side, { listingId, ...stay }, retried)).rejects.toThrow('died');
      const expiry = new HoldExpiryProcess({ eventStore: store, side, orphanSlotGraceMs: 60_000 });
      for await (const event of store.readAll()) expiry.observe(event);
      clock.advance(16 * 60_000);
      await expiry.sweep();
      expect(await eventTypes(store, `listingCalendar-${listingId}`)).toEqual(['DatesHeld', 'DatesReleased']);
    }

    it('holds the dates again before recording the booking, when they are still free', async () => {
      await diedAndLapsed();

      const booking = await requestBooking(side, { listingId, ...stay }, retried);

      expect(await eventTypes(store, `listingCalendar-${listingId}`)).toEqual(['DatesHeld', 'DatesReleased', 'DatesHeld']);
      const { state } = await side.handlers.listingCalendar.read(`listingCalendar-${listingId}`);
      expect(state.live).toMatchObject([{ bookingId: booking.id, ...stay, status: 'held' }]);
      expect(await eventTypes(store, booking.streamId)).toEqual(['BookingRequested']);
    });

    it('is refused, and records no booking, when someone else took the dates meanwhile', async () => {
      await diedAndLapsed();
      const other = await requestBooking(side, { listingId, ...stay }, as(otherConsumer));

      await expect(requestBooking(side, { listingId, ...stay }, retried)).rejects.toMatchObject({ code: 'dates-unavailable' });
      expect(await eventTypes(store, `booking-${deterministicUuid('booking', retried.commandId)}`)).toEqual([]);
      const { state } = await side.handlers.listingCalendar.read(`listingCalendar-${listingId}`);
      expect(state.live).toMatchObject([{ bookingId: other.id }]);
    });

    /** The first attempt, at 10:00, holds the dates until 10:15 and dies before recording the booking. */
    async function diedAfterHolding(): Promise<void> {
      store.interrupt((streamId) => streamId.startsWith('booking-'));
      await expect(requestBooking(side, { listingId, ...stay }, retried)).rejects.toThrow('died');
    }

    async function calendarRangeOf(bookingId: string) {
      return liveRangeOf((await side.handlers.listingCalendar.read(`listingCalendar-${listingId}`)).state, bookingId);
    }

    it('after the hold lapsed but before the sweep released it, holds the dates again and records the booking held as long as the calendar holds them', async () => {
      await diedAfterHolding();
      clock.advance(16 * 60_000);

      const booking = await requestBooking(side, { listingId, ...stay }, retried);

      expect(await eventTypes(store, `listingCalendar-${listingId}`)).toEqual(['DatesHeld', 'DatesHeld']);
      const range = await calendarRangeOf(booking.id);
      expect(range).toMatchObject({ status: 'held', holdExpiresAt: '2030-01-10T10:31:00.000Z' });
      const { state } = await side.handlers.booking.read(booking.streamId);
      expect(state).toMatchObject({ status: 'requested', booking: { holdExpiresAt: '2030-01-10T10:31:00.000Z' } });
      expect(Date.parse(state.status === 'requested' ? state.booking.holdExpiresAt : '')).toBeGreaterThan(clock.now().getTime());
    });

    it('after the hold lapsed, keeps the dates from others until the new expiry, then the sweep expires the booking and releases them', async () => {
      await diedAfterHolding();
      const expiry = new HoldExpiryProcess({ eventStore: store, side, orphanSlotGraceMs: 60_000 });
      clock.advance(16 * 60_000);
      const booking = await requestBooking(side, { listingId, ...stay }, retried);
      for await (const event of store.readAll()) expiry.observe(event);

      clock.advance(5 * 60_000);
      expect(await expiry.sweep()).toEqual({ progressed: 0, failed: 0 });
      await expect(requestBooking(side, { listingId, ...stay }, as(otherConsumer))).rejects.toMatchObject({ code: 'dates-unavailable' });
      clock.advance(10 * 60_000);
      expect(await expiry.sweep()).toEqual({ progressed: 1, failed: 0 });

      expect(await eventTypes(store, booking.streamId)).toEqual(['BookingRequested', 'BookingExpired']);
      expect(await eventTypes(store, `listingCalendar-${listingId}`)).toEqual(['DatesHeld', 'DatesHeld', 'DatesReleased']);
    });

    it('before the hold lapsed, records the booking held until the hold the first attempt took expires, not later', async () => {
      await diedAfterHolding();
      clock.advance(5 * 60_000);

      const booking = await requestBooking(side, { listingId, ...stay }, retried);

      expect(await eventTypes(store, `listingCalendar-${listingId}`)).toEqual(['DatesHeld']);
      expect(await calendarRangeOf(booking.id)).toMatchObject({ status: 'held', holdExpiresAt: '2030-01-10T10:15:00.000Z' });
      const { state } = await side.handlers.booking.read(booking.streamId);
      expect(state).toMatchObject({ status: 'requested', booking: { holdExpiresAt: '2030-01-10T10:15:00.000Z' } });
    });

    it('a retry of a request that did finish holds nothing again, though its dates were given back since', async () => {
      const booking = await requestBooking(side, { listingId, ...stay }, retried);
      await cancelBooking(side, booking.id, { reason: 'plans changed' }, as(consumer));

      await expect(requestBooking(side, { listingId, ...stay }, retried)).resolves.toMatchObject({ id: booking.id });
      expect(await eventTypes(store, `listingCalendar-${listingId}`)).toEqual(['DatesHeld', 'DatesReleased']);
    });
  });

  describe('without an Idempotency-Key, its booking append failed after the dates were held', () => {
    /** As the HTTP edge builds a request without a key: a command id of its own, never retried. */
    const keyless = () => ({ ...as(consumer), freshCommandId: true });
    let faulty: AmbiguousStore;

    beforeEach(async () => {
      store = faulty = new AmbiguousStore();
      side = createTestSide(store, clock, 15);
      listingId = (await createListing(side, listingInput, as(owner))).id;
    });

    async function lapseAndSweep(): Promise<void> {
      const expiry = new HoldExpiryProcess({ eventStore: store, side, orphanSlotGraceMs: 60_000 });
      for await (const event of store.readAll()) expiry.observe(event);
      clock.advance(15 * 60_000);
      await expiry.sweep();
    }

    async function calendarRangeOf(bookingId: string) {
      return liveRangeOf((await side.handlers.listingCalendar.read(`listingCalendar-${listingId}`)).state, bookingId);
    }

    // It cannot tell this failure from the ones below, so it claims the id before it gives anything back.
    it('gives its dates back at once, the booking id given up first: the retry, a new booking, takes them', async () => {
      const request = keyless();
      const bookingId = deterministicUuid('booking', request.commandId);
      faulty.interrupt((streamId) => streamId.startsWith('booking-'));
      await expect(requestBooking(side, { listingId, ...stay }, request)).rejects.toThrow('died');

      expect(await eventTypes(store, `booking-${bookingId}`)).toEqual(['BookingAbandoned']);
      expect(await eventTypes(store, `listingCalendar-${listingId}`)).toEqual(['DatesHeld', 'DatesReleased']);
      await expect(requestBooking(side, { listingId, ...stay }, keyless())).resolves.toBeDefined();
    });

    it('whose booking was recorded though its answer was lost, keeps the dates for that booking', async () => {
      const request = keyless();
      const bookingId = deterministicUuid('booking', request.commandId);
      faulty.loseAnswer((streamId) => streamId.startsWith('booking-'));
      await expect(requestBooking(side, { listingId, ...stay }, request)).rejects.toThrow('connection');

      expect((await side.handlers.booking.read(`booking-${bookingId}`)).state.status).toBe('requested');
      expect(await calendarRangeOf(bookingId)).toMatchObject({ status: 'held' });
      await expect(requestBooking(side, { listingId, ...stay }, as(otherConsumer))).rejects.toMatchObject({ code: 'dates-unavailable' });
    });

    // An empty booking stream after the failure proves nothing: PostgreSQL goes on running a
    // statement whose connection died, and commits it when it gets through (a lock, a slow disk).
    it('whose booking lands after the failure was answered, the database still away when it tried to give the id up, keeps the dates for it, though its stream was empty when the failure was seen', async () => {
      const request = keyless();
      const bookingId = deterministicUuid('booking', request.commandId);
      let land = () => {};
      const landed = faulty.landLate((streamId) => streamId.startsWith('booking-'), new Promise<void>((resolve) => (land = resolve)));
      faulty.interrupt((streamId) => streamId === `booking-${bookingId}`);
      await expect(requestBooking(side, { listingId, ...stay }, request)).rejects.toThrow('connection');
      expect(await eventTypes(store, `booking-${bookingId}`)).toEqual([]);

      land();
      await landed;

      // Payable until its hold lapses, so its dates must still be its own.
      const { state } = await side.handlers.booking.read(`booking-${bookingId}`);
      expect(state).toMatchObject({ status: 'requested', booking: { holdExpiresAt: '2030-01-10T10:15:00.000Z' } });
      expect(await calendarRangeOf(bookingId)).toMatchObject({ status: 'held' });
      await expect(requestBooking(side, { listingId, ...stay }, as(otherConsumer))).rejects.toMatchObject({ code: 'dates-unavailable' });
      await lapseAndSweep();
      expect(await eventTypes(store, `booking-${bookingId}`)).toEqual(['BookingRequested', 'BookingExpired']);
      await expect(requestBooking(side, { listingId, ...stay }, as(otherConsumer))).resolves.toBeDefined();
    });

    it('whose booking would land after its id was given up, is refused: the dates given back belong to no booking', async () => {
      const request = keyless();
      const bookingId = deterministicUuid('booking', request.commandId);
      let land = () => {};
      const landed = faulty.landLate((streamId) => streamId.startsWith('booking-'), new Promise<void>((resolve) => (land = resolve)));
      await expect(requestBooking(side, { listingId, ...stay }, request)).rejects.toThrow('connection');

      land();
      await expect(landed).rejects.toMatchObject({ name: 'ConcurrencyError' });
      expect(await eventTypes(store, `booking-${bookingId}`)).toEqual(['BookingAbandoned']);
      expect(await calendarRangeOf(bookingId)).toBeUndefined();
      await expect(requestBooking(side, { listingId, ...stay }, as(otherConsumer))).resolves.toBeDefined();
    });

    it('with an Idempotency-Key, keeps its dates and its id for the retry, which carries on', async () => {
      const request = as(consumer, 'keyed');
      store.interrupt((streamId) => streamId.startsWith('booking-'));
      await expect(requestBooking(side, { listingId, ...stay }, request)).rejects.toThrow('died');

      const booking = await requestBooking(side, { listingId, ...stay }, request);
      expect(await eventTypes(store, booking.streamId)).toEqual(['BookingRequested']);
      expect(await eventTypes(store, `listingCalendar-${listingId}`)).toEqual(['DatesHeld']);
    });
  });

  it('cancelling answers with the position of the dates given back, so a reader waiting on it sees them free', async () => {
    const booking = await requestBooking(side, { listingId, ...stay }, as(consumer));
    const cancelled = await cancelBooking(side, booking.id, { reason: 'plans changed' }, as(consumer));

    const [released] = await streamEvents(store, `listingCalendar-${listingId}`).then((events) => events.filter((event) => event.type === 'DatesReleased'));
    expect(cancelled.position).toEqual(released?.position);
    expect(cancelled.streamId).toBe(booking.streamId);
  });

  it('cancelling gives the dates back, so someone else can book them', async () => {
    const booking = await requestBooking(side, { listingId, ...stay }, as(consumer));
    await cancelBooking(side, booking.id, { reason: 'plans changed' }, as(consumer));

    expect(await eventTypes(store, `listingCalendar-${listingId}`)).toEqual(['DatesHeld', 'DatesReleased']);
    await expect(requestBooking(side, { listingId, ...stay }, as(otherConsumer))).resolves.toBeDefined();
  });

  it("hides someone else's booking from a consumer, but lets an admin cancel it", async () => {
    const booking = await requestBooking(side, { listingId, ...stay }, as(consumer));
    await expect(cancelBooking(side, booking.id, { reason: 'mine now' }, as(otherConsumer))).rejects.toMatchObject({ code: 'not-found' });
    await expect(cancelBooking(side, booking.id, { reason: 'fraud' }, as(admin))).resolves.toMatchObject({ id: booking.id });
  });

  describe('when a hold runs out unpaid', () => {
    it('the expiry process expires the booking and releases its dates', async () => {
      const booking = await requestBooking(side, { listingId, ...stay }, as(consumer));
      const expiry = new HoldExpiryProcess({ eventStore: store, side, orphanSlotGraceMs: 60_000 });
      for await (const event of store.readAll()) expiry.observe(event);

      expect(await expiry.sweep()).toEqual({ progressed: 0, failed: 0 });
      clock.advance(15 * 60_000);
      expect(await expiry.sweep()).toEqual({ progressed: 1, failed: 0 });

      expect(await eventTypes(store, booking.streamId)).toEqual(['BookingRequested', 'BookingExpired']);
      expect(await eventTypes(store, `listingCalendar-${listingId}`)).toEqual(['DatesHeld', 'DatesReleased']);
    });

    it('running, reads the log at every sweep and releases a hold taken while it runs, once it lapses', async () => {
      const expiry = new HoldExpiryProcess({ eventStore: store, side, orphanSlotGraceMs: 60_000 });
      const stop = new AbortController();
      const running = expiry.run(stop.signal, 10);
      const booking = await requestBooking(side, { listingId, ...stay }, as(consumer));
      await eventually(async () => expiry.pending.holds === 1, 5_000, 'the hold to be seen');
      clock.advance(15 * 60_000);
      await eventually(async () => (await eventTypes(store, booking.streamId)).includes('BookingExpired'), 5_000, 'the booking to expire');
      stop.abort();
      await running;
      expect(await eventTypes(store, `listingCalendar-${listingId}`)).toEqual(['DatesHeld', 'DatesReleased']);
    });

    it('records the hold as the cause of the expiry, in the correlation of the request', async () => {
      const request = as(consumer);
      await requestBooking(side, { listingId, ...stay }, { ...request, context: { ...request.context, correlationId: 'checkout-42' } });
      const expiry = new HoldExpiryProcess({ eventStore: store, side, orphanSlotGraceMs: 60_000 });
      for await (const event of store.readAll()) expiry.observe(event);
      clock.advance(15 * 60_000);
      await expiry.sweep();

      const calendar = [];
      for await (const event of store.readAll({ filter: { eventTypes: ['DatesHeld', 'DatesReleased'] } })) calendar.push(event);
      const [held, released] = calendar;
      expect(released?.metadata).toMatchObject({ actorId: 'system:hold-expiry', causationId: held?.id, correlationId: 'checkout-42' });
    });

    it('releases dates held by a request that died before recording its booking', async () => {
      // The first of the two appends of a booking request, as a crash would leave it.
      await side.handlers.listingCalendar.handle(
        `listingCalendar-${listingId}`,
        { type: 'HoldDates', data: { listingId, bookingId: 'lost', ...stay, holdExpiresAt: '2030-01-10T10:15:00Z', now: '2030-01-10T10:00:00Z', timeZone: 'UTC' } },
        as(consumer),
      );
      const expiry = new HoldExpiryProcess({ eventStore: store, side, orphanSlotGraceMs: 60_000 });
      for await (const event of store.readAll()) expiry.observe(event);
      clock.advance(16 * 60_000);
      await expiry.sweep();

      expect(await eventTypes(store, `listingCalendar-${listingId}`)).toEqual(['DatesHeld', 'DatesReleased']);
      expect(await eventTypes(store, 'booking-lost')).toEqual([]);
    });

    it('two expiry processes (or a restart) release once', async () => {
      await requestBooking(side, { listingId, ...stay }, as(consumer));
      const processes = [1, 2].map(() => new HoldExpiryProcess({ eventStore: store, side, orphanSlotGraceMs: 60_000 }));
      for await (const event of store.readAll()) processes.forEach((p) => p.observe(event));
      clock.advance(20 * 60_000);
      await Promise.all(processes.map((p) => p.sweep()));

      expect(await eventTypes(store, `listingCalendar-${listingId}`)).toEqual(['DatesHeld', 'DatesReleased']);
    });
  });
});

/**
 * The two ways an append can fail for its caller and still be stored, as with a connection that
 * died mid-statement: `loseAnswer`, stored before the caller hears of the failure; `landLate`,
 * stored only once `until` resolves, after the caller heard. Each applies once.
 */
class AmbiguousStore extends InterruptibleStore {
  private lose: ((streamId: string) => boolean) | undefined;
  private late:
    | { readonly on: (streamId: string) => boolean; readonly until: Promise<unknown>; readonly stored: () => void; readonly refused: (error: unknown) => void }
    | undefined;

  loseAnswer(on: (streamId: string) => boolean): void {
    this.lose = on;
  }

  /** Resolves once the late append is stored; rejects if the store refuses it then (the stream moved on). */
  landLate(on: (streamId: string) => boolean, until: Promise<unknown>): Promise<void> {
    return new Promise((stored, refused) => (this.late = { on, until, stored, refused }));
  }

  override async appendToStream(...args: Parameters<InterruptibleStore['appendToStream']>): ReturnType<InterruptibleStore['appendToStream']> {
    const [streamId] = args;
    if (this.lose?.(streamId)) {
      this.lose = undefined;
      await super.appendToStream(...args);
      throw new Error(`the connection died before the answer to the append to ${streamId}`);
    }
    const late = this.late;
    if (late?.on(streamId)) {
      this.late = undefined;
      void late.until.then(() => super.appendToStream(...args)).then(() => late.stored(), late.refused);
      throw new Error(`the connection died during the append to ${streamId}`);
    }
    return super.appendToStream(...args);
  }
}
