// Projection benchmark: how fast the bookings and listings read models are built from the first
// event, and how far the bookings read model trails a steady command load; one figure per line.
// `npm run bench:projections`; set DATABASE_URL to use an existing database (both parts then
// share it), else embedded ones are started in temporary directories.
//
// The log is written straight through the event store in multi-event appends (no deciders), with
// the metadata the application writes, so the projections decode every event as in production.
// A rebuild reads the whole log (the checkpoint passes every event) and handles its own types.
import { randomBytes, randomUUID } from 'node:crypto';
import { cpus } from 'node:os';
import { aggregates } from '../src/application/aggregates/aggregates.js';
import type { JsonObject, NewEvent } from '../src/application/ports/event-store.js';
import { comparePositions, maxPosition, START, type Position } from '../src/application/ports/position.js';
import { PgEventStore } from '../src/infrastructure/pg-event-store/pg-event-store.js';
import { PersonalDataVault } from '../src/application/privacy/personal-data-vault.js';
import { RevealingEventStore } from '../src/application/privacy/revealing-event-store.js';
import { PgSubjectKeyStore } from '../src/infrastructure/privacy/pg-subject-key-store.js';
import { createKysely, createPool, migrateToLatest } from '../src/infrastructure/postgres/database.js';
import { PgAdvisoryLocks } from '../src/infrastructure/projections/pg-advisory-locks.js';
import { bookingsProjection } from '../src/projections/bookings/bookings.projection.js';
import { listingsProjection } from '../src/projections/listings/listings.projection.js';
import { readActivePositions } from '../src/projections/runtime/projection-checkpoints.queries.js';
import { ProjectionRuntime } from '../src/projections/runtime/projection-runtime.js';
import type { Projection } from '../src/projections/runtime/projection.js';
import { benchDatabase } from './support/bench-database.js';
import { bookingBodies, bookingsFlatOut, bookingsLagUnderLoad, createBenchListings, lagText } from './support/booking-load.js';
import { runLine } from './support/cannon.js';
import { startBenchService, stop } from './support/service-process.js';
import { sleep } from '../src/application/sleep.js';

// BENCH_SCALE shrinks every count, for checking the script itself quickly (e.g. 0.05).
const scale = Number(process.env.BENCH_SCALE ?? 1);
const listings = Math.round(10_000 * scale);
const eventsPerListing = 10;
const bookings = Math.round(30_000 * scale);
const eventsPerBooking = 4;
const writers = 8;
const batchSize = 1000;

function metadata(type: string, schemaVersion: number): JsonObject {
  const id = randomUUID();
  return { actorId: 'bench', actorRoles: [], correlationId: id, causationId: id, requestId: id, occurredAt: new Date().toISOString(), schemaVersion };
}

function event(codec: { schemaVersion(type: string): number }, type: string, data: JsonObject): NewEvent {
  return { id: randomUUID(), type, data, metadata: metadata(type, codec.schemaVersion(type)) };
}

function listingStream(index: number): { streamId: string; events: NewEvent[] } {
  const codec = aggregates.listing.codec;
  const listingId = `bench-listing-${index}`;
  const details = { title: `Listing ${index}`, description: 'Bright and quiet, near the river', category: index % 2 ? 'venue' : 'cabin', location: `City ${index % 50}`, capacity: 4, timeZone: 'UTC' };
  const events = [event(codec, 'ListingCreated', { listingId, ownerId: `owner-${index % 500}`, ...details, pricePerDay: 10_000, currency: 'EUR' })];
  for (let n = 1; n < eventsPerListing; n += 1) {
    events.push(
      n % 3 === 0
        ? event(codec, 'ListingDetailsUpdated', { listingId, ...details, title: `Listing ${index} v${n}` })
        : event(codec, 'ListingPriceChanged', { listingId, pricePerDay: 10_000 + n * 100, currency: 'EUR' }),
    );
  }
  return { streamId: `listing-${listingId}`, events };
}

function bookingStream(index: number): { streamId: string; events: NewEvent[] } {
  const codec = aggregates.booking.codec;
  const bookingId = `bench-booking-${index}`;
  const requested = {
    bookingId,
    listingId: `bench-listing-${index % Math.max(1, listings)}`,
    consumerId: `consumer-${index % 2_000}`,
    ownerId: `owner-${index % 500}`,
    startDate: '2030-02-01',
    endDate: '2030-02-04',
    nights: 3,
    pricePerNight: 10_000,
    total: 30_000,
    currency: 'EUR',
    timeZone: 'UTC',
    holdExpiresAt: '2030-01-10T10:15:00.000Z',
  };
  return {
    streamId: `booking-${bookingId}`,
    events: [
      event(codec, 'BookingRequested', requested),
      event(codec, 'BookingPaid', { bookingId, paymentId: `pay-${index}`, amount: 30_000, currency: 'EUR' }),
      event(codec, 'BookingConfirmed', { bookingId }),
      index % 5 === 0
        ? event(codec, 'BookingCancelled', { bookingId, cancelledBy: 'consumer', cancelledById: requested.consumerId, reason: 'plans changed', refundPercent: 50, refundAmount: 15_000, currency: 'EUR' })
        : event(codec, 'BookingCompleted', { bookingId }),
    ],
  };
}

async function appendAll(store: PgEventStore): Promise<{ events: number; head: Position }> {
  // Listings and bookings interleaved in proportion, as a live system would write them.
  const jobs: { streamId: string; events: NewEvent[] }[] = [];
  for (let l = 0, b = 0; l < listings || b < bookings; ) {
    jobs.push(b >= bookings || (l < listings && l * bookings <= b * listings) ? listingStream(l++) : bookingStream(b++));
  }
  let head = START;
  let events = 0;
  let cursor = 0;
  await Promise.all(
    Array.from({ length: writers }, async () => {
      for (let job = jobs[cursor++]; job; job = jobs[cursor++]) {
        const result = await store.appendToStream(job.streamId, job.events, { expectedRevision: 'no_stream' });
        head = maxPosition(head, result.position);
        events += job.events.length;
      }
    }),
  );
  return { events, head };
}

async function rebuild(url: string, pool: ReturnType<typeof createPool>, store: PgEventStore, projection: Projection, head: Position): Promise<number> {
  const db = createKysely<unknown>(pool);
  const runtime = new ProjectionRuntime({
    db,
    // As the service reads the log: through the vault that reveals personal fields.
    eventStore: new RevealingEventStore(store, new PersonalDataVault(new PgSubjectKeyStore(pool, randomBytes(32)))),
    locks: new PgAdvisoryLocks({ connectionString: url, retryMs: 100 }),
    projections: [projection],
    batchSize,
    batchMaxWaitMs: 50,
    controlIntervalMs: 100,
  });
  const started = performance.now();
  runtime.start();
  for (;;) {
    const position = (await readActivePositions(db, [projection.name])).get(projection.name);
    if (position && comparePositions(position, head) >= 0) break;
    await sleep(20);
  }
  const seconds = (performance.now() - started) / 1000;
  await runtime.stop();
  return seconds;
}

async function main(): Promise<void> {
  const server = await benchDatabase('projections');
  const pool = createPool(server.url, 12);
  const store = new PgEventStore(pool, { pollIntervalMs: 200 });
  try {
    await migrateToLatest(pool);
    const version = (await pool.query<{ server_version: string }>('SHOW server_version')).rows[0]?.server_version;
    console.log(`PostgreSQL ${version ?? '?'}, ${cpus().length} cores, Node ${process.version}; batches of ${batchSize}${scale === 1 ? '' : `; counts scaled by ${scale}`}`);
    const setUp = performance.now();
    const { events, head } = await appendAll(store);
    console.log(`log: ${events} events (${listings * eventsPerListing} listing, ${bookings * eventsPerBooking} booking) appended in ${((performance.now() - setUp) / 1000).toFixed(1)} s`);
    // What a system that has been running a while would have: the log vacuumed and analysed, so
    // autovacuum does not compete with the first rebuild for the two cores.
    await pool.query('VACUUM ANALYZE events');
    const reading = performance.now();
    let read = 0;
    for await (const _event of store.readAll()) read += 1;
    const readSeconds = (performance.now() - reading) / 1000;
    console.log(`read the log alone: ${Math.round(read / readSeconds)} events/s (${read} events in ${readSeconds.toFixed(1)} s), the ceiling of any rebuild`);
    for (const [projection, own] of [[bookingsProjection, bookings * eventsPerBooking], [listingsProjection, listings * eventsPerListing]] as const) {
      const seconds = await rebuild(server.url, pool, store, projection, head);
      const rate = Math.round(events / seconds);
      console.log(`rebuild ${projection.name}: ${rate} events/s over the whole log (${events} events in ${seconds.toFixed(1)} s; ${Math.round(own / seconds)} of its own events/s)`);
    }
  } finally {
    await store.close();
    await pool.end();
    await server.stop();
  }
}

/**
 * Projection lag under a steady command load at half the maximum command rate, on a database of
 * its own: the whole service (`all` role) takes bookings flat out for a while, then half as many
 * per second, paced evenly, while the bookings read model's checkpoint is watched.
 */
async function lagUnderSteadyLoad(): Promise<void> {
  const database = await benchDatabase('projections-lag');
  const service = await startBenchService(database.url);
  try {
    const nextBooking = bookingBodies(await createBenchListings(service.commands, 200));
    const seconds = Math.max(2, Math.round(10 * Math.min(1, scale * 4)));
    const connections = 50;
    // Warmed up as bench:http is: a maximum with the JIT's start in it halves to too low a rate.
    const flatOut = await bookingsFlatOut({ commands: service.commands, seconds, connections, warmupSeconds: 2, nextBooking });
    const rate = Math.max(1, Math.round(flatOut.rps / 2));
    const { load, lag } = await bookingsLagUnderLoad({ databaseUrl: database.url, commands: service.commands, rate, seconds, maxInFlight: connections, nextBooking });
    // As bench:http prints them: a lag measured over a load with refusals or skipped requests is
    // the lag of less load than it says.
    console.log(runLine(`bookings flat out (${connections} connections)`, flatOut));
    console.log(runLine(`bookings at half that rate (${rate} req/s, paced evenly)`, load));
    if (load.skipped > 0) console.log(`  note: ${load.skipped} paced requests skipped, ${connections} already in flight`);
    console.log(`projection lag (bookings) at ${rate} bookings/s, half the ${Math.round(flatOut.rps)}/s the command API reached: ${lagText(lag)} (target p99 ≤ 100 ms)`);
  } finally {
    await stop(service.child);
    await database.stop();
  }
}

main().then(lagUnderSteadyLoad).catch((error: unknown) => {
  console.error(error);
  process.exitCode = 1;
});
