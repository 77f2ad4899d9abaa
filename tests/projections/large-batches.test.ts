import { sql, type Kysely } from 'kysely';
import type pg from 'pg';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { aggregates } from '../../src/application/aggregates/aggregates.js';
import type { JsonObject, RecordedEvent } from '../../src/application/ports/event-store.js';
import { createKysely, createPool } from '../../src/infrastructure/postgres/database.js';
import { appointmentsProjection } from '../../src/projections/appointments/appointments.projection.js';
import { auditIndexProjection } from '../../src/projections/audit-index/audit-index.projection.js';
import { bookingsProjection } from '../../src/projections/bookings/bookings.projection.js';
import { doctorsProjection } from '../../src/projections/doctors/doctors.projection.js';
import { listingAvailabilityProjection } from '../../src/projections/listing-availability/listing-availability.projection.js';
import { listingsProjection } from '../../src/projections/listings/listings.projection.js';
import { paymentsProjection } from '../../src/projections/payments/payments.projection.js';
import { reviewsProjection } from '../../src/projections/reviews/reviews.projection.js';
import { withSearchPath } from '../../src/projections/runtime/projection-checkpoints.queries.js';
import type { Projection } from '../../src/projections/runtime/projection.js';
import { usersProjection } from '../../src/projections/users/users.projection.js';
import { createTestDatabase, type TestDatabase } from '../support/database.js';

/** The version each type is written with today, as the command side would stamp it. */
const schemaVersion = (type: string) => Object.values(aggregates).find((a) => a.codec.eventTypes.includes(type))?.codec.schemaVersion(type) ?? 1;

/** The `index`-th event of a made-up log: its own stream unless one is named, revisions counted within it. */
function recorded(index: number, type: string, data: JsonObject, stream?: string): RecordedEvent {
  return {
    id: `event-${index}`,
    type,
    data,
    metadata: { schemaVersion: schemaVersion(type), actorId: 'actor-1', correlationId: `correlation-${index}` },
    streamId: stream ?? `stream-${type}-${index}`,
    revision: stream ? index : 0,
    position: { commit: BigInt(index + 1), prepare: BigInt(index + 1) },
    recordedAt: new Date(Date.UTC(2030, 0, 1) + index * 1_000),
  };
}

const instant = (index: number) => new Date(Date.UTC(2030, 1, 1) + index * 3_600_000).toISOString();

const bookingRequested = (i: number) =>
  recorded(i, 'BookingRequested', {
    bookingId: `booking-${i}`,
    listingId: 'listing-1',
    consumerId: 'consumer-1',
    ownerId: 'owner-1',
    startDate: '2030-02-01',
    endDate: '2030-02-03',
    nights: 2,
    pricePerNight: 10_000,
    total: 20_000,
    currency: 'EUR',
    timeZone: 'Europe/Paris',
    holdExpiresAt: '2030-01-10T10:15:00.000Z',
  });

/**
 * One batch per read model table whose rows × columns passes PostgreSQL's 65,535 bind parameters:
 * the counts are the smallest round numbers past it.
 */
const cases: readonly { table: string; columns: number; projection: Projection; events: number; event: (i: number) => RecordedEvent }[] = [
  { table: 'bookings', columns: 21, projection: bookingsProjection, events: 3_500, event: bookingRequested },
  {
    table: 'listings',
    columns: 14,
    projection: listingsProjection,
    events: 5_000,
    event: (i) =>
      recorded(i, 'ListingCreated', {
        listingId: `listing-${i}`,
        ownerId: 'owner-1',
        title: 'Cabin',
        description: 'By the lake',
        category: 'cabin',
        location: 'Annecy',
        capacity: 4,
        timeZone: 'Europe/Paris',
        pricePerDay: 12_000,
        currency: 'EUR',
      }),
  },
  {
    table: 'appointments',
    columns: 14,
    projection: appointmentsProjection,
    events: 5_000,
    event: (i) =>
      recorded(i, 'AppointmentScheduled', {
        appointmentId: `appointment-${i}`,
        patientId: 'patient-1',
        doctorId: 'doctor-1',
        start: instant(i),
        end: instant(i + 1),
        reason: 'check-up',
        scheduledBy: 'patient',
        scheduledAt: '2030-01-01T00:00:00.000Z',
      }),
  },
  {
    table: 'payments',
    columns: 12,
    projection: paymentsProjection,
    events: 6_000,
    event: (i) => recorded(i, 'PaymentInitiated', { paymentId: `payment-${i}`, bookingId: `booking-${i}`, providerIntentId: `intent-${i}`, amount: 20_000, currency: 'EUR' }),
  },
  {
    table: 'reviews',
    columns: 9,
    projection: reviewsProjection,
    events: 7_500,
    event: (i) =>
      recorded(i, 'ReviewSubmitted', { bookingId: `booking-${i}`, listingId: 'listing-1', authorId: 'consumer-1', rating: 5, comment: 'Lovely', submittedAt: instant(i) }),
  },
  { table: 'audit_events', columns: 8, projection: auditIndexProjection, events: 8_500, event: bookingRequested },
  {
    table: 'users',
    columns: 6,
    projection: usersProjection,
    events: 11_000,
    event: (i) => recorded(i, 'UserRegistered', { userId: `user-${i}`, email: `user-${i}@example.com`, name: `User ${i}`, roles: ['PATIENT'] }),
  },
  {
    table: 'calendar_ranges',
    columns: 6,
    projection: listingAvailabilityProjection,
    events: 11_000,
    event: (i) =>
      recorded(
        i,
        'DatesHeld',
        { listingId: 'listing-1', bookingId: `booking-${i}`, startDate: '2030-02-01', endDate: '2030-02-03', holdExpiresAt: '2030-01-10T10:15:00.000Z', heldOn: '2030-01-10' },
        'listingCalendar-listing-1',
      ),
  },
  {
    table: 'doctor_slots',
    columns: 5,
    projection: doctorsProjection,
    events: 16_500,
    event: (i) =>
      recorded(
        i,
        'SlotBooked',
        { doctorId: 'doctor-1', appointmentId: `appointment-${i}`, patientId: 'patient-1', start: instant(i), end: instant(i + 1), bookedAt: '2030-01-01T00:00:00.000Z' },
        'doctorSchedule-doctor-1',
      ),
  },
];

describe('a batch with more rows than one statement can carry (PostgreSQL binds 65,535 parameters at most)', () => {
  let database: TestDatabase;
  let pool: pg.Pool;
  let db: Kysely<unknown>;

  beforeAll(async () => {
    database = await createTestDatabase();
    pool = createPool(database.url, 2);
    db = createKysely<unknown>(pool);
  });
  afterAll(async () => {
    await db.destroy();
    await database.drop();
  });

  it.each(cases)('given $events events making $table rows of $columns columns, when applied as one batch, then every row lands', async ({ table, columns, projection, events, event }) => {
    expect(events * columns).toBeGreaterThan(65_535);
    const schema = `large_${projection.name}`;
    await db.transaction().execute(async (trx) => {
      await sql`create schema ${sql.id(schema)}`.execute(trx);
      await withSearchPath(trx, schema, () => projection.migrate(trx));
    });
    const batch = Array.from({ length: events }, (_, i) => event(i));

    await db.transaction().execute((trx) => withSearchPath(trx, schema, () => projection.apply(trx, batch)));

    const { rows } = await sql<{ count: number }>`select count(*)::integer as count from ${sql.id(schema, table)}`.execute(db);
    expect(rows[0]?.count).toBe(events);
  });
});
