import type pg from 'pg';
import { isMade } from '../../src/domain/appointment/appointment.decider.js';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { bookAppointment, rescheduleAppointment } from '../../src/application/appointments/appointment.use-cases.js';
import { requestBooking } from '../../src/application/bookings/booking.use-cases.js';
import type { CommandSide } from '../../src/application/command-handlers.js';
import { createListing, setListingActive } from '../../src/application/listings/listing.use-cases.js';
import { setSchedule } from '../../src/application/schedules/schedule.use-cases.js';
import { slotOf } from '../../src/domain/doctor-schedule/doctor-schedule.decider.js';
import { reservationOf } from '../../src/domain/patient-agenda/patient-agenda.decider.js';
import { DomainError } from '../../src/domain/shared/domain-error.js';
import { PgEventStore } from '../../src/infrastructure/pg-event-store/pg-event-store.js';
import { createPool, migrateToLatest } from '../../src/infrastructure/postgres/database.js';
import { createTestDatabase, type TestDatabase } from '../support/database.js';
import { as, createTestSide, doctor, eventTypes, everyMorning, fakeClock, listingInput, otherDoctor, owner, streamEvents } from '../support/command-side.js';

// Invariants that span aggregates, raced through the real PostgreSQL event store. Each request
// gets its own command side (its own state caches), as if it ran in its own process.
describe('invariants under concurrent requests (PostgreSQL event store)', () => {
  let database: TestDatabase;
  let store: PgEventStore;
  let pool: pg.Pool;
  const clock = fakeClock('2030-01-10T10:00:00Z');
  const sides = (n: number): CommandSide[] => Array.from({ length: n }, () => createTestSide(store, clock));

  beforeAll(async () => {
    database = await createTestDatabase();
    pool = createPool(database.url, 30);
    await migrateToLatest(pool);
    store = new PgEventStore(pool, { closePool: true });
  });

  afterAll(async () => {
    await store.close();
    await database.drop();
  });

  function outcomes(results: PromiseSettledResult<unknown>[]) {
    const rejected = results.flatMap((r) => (r.status === 'rejected' ? [r.reason] : []));
    return {
      won: results.filter((r) => r.status === 'fulfilled').length,
      ruleCodes: new Set(rejected.map((reason) => (reason instanceof DomainError ? reason.code : String(reason)))),
    };
  }

  it('20 consumers requesting overlapping dates of one listing: exactly one holds them', async () => {
    const [setup] = sides(1);
    if (!setup) throw new Error('no side');
    const listing = await createListing(setup, listingInput, as(owner));
    const results = await Promise.allSettled(
      sides(20).map((side, i) =>
        requestBooking(
          side,
          { listingId: listing.id, startDate: `2030-03-${String(1 + (i % 5)).padStart(2, '0')}`, endDate: '2030-03-08' },
          as({ id: `consumer-${i}`, roles: ['CONSUMER'] }),
        ),
      ),
    );

    expect(outcomes(results)).toEqual({ won: 1, ruleCodes: new Set(['dates-unavailable']) });
    expect(await eventTypes(store, `listingCalendar-${listing.id}`)).toEqual(['DatesHeld']);
  });

  it('a deactivation and a reactivation of one listing at once, 30 times: its calendar is closed exactly when the listing is inactive', async () => {
    const [setup] = sides(1);
    if (!setup) throw new Error('no side');
    const listing = await createListing(setup, listingInput, as(owner));
    const outOfStep: string[] = [];
    for (let round = 0; round < 30; round++) {
      // Each with an event store of its own (its own group commit), as two processes would be.
      const stores = [new PgEventStore(pool), new PgEventStore(pool)];
      const [reactivating, deactivating] = stores.map((own) => createTestSide(own, clock));
      if (!reactivating || !deactivating) throw new Error('no side');
      // From inactive and from active, in turn: either order of the two may be the last.
      await setListingActive(setup, listing.id, round % 2 === 1, as(owner));
      await Promise.allSettled([setListingActive(reactivating, listing.id, true, as(owner)), setListingActive(deactivating, listing.id, false, as(owner))]);
      await Promise.all(stores.map((own) => own.close()));
      const [reader] = sides(1);
      if (!reader) throw new Error('no side');
      const active = (await reader.handlers.listing.read(`listing-${listing.id}`)).state.status === 'active';
      const open = !(await reader.handlers.listingCalendar.read(`listingCalendar-${listing.id}`)).state.closed;
      if (active !== open) outOfStep.push(`round ${round}: listing ${active ? 'active' : 'inactive'}, calendar ${open ? 'open' : 'closed'}`);
    }

    expect(outOfStep).toEqual([]);
  });

  it('bookings racing a deactivation of their listing, 25 times: none is held once the calendar closed, and the listing is inactive exactly when its calendar is closed', async () => {
    const [setup] = sides(1);
    if (!setup) throw new Error('no side');
    const listing = await createListing(setup, listingInput, as(owner));
    const calendar = `listingCalendar-${listing.id}`;
    const wrong: string[] = [];
    for (let round = 0; round < 25; round++) {
      // Given the listing active again (closed by the round before), and four consumers asking for
      // days nobody holds, each through a process of its own, as its owner deactivates it,
      if (round > 0) await setListingActive(setup, listing.id, true, as(owner));
      const before = (await streamEvents(store, calendar)).length;
      const stores = Array.from({ length: 5 }, () => new PgEventStore(pool));
      const [deactivating, ...booking] = stores.map((own) => createTestSide(own, clock));
      if (!deactivating) throw new Error('no side');
      const stay = (i: number) => {
        // Three days apart, 25 rounds of four: the last starts in November, within a year of the clock.
        const start = Date.parse('2030-01-20') + (round * 4 + i) * 3 * 86_400_000;
        return { startDate: new Date(start).toISOString().slice(0, 10), endDate: new Date(start + 2 * 86_400_000).toISOString().slice(0, 10) };
      };
      const [deactivated, ...requests] = await Promise.allSettled([
        setListingActive(deactivating, listing.id, false, as(owner)),
        ...booking.map((side, i) => requestBooking(side, { listingId: listing.id, ...stay(i) }, as({ id: `consumer-${round}-${i}`, roles: ['CONSUMER'] }))),
      ]);
      await Promise.all(stores.map((own) => own.close()));

      // then the deactivation is answered, every booking either held its dates before the
      // calendar first closed or was refused as the listing's, nothing is held after that close,
      if (deactivated?.status !== 'fulfilled') wrong.push(`round ${round}: deactivation refused: ${String(deactivated?.reason)}`);
      const events = (await streamEvents(store, calendar)).slice(before);
      const closed = events.findIndex((event) => event.type === 'CalendarClosed');
      const reopened = events.findIndex((event, i) => i > closed && event.type === 'CalendarReopened');
      const heldAfterClose = events.slice(closed, reopened === -1 ? undefined : reopened).filter((event) => event.type === 'DatesHeld');
      if (closed === -1) wrong.push(`round ${round}: calendar never closed`);
      if (heldAfterClose.length > 0) wrong.push(`round ${round}: ${heldAfterClose.length} held after the close`);
      const heldBefore = new Set(events.slice(0, Math.max(closed, 0)).flatMap((event) => (event.type === 'DatesHeld' ? [event.data.bookingId] : [])));
      requests.forEach((request, i) => {
        if (request.status === 'fulfilled' && !heldBefore.has(request.value.id)) wrong.push(`round ${round}: booking ${i} answered without dates held before the close`);
        if (request.status === 'rejected' && !(request.reason instanceof DomainError && request.reason.code === 'listing-inactive')) {
          wrong.push(`round ${round}: booking ${i} refused for ${String(request.reason)}`);
        }
      });
      if (heldBefore.size !== requests.filter((request) => request.status === 'fulfilled').length) wrong.push(`round ${round}: a refused booking holds dates`);
      // and the listing is inactive exactly when its calendar is closed.
      const [reader] = sides(1);
      if (!reader) throw new Error('no side');
      const active = (await reader.handlers.listing.read(`listing-${listing.id}`)).state.status === 'active';
      const open = !(await reader.handlers.listingCalendar.read(calendar)).state.closed;
      if (active || open) wrong.push(`round ${round}: listing ${active ? 'active' : 'inactive'}, calendar ${open ? 'open' : 'closed'}`);
    }

    expect(wrong).toEqual([]);
  });

  it('20 patients booking one doctor slot: exactly one gets it', async () => {
    const [setup] = sides(1);
    if (!setup) throw new Error('no side');
    await setSchedule(setup, doctor.id, everyMorning, as(doctor));
    const results = await Promise.allSettled(
      sides(20).map((side, i) =>
        bookAppointment(side, { doctorId: doctor.id, start: '2030-02-04T09:00:00Z', reason: 'check-up' }, as({ id: `patient-${i}`, roles: ['PATIENT'] })),
      ),
    );

    expect(outcomes(results)).toEqual({ won: 1, ruleCodes: new Set(['slot-taken']) });
    expect(await eventTypes(store, `doctorSchedule-${doctor.id}`)).toEqual(['ScheduleSet', 'SlotBooked']);
  });

  it('one patient booking overlapping slots with two doctors at once: exactly one stands', async () => {
    const [setup] = sides(1);
    if (!setup) throw new Error('no side');
    await setSchedule(setup, 'doctor-a', { ...everyMorning, slotMinutes: 60 }, as({ id: 'doctor-a', roles: ['DOCTOR'] }));
    await setSchedule(setup, otherDoctor.id, everyMorning, as(otherDoctor));
    const [a, b] = sides(2);
    if (!a || !b) throw new Error('no sides');
    // Not one of the patients of the slot race above, whose agenda may already hold a booking.
    const patient = { id: 'patient-with-two-doctors', roles: ['PATIENT' as const] };
    const results = await Promise.allSettled([
      bookAppointment(a, { doctorId: 'doctor-a', start: '2030-02-05T09:00:00Z', reason: 'knee' }, as(patient)),
      bookAppointment(b, { doctorId: otherDoctor.id, start: '2030-02-05T09:30:00Z', reason: 'back' }, as(patient)),
    ]);

    expect(outcomes(results)).toEqual({ won: 1, ruleCodes: new Set(['patient-overlap']) });
    expect(await eventTypes(store, `patientAgenda-${patient.id}`)).toEqual(['TimeReserved']);
    // The loser's slot went back to its doctor.
    const slots = [...(await eventTypes(store, 'doctorSchedule-doctor-a')), ...(await eventTypes(store, `doctorSchedule-${otherDoctor.id}`))];
    expect(slots.filter((type) => type === 'SlotBooked')).toHaveLength(2);
    expect(slots.filter((type) => type === 'SlotReleased')).toHaveLength(1);
  });

  it('eight reschedules of one appointment at once, patient and doctor alike: slot, time and appointment end in agreement', async () => {
    const [setup] = sides(1);
    if (!setup) throw new Error('no side');
    const doctorId = 'doctor-rescheduled-at';
    const patient = { id: 'patient-rescheduling', roles: ['PATIENT' as const] };
    await setSchedule(setup, doctorId, everyMorning, as({ id: doctorId, roles: ['DOCTOR'] }));
    const booked = await bookAppointment(setup, { doctorId, start: '2030-02-06T09:00:00Z', reason: 'check-up' }, as(patient));
    // Four morning slots on each of the next two days.
    const targets = Array.from({ length: 8 }, (_, i) => new Date(Date.parse(`2030-02-0${7 + (i >> 2)}T09:00:00Z`) + (i % 4) * 30 * 60_000).toISOString());

    const results = await Promise.allSettled(
      sides(8).map((side, i) => rescheduleAppointment(side, booked.id, { start: targets[i] ?? '' }, as(i % 2 ? patient : { id: doctorId, roles: ['DOCTOR'] }))),
    );

    expect(results.filter((result) => result.status === 'rejected')).toEqual([]);
    const [reader] = sides(1);
    if (!reader) throw new Error('no side');
    const appointment = await reader.handlers.appointment.read(booked.streamId);
    const schedule = await reader.handlers.doctorSchedule.read(`doctorSchedule-${doctorId}`);
    const agenda = await reader.handlers.patientAgenda.read(`patientAgenda-${patient.id}`);
    const start = isMade(appointment.state) ? appointment.state.start : undefined;
    expect(targets).toContain(start);
    expect({ slot: slotOf(schedule.state, booked.id)?.start, time: reservationOf(agenda.state, booked.id)?.start }).toEqual({ slot: start, time: start });
    // Every other time the reschedules passed through is free again: the schedule holds this one slot only.
    expect(schedule.state.status === 'active' ? schedule.state.booked.flatMap((day) => day.slots) : []).toHaveLength(1);
  });
});
