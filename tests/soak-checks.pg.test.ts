import { randomUUID } from 'node:crypto';
import { Kysely, PostgresDialect } from 'kysely';
import type pg from 'pg';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { Ledger } from '../bench/support/soak-load.js';
import { checkEventsExactlyOnce } from '../bench/support/soak-checks.js';
import type { JsonObject } from '../src/application/ports/event-store.js';
import { PgEventStore } from '../src/infrastructure/pg-event-store/pg-event-store.js';
import { createPool, migrateToLatest } from '../src/infrastructure/postgres/database.js';
import { createTestDatabase, type TestDatabase } from './support/database.js';

// The soak's own checks, against a log written by hand: a check that cannot see what it looks
// for passes every soak.

let database: TestDatabase;
let pool: pg.Pool;
let store: PgEventStore;
let db: Kysely<unknown>;

beforeAll(async () => {
  database = await createTestDatabase();
  pool = createPool(database.url, 4);
  await migrateToLatest(pool);
  store = new PgEventStore(pool);
  db = new Kysely({ dialect: new PostgresDialect({ pool }) });
});

afterAll(async () => {
  await store.close();
  await db.destroy();
  await database.drop();
});

const append = (streamId: string, ...events: [type: string, data: JsonObject][]) =>
  store.appendToStream(
    streamId,
    events.map(([type, data]) => ({ id: randomUUID(), type, data, metadata: {} })),
  );

const dates = (bookingId: string) => ({ bookingId, startDate: '2027-03-01', endDate: '2027-03-04' });
const time = (appointmentId: string) => ({ appointmentId, start: '2027-03-01T09:00:00.000Z', end: '2027-03-01T09:30:00.000Z' });

describe('the soak check that every accepted command left its events once', () => {
  it('flags dates, slots and time still held for a booking or appointment the log never recorded, and nothing given back or owned', async () => {
    const [kept, orphan, released, booked] = [randomUUID(), randomUUID(), randomUUID(), randomUUID()];
    await append(`listingCalendar-${randomUUID()}`, ['DatesHeld', dates(kept)], ['DatesHeld', dates(orphan)], ['DatesHeld', dates(released)], ['DatesReleased', dates(released)]);
    await append(`booking-${kept}`, ['BookingRequested', { bookingId: kept }]);
    const [slotOrphan, refusedByAgenda, appointment] = [randomUUID(), randomUUID(), randomUUID()];
    const schedule = `doctorSchedule-${randomUUID()}`;
    await append(schedule, ['SlotBooked', time(slotOrphan)], ['SlotBooked', time(refusedByAgenda)], ['SlotReleased', time(refusedByAgenda)], ['SlotBooked', time(appointment)]);
    const agenda = `patientAgenda-${randomUUID()}`;
    await append(agenda, ['TimeReserved', time(booked)], ['TimeReserved', time(appointment)]);
    await append(`appointment-${appointment}`, ['AppointmentScheduled', { appointmentId: appointment }]);

    const check = await checkEventsExactlyOnce(db, new Ledger());

    expect(check.ok).toBe(false);
    expect(check.problems).toHaveLength(3);
    expect(check.problems).toEqual(
      expect.arrayContaining([
        expect.stringMatching(new RegExp(`^listingCalendar-.*: DatesHeld for ${orphan} still holds, and no such booking exists$`)),
        expect.stringMatching(new RegExp(`^${schedule}: SlotBooked for ${slotOrphan} still holds, and no such appointment exists$`)),
        expect.stringMatching(new RegExp(`^${agenda}: TimeReserved for ${booked} still holds, and no such appointment exists$`)),
      ]),
    );
  });
});
