// End-to-end HTTP throughput, in one run on one PostgreSQL: fastify baselines beside our command
// and query APIs, with autocannon (50 connections). `npm run bench:http`; one line per figure.
// Servers run as child processes on 127.0.0.1; every phase is bounded in time.
import type { ChildProcess } from 'node:child_process';
import { randomUUID } from 'node:crypto';
import autocannon, { type Request } from 'autocannon';
import pg from 'pg';
import { comparePositions, parsePosition, type Position } from '../src/application/ports/position.js';
import { freePort } from '../src/infrastructure/postgres/embedded-postgres.js';
import { benchAuthEnv, token } from './support/bench-auth.js';
import { benchDatabase, percentile } from './support/bench-database.js';
import { rssOf, start, stop } from './support/service-process.js';

const seconds = Number(process.env.BENCH_SECONDS ?? 10);
const connections = 50;
const listingCount = 200;
const doctorCount = 100;

type Run = { rps: number; p50: number; p99: number; errors: number; non2xx: number };

async function cannon(url: string, options: { requests?: Request[]; method?: 'GET' | 'POST'; body?: string; overallRate?: number; headers?: Record<string, string> } = {}): Promise<Run> {
  const result = await autocannon({
    url,
    connections,
    duration: seconds,
    ...(options.requests ? { requests: options.requests } : {}),
    ...(options.method ? { method: options.method } : {}),
    ...(options.body ? { body: options.body } : {}),
    ...(options.overallRate ? { overallRate: options.overallRate } : {}),
    headers: { 'content-type': 'application/json', ...options.headers },
  });
  return { rps: result.requests.average, p50: result.latency.p50, p99: result.latency.p99, errors: result.errors, non2xx: result.non2xx };
}

function line(label: string, run: Run): void {
  const failures = run.errors + run.non2xx > 0 ? ` (${run.errors} errors, ${run.non2xx} non-2xx)` : '';
  console.log(`${label}: ${Math.round(run.rps).toLocaleString('en-US')} req/s, p50 ${run.p50} ms, p99 ${run.p99} ms${failures}`);
}

async function post(url: string, body: unknown, bearer: string, method = 'POST'): Promise<void> {
  const response = await fetch(url, { method, headers: { 'content-type': 'application/json', authorization: `Bearer ${bearer}` }, body: JSON.stringify(body) });
  if (!response.ok) throw new Error(`${method} ${url}: ${response.status} ${await response.text()}`);
}

const database = await benchDatabase('http');
const children: ChildProcess[] = [];
try {
  const [basePort, commandPort, queryPort] = [await freePort(), await freePort(), await freePort()];
  children.push(await start(['bench/support/baseline-server.ts'], { DATABASE_URL: database.url, PORT: String(basePort) }, [`http://127.0.0.1:${basePort}/hello`]));
  // BENCH_ROLE=command measures the APIs without projectors beside them (queries then read stale rows).
  const service = await start(['src/infrastructure/main.ts', '--role', process.env.BENCH_ROLE ?? 'all'], {
    DATABASE_URL: database.url,
    COMMAND_PORT: String(commandPort),
    QUERY_PORT: String(queryPort),
    ...benchAuthEnv,
    LOG_LEVEL: 'warn',
    RATE_LIMIT_MAX: '100000000',
    DATABASE_POOL_SIZE: '20',
  }, [`http://127.0.0.1:${commandPort}/health/ready`, `http://127.0.0.1:${queryPort}/health/ready`]);
  children.push(service);
  let peakRss = 0;
  const sampler = setInterval(() => void rssOf(service.pid).then((rss) => (peakRss = Math.max(peakRss, rss))), 250);

  const base = `http://127.0.0.1:${basePort}`;
  const commands = `http://127.0.0.1:${commandPort}`;
  const queries = `http://127.0.0.1:${queryPort}`;

  // Many listings and doctors, so that the load spreads over streams as real traffic does.
  const owner = randomUUID();
  const ownerToken = token(owner, ['OWNER']);
  const listingIds: string[] = [];
  for (let i = 0; i < listingCount; i++) {
    const response = await fetch(`${commands}/v1/listings`, {
      method: 'POST',
      headers: { 'content-type': 'application/json', authorization: `Bearer ${ownerToken}` },
      body: JSON.stringify({ title: `Listing ${i}`, description: 'bench', category: i % 2 ? 'venue' : 'equipment', location: 'Lyon', capacity: 4, pricePerDay: 10_000, currency: 'EUR' }),
    });
    listingIds.push(String(((await response.json()) as { id: string }).id));
  }
  const doctorIds = Array.from({ length: doctorCount }, () => randomUUID());
  const allDay = [{ from: '00:00', to: '23:30' }];
  const weeklyHours = { mon: allDay, tue: allDay, wed: allDay, thu: allDay, fri: allDay, sat: allDay, sun: allDay };
  for (const id of doctorIds) await post(`${commands}/v1/doctors/${id}/schedule`, { timeZone: 'UTC', slotMinutes: 30, weeklyHours, daysOff: [] }, token(id, ['DOCTOR']), 'PUT');

  line('(a) baseline fastify hello world', await cannon(`${base}/hello`));
  const insert = await cannon(`${base}/insert`, { method: 'POST', body: JSON.stringify({ listingId: randomUUID(), startDate: '2030-01-01' }) });
  line('(b) baseline fastify + one INSERT', insert);
  const select = await cannon(`${base}/select`);
  line('(c) baseline fastify + one indexed SELECT', select);

  // (d) every request a fresh consumer and a free night: all accepted, none conflicting.
  let booking = 0;
  const firstNight = Date.parse('2030-01-01T00:00:00Z');
  const consumers: string[] = [];
  const nextBooking = (): string => {
    const k = booking++;
    const night = new Date(firstNight + Math.floor(k / listingCount) * 86_400_000);
    const startDate = night.toISOString().slice(0, 10);
    const endDate = new Date(night.getTime() + 86_400_000).toISOString().slice(0, 10);
    return JSON.stringify({ listingId: listingIds[k % listingCount], startDate, endDate });
  };
  const bookingRequest = (positions?: (position: string) => void): Request => ({
    method: 'POST',
    path: '/v1/bookings',
    setupRequest: (request) => {
      const consumer = randomUUID();
      if (consumers.length < 1000) consumers.push(consumer);
      return { ...request, body: nextBooking(), headers: { ...request.headers, 'content-type': 'application/json', authorization: `Bearer ${token(consumer, ['CONSUMER'])}` } };
    },
    onResponse: (_status, _body, _context, headers) => {
      const position = headers?.['event-position'];
      if (positions && typeof position === 'string') positions(position);
    },
  });
  const bookings = await cannon(commands, { requests: [bookingRequest()] });
  line('(d) command API POST /v1/bookings', bookings);

  let appointment = 0;
  const appointments = await cannon(commands, {
    requests: [
      {
        method: 'POST',
        path: '/v1/appointments',
        setupRequest: (request) => {
          const k = appointment++;
          const slot = Math.floor(k / doctorCount);
          const start = new Date(Date.parse('2030-01-01T00:00:00Z') + Math.floor(slot / 47) * 86_400_000 + (slot % 47) * 30 * 60_000).toISOString();
          const body = JSON.stringify({ doctorId: doctorIds[k % doctorCount], start, reason: 'bench' });
          return { ...request, body, headers: { ...request.headers, 'content-type': 'application/json', authorization: `Bearer ${token(randomUUID(), ['PATIENT'])}` } };
        },
      },
    ],
  });
  line('(d) command API POST /v1/appointments', appointments);

  // (e) reads of what (d) wrote.
  const readers = consumers.slice(0, 500);
  let reader = 0;
  const mine = await cannon(queries, {
    requests: [
      {
        method: 'GET',
        path: '/v1/bookings/me',
        setupRequest: (request) => ({ ...request, headers: { ...request.headers, authorization: `Bearer ${token(readers[reader++ % readers.length] ?? '', ['CONSUMER'])}` } }),
      },
    ],
  });
  line('(e) query API GET /v1/bookings/me', mine);
  const byCategory = await cannon(`${queries}/v1/listings?category=venue`);
  line('(e) query API GET /v1/listings?category=venue', byCategory);

  console.log(`ratio d/b (bookings / INSERT): ${(bookings.rps / insert.rps).toFixed(2)} (target ≥ 0.5, p99 ≤ 25 ms: ${bookings.p99} ms)`);
  console.log(`ratio d/b (appointments / INSERT): ${(appointments.rps / insert.rps).toFixed(2)} (p99 ${appointments.p99} ms)`);
  console.log(`ratio e/c (bookings/me / SELECT): ${(mine.rps / select.rps).toFixed(2)} (target ≥ 0.7)`);
  console.log(`ratio e/c (listings?category / SELECT): ${(byCategory.rps / select.rps).toFixed(2)} (target ≥ 0.7)`);

  // Projection lag while bookings come at half the rate measured above: from the command's answer
  // to the bookings read model's checkpoint passing its position (checkpoint NOTIFY).
  const listener = new pg.Client(database.url);
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
  const halfRate = Math.max(1, Math.round(bookings.rps / 2));
  const paced = await cannon(commands, {
    overallRate: halfRate,
    requests: [bookingRequest((position) => {
      const parsed = parsePosition(position);
      if (parsed) pending.push({ position: parsed, at: performance.now() });
    })],
  });
  await new Promise((resolve) => setTimeout(resolve, 1000));
  await listener.end();
  line(`(d) at half rate (${halfRate} req/s)`, paced);
  console.log(`projection lag (bookings) at ${halfRate} commands/s: p50 ${percentile(lags, 50).toFixed(1)} ms, p99 ${percentile(lags, 99).toFixed(1)} ms over ${lags.length} commands (target p99 ≤ 100 ms)`);

  clearInterval(sampler);
  console.log(`peak RSS of the all-roles process: ${Math.round(peakRss)} MB (target ≤ 300 MB)`);
} finally {
  for (const child of children.reverse()) await stop(child);
  await database.stop();
}
