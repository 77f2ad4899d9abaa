// Event store benchmark: our PostgreSQL adapter against @event-driven-io/emmett-postgresql, in
// one run on one database, one figure per line. `npm run bench:event-store`; set DATABASE_URL
// to use an existing server, else an embedded one is started in a temporary directory.
//
// Each figure runs ours then theirs back to back, so drift in the machine's load hits both.
import { randomUUID } from 'node:crypto';
import { cpus } from 'node:os';
import { dumbo, endAllPools, type Dumbo } from '@event-driven-io/dumbo';
import { STREAM_DOES_NOT_EXIST } from '@event-driven-io/emmett';
import { getPostgreSQLEventStore, readMessagesBatch, type PostgresEventStore } from '@event-driven-io/emmett-postgresql';
import type { JsonObject, NewEvent } from '../src/application/ports/event-store.js';
import { PgEventStore } from '../src/infrastructure/pg-event-store/pg-event-store.js';
import { createPool, migrateToLatest } from '../src/infrastructure/postgres/database.js';
import { benchDatabase } from './support/bench-database.js';

// BENCH_SCALE shrinks every count, for checking the script itself quickly (e.g. 0.05).
const scale = Number(process.env.BENCH_SCALE ?? 1);
const singleAppends = Math.round(20_000 * scale);
const writers = 8;
const oneStreamAppends = Math.round(1_000 * scale);
const readAllEvents = Math.round(100_000 * scale);
const poolSize = 10;
/** Each append figure alternates ours and theirs this many times. */
const rounds = 4;

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
  const server = await benchDatabase('event-store');
  const pool = createPool(server.url, poolSize);
  // dumbo's pg.Pool keeps pg's default size, 10, the same as ours.
  const emmettPool: Dumbo = dumbo({ connectionString: server.url });
  const ours = new PgEventStore(pool);
  const theirs = getPostgreSQLEventStore(server.url, { connectionOptions: { dumbo: emmettPool } });
  try {
    await migrateToLatest(pool);
    await theirs.schema.migrate();
    const version = (await pool.query<{ server_version: string }>('SHOW server_version')).rows[0]?.server_version;
    console.log(
      `PostgreSQL ${version ?? '?'}, ${cpus().length} cores, Node ${process.version}; ours vs @event-driven-io/emmett-postgresql 0.42` +
        (scale === 1 ? '' : `; counts scaled by ${scale}`),
    );
    const contenders = { ours: oursContender(ours), theirs: emmettContender(theirs, emmettPool) };

    // Warm both up (connections, prepared plans, caches), untimed.
    for (const contender of Object.values(contenders)) await runConcurrently(500, 4, () => contender.appendNew(`warmup-${randomUUID()}`));

    const perRound = (total: number) => Math.round(total / rounds);
    await figure('(a) single-event appends to new streams, 1 writer', 'appends/s', rounds, async (c) => {
      await runConcurrently(perRound(singleAppends), 1, () => c.appendNew(`a-${randomUUID()}`));
      return perRound(singleAppends);
    });
    await figure(`(b) single-event appends to new streams, ${writers} writers`, 'appends/s', rounds, async (c) => {
      await runConcurrently(perRound(singleAppends), writers, () => c.appendNew(`b-${randomUUID()}`));
      return perRound(singleAppends);
    });
    const oneStream = new Map<Contender, { streamId: string; revision: number }>();
    for (const contender of Object.values(contenders)) {
      const streamId = `c-${randomUUID()}`;
      await contender.appendNew(streamId);
      oneStream.set(contender, { streamId, revision: 0 });
    }
    await figure('(c) appends to one stream with exact expected revision', 'appends/s', rounds, async (c) => {
      const stream = oneStream.get(c);
      if (!stream) throw new Error('no stream');
      await runConcurrently(perRound(oneStreamAppends), 1, async () => {
        await c.appendAt(stream.streamId, stream.revision);
        stream.revision += 1;
      });
      return perRound(oneStreamAppends);
    });

    // Top both up to the events readAll reads: batches of 100, which is quick.
    for (const contender of Object.values(contenders)) {
      const present = singleAppends * 2 + oneStreamAppends + 1 + 500;
      const batches = Math.max(0, Math.ceil((readAllEvents - present) / 100));
      await runConcurrently(batches, writers, () => contender.appendBatch(`fill-${randomUUID()}`, 100));
    }
    const distinct = new Map<Contender, number>();
    // One untimed pass each first: the JIT and PostgreSQL's buffer cache warm up on it, not on a
    // timed round (the events were just written, partly still in flight to disk).
    for (const contender of Object.values(contenders)) await contender.readAll(readAllEvents);
    await figure(`readAll over ${readAllEvents.toLocaleString('en-US')} events`, 'events/s', 3, async (c) => {
      const result = await c.readAll(readAllEvents);
      distinct.set(c, Math.min(distinct.get(c) ?? Number.POSITIVE_INFINITY, result.distinct));
      return result.read;
    });
    for (const [name, contender] of Object.entries(contenders)) {
      const seen = distinct.get(contender) ?? 0;
      if (seen !== readAllEvents) {
        console.log(
          `  note: ${name} returned ${seen.toLocaleString('en-US')} distinct events among ${readAllEvents.toLocaleString('en-US')} read: its pages repeat and skip events`,
        );
      }
    }

    /**
     * Runs ours then theirs, `times` over, and divides the work each did by the time it took:
     * taking turns, both meet the same drift in what else the machine is doing.
     */
    async function figure(label: string, unit: string, times: number, work: (contender: Contender) => Promise<number>): Promise<void> {
      const done = { ours: { units: 0, ms: 0 }, theirs: { units: 0, ms: 0 } };
      for (let round = 0; round < times; round += 1) {
        for (const name of ['ours', 'theirs'] as const) {
          const started = performance.now();
          done[name].units += await work(contenders[name]);
          done[name].ms += performance.now() - started;
        }
      }
      const oursRate = (done.ours.units / done.ours.ms) * 1000;
      const theirsRate = (done.theirs.units / done.theirs.ms) * 1000;
      console.log(
        `${label.padEnd(58)} ours ${format(oursRate).padStart(9)} ${unit}   emmett ${format(theirsRate).padStart(9)} ${unit}   ours/theirs ${(oursRate / theirsRate).toFixed(2)}`,
      );
    }
  } finally {
    await ours.close();
    await pool.end();
    await theirs.close();
    // Emmett's migrations take pool references that its close() does not give back.
    await endAllPools();
    // Some pool of emmett's migrations stays open and has no error listener: the server going
    // away must not crash the benchmark at its very end.
    process.on('uncaughtException', (error) => {
      if (!(error instanceof Error && 'code' in error && error.code === '57P01')) throw error;
    });
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

/** Runs `total` operations on `concurrency` loops, each one operation at a time. */
async function runConcurrently(total: number, concurrency: number, operation: () => Promise<void>): Promise<void> {
  let started = 0;
  await Promise.all(
    Array.from({ length: concurrency }, async () => {
      while (started < total) {
        started += 1;
        await operation();
      }
    }),
  );
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

await main();
