// Event store benchmark: our PostgreSQL adapter against @event-driven-io/emmett-postgresql, in
// one run on one database, one figure per line. `npm run bench:event-store`; set DATABASE_URL
// to use an existing server, else an embedded one is started in a temporary directory.
//
// Each figure runs ours then theirs back to back, so drift in the machine's load hits both.
import { randomUUID } from 'node:crypto';
import { mkdtemp, rm } from 'node:fs/promises';
import { cpus, tmpdir } from 'node:os';
import path from 'node:path';
import { dumbo, type Dumbo } from '@event-driven-io/dumbo';
import { STREAM_DOES_NOT_EXIST } from '@event-driven-io/emmett';
import { getPostgreSQLEventStore, readMessagesBatch, type PostgresEventStore } from '@event-driven-io/emmett-postgresql';
import pg from 'pg';
import type { JsonObject, NewEvent } from '../src/application/ports/event-store.js';
import { PgEventStore } from '../src/infrastructure/pg-event-store/pg-event-store.js';
import { createPool, migrateToLatest } from '../src/infrastructure/postgres/database.js';
import { startEmbeddedPostgres, type EmbeddedDatabase } from '../src/infrastructure/postgres/embedded-postgres.js';

// BENCH_SCALE shrinks every count, for checking the script itself quickly (e.g. 0.05).
const scale = Number(process.env.BENCH_SCALE ?? 1);
const singleAppends = Math.round(20_000 * scale);
const writers = 8;
const oneStreamAppends = Math.round(1_000 * scale);
const readAllEvents = Math.round(100_000 * scale);
const poolSize = 10;

type Contender = {
  /** Appends one event to a stream that does not exist yet. */
  appendNew(streamId: string): Promise<void>;
  /** Appends one event at the exact expected revision (0-based: that of the stream's last event). */
  appendAt(streamId: string, revision: number): Promise<void>;
  appendBatch(streamId: string, size: number): Promise<void>;
  /** Reads `count` events of the global order from the start; returns how many distinct it saw. */
  readAll(count: number): Promise<{ read: number; distinct: number }>;
};

async function main(): Promise<void> {
  const server = await connect();
  const pool = createPool(server.url, poolSize);
  const emmettPool: Dumbo = dumbo({ connectionString: server.url, maxConnections: poolSize });
  const ours = new PgEventStore(pool);
  const theirs = getPostgreSQLEventStore(server.url, { connectionOptions: { dumbo: emmettPool } });
  try {
    await migrateToLatest(pool);
    await theirs.schema.migrate();
    const version = (await pool.query<{ server_version: string }>('SHOW server_version')).rows[0]?.server_version;
    console.log(`PostgreSQL ${version ?? '?'}, ${cpus().length} cores, Node ${process.version}; ours vs @event-driven-io/emmett-postgresql 0.42${scale === 1 ? '' : `; counts scaled by ${scale}`}`);
    const contenders = { ours: oursContender(ours), theirs: emmettContender(theirs, emmettPool) };

    // Warm both up (connections, prepared plans, caches), untimed.
    for (const contender of Object.values(contenders)) await appendsPerSecond(500, 4, (n) => contender.appendNew(`warmup-${n}-${randomUUID()}`));

    await figure('(a) single-event appends to new streams, 1 writer', 'appends/s', (c) =>
      appendsPerSecond(singleAppends, 1, () => c.appendNew(`a-${randomUUID()}`)),
    );
    await figure(`(b) single-event appends to new streams, ${writers} writers`, 'appends/s', (c) =>
      appendsPerSecond(singleAppends, writers, () => c.appendNew(`b-${randomUUID()}`)),
    );
    await figure('(c) appends to one stream with exact expected revision', 'appends/s', async (c) => {
      const streamId = `c-${randomUUID()}`;
      await c.appendNew(streamId);
      return appendsPerSecond(oneStreamAppends, 1, (n) => c.appendAt(streamId, n));
    });

    // Top both up to the events readAll reads: batches of 100, which is quick.
    for (const contender of Object.values(contenders)) {
      const present = singleAppends * 2 + oneStreamAppends + 1 + 500;
      const batches = Math.max(0, Math.ceil((readAllEvents - present) / 100));
      await appendsPerSecond(batches, writers, () => contender.appendBatch(`fill-${randomUUID()}`, 100));
    }
    let distinct = { ours: 0, theirs: 0 };
    await figure(`readAll over ${readAllEvents.toLocaleString('en-US')} events`, 'events/s', async (c) => {
      const started = performance.now();
      const result = await c.readAll(readAllEvents);
      distinct = { ...distinct, [c === contenders.ours ? 'ours' : 'theirs']: result.distinct };
      return result.read / ((performance.now() - started) / 1000);
    });
    for (const [name, seen] of Object.entries(distinct)) {
      if (seen !== readAllEvents) console.log(`  note: ${name} delivered ${seen} distinct of the first ${readAllEvents} events`);
    }

    async function figure(label: string, unit: string, run: (contender: Contender) => Promise<number>): Promise<void> {
      const oursRate = await run(contenders.ours);
      const theirsRate = await run(contenders.theirs);
      console.log(
        `${label.padEnd(58)} ours ${format(oursRate).padStart(9)} ${unit}   emmett ${format(theirsRate).padStart(9)} ${unit}   ours/theirs ${(oursRate / theirsRate).toFixed(2)}`,
      );
    }
  } finally {
    await ours.close();
    await pool.end();
    await theirs.close();
    await emmettPool.close();
    await server.stop();
  }
}

function oursContender(store: PgEventStore): Contender {
  return {
    async appendNew(streamId) {
      await store.appendToStream(streamId, [newEvent()], { expectedRevision: 'no_stream' });
    },
    async appendAt(streamId, revision) {
      await store.appendToStream(streamId, [newEvent()], { expectedRevision: revision });
    },
    async appendBatch(streamId, size) {
      await store.appendToStream(streamId, Array.from({ length: size }, newEvent), { expectedRevision: 'no_stream' });
    },
    async readAll(count) {
      const ids = new Set<string>();
      let read = 0;
      for await (const event of store.readAll({ maxCount: count })) {
        ids.add(event.id);
        read += 1;
      }
      return { read, distinct: ids.size };
    },
  };
}

function emmettContender(store: PostgresEventStore, pool: Dumbo): Contender {
  const toEmmett = (event: NewEvent) => ({ type: event.type, data: event.data, metadata: event.metadata });
  return {
    async appendNew(streamId) {
      await store.appendToStream(streamId, [toEmmett(newEvent())], { expectedStreamVersion: STREAM_DOES_NOT_EXIST });
    },
    async appendAt(streamId, revision) {
      // Emmett counts versions from 1: the version of a stream is its number of events.
      await store.appendToStream(streamId, [toEmmett(newEvent())], { expectedStreamVersion: BigInt(revision + 1) });
    },
    async appendBatch(streamId, size) {
      await store.appendToStream(streamId, Array.from({ length: size }, () => toEmmett(newEvent())), {
        expectedStreamVersion: STREAM_DOES_NOT_EXIST,
      });
    },
    async readAll(count) {
      // Emmett's own catch-up read, as its consumers page through the log. It checkpoints the
      // global position alone while ordering by transaction id, so `distinct` can fall short.
      const ids = new Set<string>();
      let read = 0;
      let after = 0n;
      while (read < count) {
        const batch = await readMessagesBatch(pool.execute, { after, batchSize: Math.min(1000, count - read) });
        for (const message of batch.messages) {
          ids.add(message.metadata.messageId);
          read += 1;
        }
        if (batch.messages.length === 0) break;
        after = batch.currentGlobalPosition;
      }
      return { read, distinct: ids.size };
    },
  };
}

/** Runs `total` operations on `concurrency` sequential loops; returns operations per second. */
async function appendsPerSecond(total: number, concurrency: number, operation: (n: number) => Promise<void>): Promise<number> {
  let next = 0;
  const started = performance.now();
  await Promise.all(
    Array.from({ length: concurrency }, async () => {
      while (next < total) await operation(next++);
    }),
  );
  return total / ((performance.now() - started) / 1000);
}

/** A booking-sized event: a few fields of data and the metadata every event carries. */
function newEvent(): NewEvent {
  const data: JsonObject = {
    bookingId: randomUUID(),
    listingId: randomUUID(),
    from: '2026-07-01',
    to: '2026-07-08',
    amount: { amount: 84_000, currency: 'EUR' },
  };
  const metadata: JsonObject = {
    actorId: randomUUID(),
    actorRoles: ['consumer'],
    correlationId: randomUUID(),
    causationId: randomUUID(),
    requestId: randomUUID(),
    occurredAt: new Date().toISOString(),
    schemaVersion: 1,
  };
  return { id: randomUUID(), type: 'BookingRequested', data, metadata };
}

function format(rate: number): string {
  return Math.round(rate).toLocaleString('en-US');
}

async function connect(): Promise<{ url: string; stop(): Promise<void> }> {
  const external = process.env.DATABASE_URL;
  if (external) return { url: external, stop: async () => undefined };
  const dir = await mkdtemp(path.join(tmpdir(), 'bench-event-store-'));
  const server: EmbeddedDatabase = await startEmbeddedPostgres({ dataDir: path.join(dir, 'pg'), persistent: false });
  const admin = new pg.Client(server.adminUrl);
  await admin.connect();
  await admin.query('CREATE DATABASE bench');
  await admin.end();
  return {
    url: server.urlFor('bench'),
    async stop() {
      await server.stop();
      await rm(dir, { recursive: true, force: true });
    },
  };
}

await main();
