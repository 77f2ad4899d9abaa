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

/**
 * Bodies of `POST /v1/bookings`, one night each, round robin over the listings, never the same night
 * twice. From the night after today (UTC), as every night of a stay falls at most a year ahead:
 * 365 nights of each listing, 73,000 bookings over 200 listings, before they are refused.
 */
export function bookingBodies(listingIds: readonly string[]): () => string {
  let booking = 0;
  const firstNight = nextUtcMidnight();
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

/** Projection lag over a load: percentiles in ms, and how many commands they stand for. */
export type LagSummary = {
  readonly p50: number;
  readonly p99: number;
  /** Commands answered with a position. */
  readonly sent: number;
  /** Of those, matched to the checkpoint that passed them. */
  readonly measured: number;
  /** Of those, still unmatched at the end of the watch: counted with their lag so far. */
  readonly pending: number;
  /** The least of the pending commands' lags so far (each counted as at least its own); undefined when none is pending. */
  readonly pendingAtLeastMs: number | undefined;
};

/**
 * Lags of commands from their answer to the checkpoint passing their position. A command still
 * unmatched when the watch ends is counted too, with the time from its answer to that end, a
 * lower bound of its lag: left out, a projector slowing down near the end would hide its worst
 * lags from the very percentiles meant to show them.
 */
export class CheckpointLags {
  private readonly waiting: { readonly position: Position; readonly at: number }[] = [];
  private readonly lags: number[] = [];
  private sent = 0;

  /** A command was answered at `at` (ms, `performance.now()`), its events ending at `position`. */
  answered(position: Position, at: number): void {
    this.sent += 1;
    this.waiting.push({ position, at });
  }

  /** The checkpoint reached `position` at `at`: every command at or before it has its lag. */
  reached(position: Position, at: number): void {
    for (let i = this.waiting.length - 1; i >= 0; i--) {
      const entry = this.waiting[i];
      if (entry && comparePositions(entry.position, position) <= 0) {
        this.lags.push(at - entry.at);
        this.waiting.splice(i, 1);
      }
    }
  }

  /** The lags as they stand when the watch ends at `endedAt`. */
  summary(endedAt: number): LagSummary {
    const sofar = this.waiting.map((entry) => endedAt - entry.at);
    const all = [...this.lags, ...sofar];
    const pendingAtLeastMs = sofar.length === 0 ? undefined : sofar.reduce((least, lag) => Math.min(least, lag));
    return { p50: percentile(all, 50), p99: percentile(all, 99), sent: this.sent, measured: this.lags.length, pending: sofar.length, pendingAtLeastMs };
  }
}

/** `p50 …, p99 … over N commands (M matched to their checkpoint, K still pending…)`: one line's worth. */
export function lagText(lag: LagSummary): string {
  const pending = lag.pendingAtLeastMs === undefined ? '0 still pending' : `${lag.pending} still pending, counted as ≥ ${lag.pendingAtLeastMs.toFixed(0)} ms`;
  return `p50 ${lag.p50.toFixed(1)} ms, p99 ${lag.p99.toFixed(1)} ms over ${lag.sent} commands (${lag.measured} matched to their checkpoint, ${pending})`;
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
}): Promise<{ load: Awaited<ReturnType<typeof pacedLoad>>; lag: LagSummary }> {
  const listener = new pg.Client(options.databaseUrl);
  const poster = keepAlivePoster(options.maxInFlight);
  await listener.connect();
  await listener.query('LISTEN projection_checkpoint');
  const lags = new CheckpointLags();
  listener.on('notification', (message) => {
    const [name, text] = (message.payload ?? '').split(':');
    const reached = text ? parsePosition(text) : undefined;
    if (name === 'bookings' && reached) lags.reached(reached, performance.now());
  });
  try {
    await untilProjectionsCatchUp(listener, options);
    const load = await pacedLoad({
      rate: options.rate,
      seconds: options.seconds,
      maxInFlight: options.maxInFlight,
      send: async () => {
        const { status, position } = await book(options, poster);
        if (position) lags.answered(position, performance.now());
        return status;
      },
    });
    // The last commands' checkpoints arrive after the load stops.
    await sleep(1000);
    return { load, lag: lags.summary(performance.now()) };
  } finally {
    poster.close();
    await listener.end();
  }
}

type Poster = ReturnType<typeof keepAlivePoster>;

/** One booking: its status, and the `Event-Position` of its answer if it was accepted. */
async function book(options: { commands: string; nextBooking: () => string }, poster: Poster): Promise<{ status: number; position: Position | undefined }> {
  const response = await poster.post(`${options.commands}/v1/bookings`, options.nextBooking(), { authorization: `Bearer ${token(randomUUID(), ['CONSUMER'])}` });
  if (response.status < 200 || response.status >= 300) return { status: response.status, position: undefined };
  const position = response.headers['event-position'];
  return { status: response.status, position: parsePosition(typeof position === 'string' ? position : '') };
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
  const { status, position: head } = await book(options, poster).finally(() => poster.close());
  if (!head) throw new Error(`POST /v1/bookings answered ${status} without an Event-Position`);
  const deadline = Date.now() + 60_000;
  while (Date.now() < deadline) {
    const { rows } = await client.query<{ position_commit: string; position_prepare: string }>('SELECT position_commit, position_prepare FROM projection_checkpoints WHERE active');
    if (rows.length > 0 && rows.every((row) => comparePositions(rowPosition(row), head) >= 0)) return;
    await sleep(100);
  }
  console.log('  note: the read models had not caught up after 60 s; what follows runs beside their backlog');
}

/** The start of tomorrow in UTC, as ms: a day every bench booking may start on, in any time zone. */
export function nextUtcMidnight(now: number = Date.now()): number {
  const dayMs = 86_400_000;
  return (Math.floor(now / dayMs) + 1) * dayMs;
}
