import { randomUUID } from 'node:crypto';
import type pg from 'pg';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { bookAppointment } from '../../src/application/appointments/appointment.use-cases.js';
import { requestBooking } from '../../src/application/bookings/booking.use-cases.js';
import { TooMuchContentionError } from '../../src/application/command-handling/errors.js';
import type { CommandOptions } from '../../src/application/command-handling/handle-command.js';
import { deterministicUuid } from '../../src/application/ids.js';
import { createListing, setListingActive } from '../../src/application/listings/listing.use-cases.js';
import { ConcurrencyError } from '../../src/application/ports/event-store.js';
import { setSchedule } from '../../src/application/schedules/schedule.use-cases.js';
import type { Actor } from '../../src/domain/shared/actor.js';
import { PgEventStore } from '../../src/infrastructure/pg-event-store/pg-event-store.js';
import { createPool, migrateToLatest } from '../../src/infrastructure/postgres/database.js';
import { createTestDatabase, type TestDatabase } from '../support/database.js';
import { as, createTestSide, eventTypes, everyMorning, fakeClock, listingInput, owner, streamEvents } from '../support/command-side.js';

/**
 * The PostgreSQL event store, whose next append to a chosen stream fails for its caller: `loseAnswer`
 * after it committed (the connection reset before the answer came back), `interrupt` before it
 * reached the database. Each applies once. `contend` refuses every append to the streams chosen
 * as a concurrent writer always winning would, until `stopContending`.
 */
class LossyStore extends PgEventStore {
  private fault: { readonly on: (streamId: string) => boolean; readonly committed: boolean } | undefined;
  private contended: ((streamId: string) => boolean) | undefined;

  contend(on: (streamId: string) => boolean): void {
    this.contended = on;
  }

  stopContending(): void {
    this.contended = undefined;
  }

  loseAnswer(on: (streamId: string) => boolean): void {
    this.fault = { on, committed: true };
  }

  interrupt(on: (streamId: string) => boolean): void {
    this.fault = { on, committed: false };
  }

  override async appendToStream(...args: Parameters<PgEventStore['appendToStream']>): ReturnType<PgEventStore['appendToStream']> {
    const [streamId, , options] = args;
    if (this.contended?.(streamId)) throw new ConcurrencyError(streamId, options?.expectedRevision ?? 'any', undefined);
    const fault = this.fault;
    if (!fault?.on(streamId)) return super.appendToStream(...args);
    this.fault = undefined;
    if (fault.committed) await super.appendToStream(...args);
    throw new Error('Connection terminated unexpectedly');
  }
}

/** As the HTTP edge builds a request without Idempotency-Key: a command id of its own, never retried as itself. */
const keyless = (actor: Actor): CommandOptions => ({ ...as(actor), freshCommandId: true });
const person = (role: Actor['roles'][number]): Actor => ({ id: randomUUID(), roles: [role] });

describe('a request whose append went through but whose answer was lost (PostgreSQL event store)', () => {
  let database: TestDatabase;
  let pool: pg.Pool;
  let store: LossyStore;

  beforeAll(async () => {
    database = await createTestDatabase();
    pool = createPool(database.url, 10);
    await migrateToLatest(pool);
    store = new LossyStore(pool, { closePool: true });
  });

  afterAll(async () => {
    await store.close();
    await database.drop();
  });

  describe('booking', () => {
    async function givenListing(clock: ReturnType<typeof fakeClock>) {
      const side = createTestSide(store, clock, 15);
      const listingId = (await createListing(side, listingInput, as(owner))).id;
      return { side, listingId, calendar: `listingCalendar-${listingId}` };
    }

    it('without an Idempotency-Key, its hold committed: gives the booking id up and the dates back, so the retry (a new booking) takes them', async () => {
      const clock = fakeClock('2030-01-10T10:00:00Z');
      const { side, listingId, calendar } = await givenListing(clock);
      const consumer = person('CONSUMER');
      const first = keyless(consumer);
      const stay = { listingId, startDate: '2030-02-01', endDate: '2030-02-05' };

      store.loseAnswer((streamId) => streamId === calendar);
      await expect(requestBooking(side, stay, first)).rejects.toThrow('Connection terminated unexpectedly');

      expect(await eventTypes(store, `booking-${deterministicUuid('booking', first.commandId)}`)).toEqual(['BookingAbandoned']);
      expect(await eventTypes(store, calendar)).toEqual(['DatesHeld', 'DatesReleased']);
      const [, released] = await streamEvents(store, calendar);
      expect(released?.data).toMatchObject({ reason: 'failed' });
      const retry = await requestBooking(side, stay, keyless(consumer));
      expect(await eventTypes(store, retry.streamId)).toEqual(['BookingRequested']);
    });

    it('without an Idempotency-Key, its hold never reached the database: gives the id up, releases nothing, and the retry takes the dates', async () => {
      const clock = fakeClock('2030-01-10T10:00:00Z');
      const { side, listingId, calendar } = await givenListing(clock);
      const consumer = person('CONSUMER');
      const first = keyless(consumer);
      const stay = { listingId, startDate: '2030-02-01', endDate: '2030-02-05' };

      store.interrupt((streamId) => streamId === calendar);
      await expect(requestBooking(side, stay, first)).rejects.toThrow('Connection terminated unexpectedly');

      expect(await eventTypes(store, `booking-${deterministicUuid('booking', first.commandId)}`)).toEqual(['BookingAbandoned']);
      expect(await eventTypes(store, calendar)).toEqual([]);
      await expect(requestBooking(side, stay, keyless(consumer))).resolves.toBeDefined();
      expect(await eventTypes(store, calendar)).toEqual(['DatesHeld']);
    });

    it('without an Idempotency-Key, its hold lost every race for the calendar: refused as too much contention, the booking id not given up, nothing appended', async () => {
      const clock = fakeClock('2030-01-10T10:00:00Z');
      const { side, listingId, calendar } = await givenListing(clock);
      const first = keyless(person('CONSUMER'));

      store.contend((streamId) => streamId === calendar);
      try {
        await expect(requestBooking(side, { listingId, startDate: '2030-02-01', endDate: '2030-02-05' }, first)).rejects.toBeInstanceOf(TooMuchContentionError);
      } finally {
        store.stopContending();
      }

      expect(await eventTypes(store, `booking-${deterministicUuid('booking', first.commandId)}`)).toEqual([]);
      expect(await eventTypes(store, calendar)).toEqual([]);
    });

    it('with an Idempotency-Key, its booking committed before midnight for that night: the retry after midnight is answered as the booking, not as dates in the past', async () => {
      const clock = fakeClock('2030-01-10T23:58:00Z');
      const { side, listingId, calendar } = await givenListing(clock);
      const request = as(person('CONSUMER'), `key-${randomUUID()}`);
      const tonight = { listingId, startDate: '2030-01-10', endDate: '2030-01-11' };

      store.loseAnswer((streamId) => streamId.startsWith('booking-'));
      await expect(requestBooking(side, tonight, request)).rejects.toThrow('Connection terminated unexpectedly');
      clock.advance(3 * 60_000);
      const retry = await requestBooking(side, tonight, request);

      const [requested] = await streamEvents(store, retry.streamId);
      expect(requested?.type).toBe('BookingRequested');
      expect(retry).toEqual({ id: deterministicUuid('booking', request.commandId), streamId: retry.streamId, version: 0, position: requested?.position });
      expect(await eventTypes(store, calendar)).toEqual(['DatesHeld']);
    });

    it('with an Idempotency-Key, its booking committed and the listing deactivated since: the retry is answered as the booking', async () => {
      const clock = fakeClock('2030-01-10T10:00:00Z');
      const { side, listingId } = await givenListing(clock);
      const request = as(person('CONSUMER'), `key-${randomUUID()}`);
      const stay = { listingId, startDate: '2030-02-01', endDate: '2030-02-05' };

      store.loseAnswer((streamId) => streamId.startsWith('booking-'));
      await expect(requestBooking(side, stay, request)).rejects.toThrow('Connection terminated unexpectedly');
      await setListingActive(side, listingId, false, as(owner));
      const retry = await requestBooking(side, stay, request);

      expect(retry).toMatchObject({ id: deterministicUuid('booking', request.commandId), version: 0 });
      expect(await eventTypes(store, retry.streamId)).toEqual(['BookingRequested']);
    });
  });

  describe('appointment', () => {
    const nine = '2030-02-04T09:00:00.000Z';

    async function givenDoctor(clock: ReturnType<typeof fakeClock>) {
      const side = createTestSide(store, clock, 15);
      const doctor = person('DOCTOR');
      await setSchedule(side, doctor.id, everyMorning, as(doctor));
      return { side, doctorId: doctor.id, schedule: `doctorSchedule-${doctor.id}` };
    }

    it('without an Idempotency-Key, its slot committed: gives the appointment id up and the slot back, so the retry (a new appointment) takes it', async () => {
      const clock = fakeClock('2030-01-10T10:00:00Z');
      const { side, doctorId, schedule } = await givenDoctor(clock);
      const patient = person('PATIENT');
      const first = keyless(patient);

      store.loseAnswer((streamId) => streamId === schedule);
      await expect(bookAppointment(side, { doctorId, start: nine, reason: 'check-up' }, first)).rejects.toThrow('Connection terminated unexpectedly');

      expect(await eventTypes(store, `appointment-${deterministicUuid('appointment', first.commandId)}`)).toEqual(['AppointmentAbandoned']);
      expect(await eventTypes(store, schedule)).toEqual(['ScheduleSet', 'SlotBooked', 'SlotReleased']);
      const retry = await bookAppointment(side, { doctorId, start: nine, reason: 'check-up' }, keyless(patient));
      expect(await eventTypes(store, retry.streamId)).toEqual(['AppointmentScheduled']);
    });

    it('without an Idempotency-Key, its slot lost every race for the schedule: refused as too much contention, the appointment id not given up, nothing appended', async () => {
      const clock = fakeClock('2030-01-10T10:00:00Z');
      const { side, doctorId, schedule } = await givenDoctor(clock);
      const patient = person('PATIENT');
      const first = keyless(patient);

      store.contend((streamId) => streamId === schedule);
      try {
        await expect(bookAppointment(side, { doctorId, start: nine, reason: 'check-up' }, first)).rejects.toBeInstanceOf(TooMuchContentionError);
      } finally {
        store.stopContending();
      }

      expect(await eventTypes(store, `appointment-${deterministicUuid('appointment', first.commandId)}`)).toEqual([]);
      expect(await eventTypes(store, schedule)).toEqual(['ScheduleSet']);
      expect(await eventTypes(store, `patientAgenda-${patient.id}`)).toEqual([]);
    });

    it("without an Idempotency-Key, the patient's time committed: gives the slot and the time back, so the retry takes them", async () => {
      const clock = fakeClock('2030-01-10T10:00:00Z');
      const { side, doctorId, schedule } = await givenDoctor(clock);
      const patient = person('PATIENT');
      const agenda = `patientAgenda-${patient.id}`;

      store.loseAnswer((streamId) => streamId === agenda);
      await expect(bookAppointment(side, { doctorId, start: nine, reason: 'check-up' }, keyless(patient))).rejects.toThrow('Connection terminated unexpectedly');

      expect(await eventTypes(store, agenda)).toEqual(['TimeReserved', 'TimeReleased']);
      expect(await eventTypes(store, schedule)).toEqual(['ScheduleSet', 'SlotBooked', 'SlotReleased']);
      await expect(bookAppointment(side, { doctorId, start: nine, reason: 'check-up' }, keyless(patient))).resolves.toBeDefined();
    });

    it('without an Idempotency-Key, its appointment committed: keeps the slot and the time for it', async () => {
      const clock = fakeClock('2030-01-10T10:00:00Z');
      const { side, doctorId, schedule } = await givenDoctor(clock);
      const patient = person('PATIENT');
      const first = keyless(patient);

      store.loseAnswer((streamId) => streamId.startsWith('appointment-'));
      await expect(bookAppointment(side, { doctorId, start: nine, reason: 'check-up' }, first)).rejects.toThrow('Connection terminated unexpectedly');

      expect(await eventTypes(store, `appointment-${deterministicUuid('appointment', first.commandId)}`)).toEqual(['AppointmentScheduled']);
      expect(await eventTypes(store, schedule)).toEqual(['ScheduleSet', 'SlotBooked']);
      expect(await eventTypes(store, `patientAgenda-${patient.id}`)).toEqual(['TimeReserved']);
    });

    it('with an Idempotency-Key, its appointment committed a minute before it starts: the retry after the start is answered as the appointment, not as a time in the past', async () => {
      const clock = fakeClock('2030-02-04T08:59:00Z');
      const { side, doctorId, schedule } = await givenDoctor(clock);
      const request = as(person('PATIENT'), `key-${randomUUID()}`);

      store.loseAnswer((streamId) => streamId.startsWith('appointment-'));
      await expect(bookAppointment(side, { doctorId, start: nine, reason: 'check-up' }, request)).rejects.toThrow('Connection terminated unexpectedly');
      clock.advance(2 * 60_000);
      const retry = await bookAppointment(side, { doctorId, start: nine, reason: 'check-up' }, request);

      const [scheduled] = await streamEvents(store, retry.streamId);
      expect(scheduled?.type).toBe('AppointmentScheduled');
      expect(retry).toEqual({ id: deterministicUuid('appointment', request.commandId), streamId: retry.streamId, version: 0, position: scheduled?.position });
      expect(await eventTypes(store, schedule)).toEqual(['ScheduleSet', 'SlotBooked']);
    });
  });
});
