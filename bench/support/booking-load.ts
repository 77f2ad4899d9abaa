import { randomUUID } from 'node:crypto';
import type { Request } from 'autocannon';
import pg from 'pg';
import { comparePositions, parsePosition, type Position } from '../../src/application/ports/position.js';
import { rowPosition } from '../../src/projections/runtime/projection-checkpoints.queries.js';
import { token } from './bench-auth.js';
import { cannon, type Run } from './cannon.js';
import { keepAlivePoster } from './keep-alive-post.js';
import { percentile } from './bench-database.js';
import { pacedLoad } from './paced-load.js';
import { sleep } from '../../src/application/sleep.js';

// Bookings as the benches send them: many listings, every request a fresh consumer and a free
// night, so that all are accepted and none conflicts, and the load spreads over streams as real
// traffic does.

/** Creates `count` listings through the command API; returns their ids. */
export async function createBenchListings(commands: string, count: number): Promise<string[]> {
  const ownerToken = token(randomUUID(), ['OWNER']);
  const ids: string[] = [];
  for (let i = 0; i < count; i++) {
    const response = await fetch(`${commands}/v1/listings`, {
      method: 'POST',
      headers: { 'content-type': 'application/json', authorization: `Bearer ${ownerToken}` },
      body: JSON.stringify({ title: `Listing ${i}`, description: 'bench', category: i % 2 ? 'venue' : 'equipment', location: 'Lyon', capacity: 4, pricePerDay: 10_000, currency: 'EUR' }),
    });
    if (!response.ok) throw new Error(`POST /v1/listings: ${response.status} ${await response.text()}`);
    ids.push(String(((await response.json()) as { id: string }).id));
  }
  return ids;
}

/** Bodies of `POST /v1/bookings`, one night each, round robin over the listings, never the same night twice. */
export function bookingBodies(listingIds: readonly string[]): () => string {
  let booking = 0;
  const firstNight = Date.parse('2030-01-01T00:00:00Z');
  return () => {
    const k = booking++;
    const night = new Date(firstNight + Math.floor(k / listingIds.length) * 86_400_000);
    const startDate = night.toISOString().slice(0, 10);
    const endDate = new Date(night.getTime() + 86_400_000).toISOString().slice(0, 10);
    return JSON.stringify({ listingId: listingIds[k % listingIds.length], startDate, endDate });
  };
}

/** Bookings as fast as `connections` connections get answers; `onConsumer` sees each new consumer id. */
export function bookingsFlatOut(options: {
  commands: string;
  seconds: number;
  connections: number;
  warmupSeconds?: number;
  nextBooking: () => string;
  onConsumer?: (consumerId: string) => void;
}): Promise<Run> {
  const request: Request = {
    method: 'POST',
    path: '/v1/bookings',
    setupRequest: (request) => {
      const consumer = randomUUID();
      options.onConsumer?.(consumer);
      const headers = { ...request.headers, 'content-type': 'application/json', authorization: `Bearer ${token(consumer, ['CONSUMER'])}` };
      return { ...request, body: options.nextBooking(), headers };
    },
  };
  return cannon(options.commands, options, { requests: [request] });
}

/**
 * Projection lag of the bookings read model under a steady load of bookings at `rate`: for each
 * command, from its answer to the read model's checkpoint passing its `Event-Position` (the
 * checkpoint NOTIFY, as the query API's read-your-writes waits on it).
 */
export async function bookingsLagUnderLoad(options: {
  databaseUrl: string;
  commands: string;
  rate: number;
  seconds: number;
  maxInFlight: number;
  nextBooking: () => string;
}): Promise<{ load: Awaited<ReturnType<typeof pacedLoad>>; p50: number; p99: number; measured: number }> {
  const listener = new pg.Client(options.databaseUrl);
  const poster = keepAlivePoster(options.maxInFlight);
  await listener.connect();
  await listener.query('LISTEN projection_checkpoint');
  const pending: { position: Position; at: number }[] = [];
  const lags: number[] = [];
  listener.on('notification', (message) => {
    const [name, text] = (message.payload ?? '').split(':');
    const reached = text ? parsePosition(text) : undefined;
    if (name !== 'bookings' || !reached) return;
    const now = performance.now();
    for (let i = pending.length - 1; i >= 0; i--) {
      const entry = pending[i];
      if (entry && comparePositions(entry.position, reached) <= 0) {
        lags.push(now - entry.at);
        pending.splice(i, 1);
      }
    }
  });
  try {
    await untilProjectionsCatchUp(listener, options);
    const load = await pacedLoad({
      rate: options.rate,
      seconds: options.seconds,
      maxInFlight: options.maxInFlight,
      send: async () => {
        const position = await book(options, poster);
        if (position) pending.push({ position, at: performance.now() });
      },
    });
    // The last commands' checkpoints arrive after the load stops.
    await sleep(1000);
    return { load, p50: percentile(lags, 50), p99: percentile(lags, 99), measured: lags.length };
  } finally {
    poster.close();
    await listener.end();
  }
}

type Poster = ReturnType<typeof keepAlivePoster>;

/** One booking; the `Event-Position` of its answer. */
async function book(options: { commands: string; nextBooking: () => string }, poster: Poster): Promise<Position | undefined> {
  const response = await poster.post(`${options.commands}/v1/bookings`, options.nextBooking(), { authorization: `Bearer ${token(randomUUID(), ['CONSUMER'])}` });
  if (response.status < 200 || response.status >= 300) throw new Error(`POST /v1/bookings: ${response.status}`);
  const position = response.headers['event-position'];
  return parsePosition(typeof position === 'string' ? position : '');
}

/**
 * Waits until the service is idle again after a load: the log stopped growing for a second
 * (whatever the load set off, e.g. a process manager's commands, has been appended), and every
 * read model holds it. 60 s at most for each.
 */
export async function settled(options: { databaseUrl: string; commands: string; nextBooking: () => string }): Promise<void> {
  const client = new pg.Client(options.databaseUrl);
  await client.connect();
  try {
    const head = async () => (await client.query<{ head: string | null }>('SELECT max(global_position)::text AS head FROM events')).rows[0]?.head;
    const deadline = Date.now() + 60_000;
    for (let last = await head(), quietFor = 0; quietFor < 1000 && Date.now() < deadline; ) {
      await sleep(250);
      const now = await head();
      quietFor = now === last ? quietFor + 250 : 0;
      last = now;
    }
    await untilProjectionsCatchUp(client, options);
  } finally {
    await client.end();
  }
}

/**
 * Waits (60 s at most) until every active read model has passed a booking made now: a flat-out
 * run just before leaves a backlog, and draining it is not the lag of a steady load.
 */
async function untilProjectionsCatchUp(client: pg.Client, options: { commands: string; nextBooking: () => string }): Promise<void> {
  const poster = keepAlivePoster(1);
  const head = await book(options, poster).finally(() => poster.close());
  if (!head) throw new Error('POST /v1/bookings answered without an Event-Position');
  const deadline = Date.now() + 60_000;
  while (Date.now() < deadline) {
    const { rows } = await client.query<{ position_commit: string; position_prepare: string }>('SELECT position_commit, position_prepare FROM projection_checkpoints WHERE active');
    if (rows.length > 0 && rows.every((row) => comparePositions(rowPosition(row), head) >= 0)) return;
    await sleep(100);
  }
  console.log('  note: the read models had not caught up after 60 s; what follows runs beside their backlog');
}
