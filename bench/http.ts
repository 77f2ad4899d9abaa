// End-to-end HTTP throughput, in one run on one PostgreSQL: fastify baselines beside our command
// and query APIs, with autocannon (50 connections). `npm run bench:http`; one line per figure.
// Servers run as child processes on 127.0.0.1; every phase is bounded in time.
import type { ChildProcess } from 'node:child_process';
import { randomUUID } from 'node:crypto';
import { freePort } from '../src/infrastructure/postgres/embedded-postgres.js';
import { token } from './support/bench-auth.js';
import { benchDatabase, siblingDatabase } from './support/bench-database.js';
import { cannon, failuresOf, runLine, type Run } from './support/cannon.js';
import { bookingBodies, bookingsFlatOut, bookingsLagUnderLoad, createBenchListings, lagText, nextUtcMidnight, settled } from './support/booking-load.js';
import { rssOf, start, startBenchService, stop } from './support/service-process.js';

const seconds = Number(process.env.BENCH_SECONDS ?? 10);
const connections = 50;
const listingCount = 200;
const doctorCount = 100;

const load = { seconds, connections, warmupSeconds: Number(process.env.BENCH_WARMUP_SECONDS ?? 2) };

function line(label: string, run: Run): void {
  console.log(runLine(label, run));
}

/** The query API's cache lookups so far, from its `/metrics`. */
async function cacheLookups(queries: string): Promise<{ hit: number; miss: number }> {
  const text = await (await fetch(`${queries}/metrics`)).text();
  const count = (outcome: string) => Number(new RegExp(`^query_cache_lookups_total\\{outcome="${outcome}"\\} (\\S+)$`, 'm').exec(text)?.[1] ?? 0);
  return { hit: count('hit'), miss: count('miss') };
}

/** What share of the lookups since `before` the cache answered. */
async function hitShare(queries: string, before: { hit: number; miss: number }): Promise<string> {
  const after = await cacheLookups(queries);
  const hits = after.hit - before.hit;
  const lookups = hits + after.miss - before.miss;
  return `  query cache: ${lookups === 0 ? 'no lookups' : `${((100 * hits) / lookups).toFixed(1)} % of ${lookups.toLocaleString('en-US')} lookups answered from memory`}`;
}

async function post(url: string, body: unknown, bearer: string, method = 'POST'): Promise<void> {
  const response = await fetch(url, { method, headers: { 'content-type': 'application/json', authorization: `Bearer ${bearer}` }, body: JSON.stringify(body) });
  if (!response.ok) throw new Error(`${method} ${url}: ${response.status} ${await response.text()}`);
}

const database = await benchDatabase('http');
// The issue's reference (one appendToStream of emmett) needs a database of its own on the server.
const appendDatabase = await siblingDatabase(database.url, 'append').catch((error: unknown) => {
  console.log(`  note: no database for the one-append reference (${String(error)}); its lines are left out`);
  return undefined;
});
const children: ChildProcess[] = [];
try {
  const basePort = await freePort();
  const appendEnv: Record<string, string> = appendDatabase ? { APPEND_DATABASE_URL: appendDatabase.url } : {};
  children.push(await start(['bench/support/baseline-server.ts'], { DATABASE_URL: database.url, PORT: String(basePort), ...appendEnv }, [`http://127.0.0.1:${basePort}/hello`]));
  // BENCH_ROLE=command measures the command API without the projectors beside it; the figures that
  // need the query API or the projectors ((e), the projection lag) are then left out.
  const role = process.env.BENCH_ROLE ?? 'all';
  if (role !== 'all' && role !== 'command') throw new Error(`BENCH_ROLE is all or command, not ${role}`);
  const { child: service, commands, queries } = await startBenchService(database.url, role);
  children.push(service);
  let peakRss = 0;
  const sampler = setInterval(() => void rssOf(service.pid).then((rss) => (peakRss = Math.max(peakRss, rss))), 250);

  const base = `http://127.0.0.1:${basePort}`;

  // Many listings and doctors, so that the load spreads over streams as real traffic does.
  const listingIds = await createBenchListings(commands, listingCount);
  const doctorIds = Array.from({ length: doctorCount }, () => randomUUID());
  const allDay = [{ from: '00:00', to: '23:30' }];
  const weeklyHours = { mon: allDay, tue: allDay, wed: allDay, thu: allDay, fri: allDay, sat: allDay, sun: allDay };
  for (const id of doctorIds) await post(`${commands}/v1/doctors/${id}/schedule`, { timeZone: 'UTC', slotMinutes: 30, weeklyHours, daysOff: [] }, token(id, ['DOCTOR']), 'PUT');

  line('(a) baseline fastify hello world', await cannon(`${base}/hello`, load));
  const insert = await cannon(`${base}/insert`, load, { method: 'POST', body: JSON.stringify({ listingId: randomUUID(), startDate: '2030-01-01' }) });
  line('(b) baseline fastify + one INSERT', insert);
  const select = await cannon(`${base}/select`, load);
  line('(c) baseline fastify + one indexed SELECT', select);
  // The issue's reference for (d): a route doing one appendToStream to a new stream, emmett's and ours.
  const appendBody = { method: 'POST' as const, body: JSON.stringify({ listingId: randomUUID(), startDate: '2030-01-01' }) };
  const appends = appendDatabase && {
    emmett: await cannon(`${base}/append/emmett`, load, appendBody),
    ours: await cannon(`${base}/append/ours`, load, appendBody),
  };
  if (appends) {
    line('(r) reference: fastify + one appendToStream of @event-driven-io/emmett-postgresql', appends.emmett);
    line('(r) the same route on our event store', appends.ours);
  }

  // (d) every request a fresh consumer and a free night: all accepted, none conflicting.
  const nextBooking = bookingBodies(listingIds);
  const consumers: string[] = [];
  const bookings = await bookingsFlatOut({
    ...load,
    commands,
    nextBooking,
    onConsumer: (consumer) => void (consumers.length < 1000 && consumers.push(consumer)),
  });
  line('(d) command API POST /v1/bookings', bookings);

  let appointment = 0;
  // Tomorrow on: a slot starts at most a year ahead.
  const firstDay = nextUtcMidnight();
  const appointments = await cannon(commands, load, {
    requests: [
      {
        method: 'POST',
        path: '/v1/appointments',
        setupRequest: (request) => {
          const k = appointment++;
          const slot = Math.floor(k / doctorCount);
          const start = new Date(firstDay + Math.floor(slot / 47) * 86_400_000 + (slot % 47) * 30 * 60_000).toISOString();
          const body = JSON.stringify({ doctorId: doctorIds[k % doctorCount], start, reason: 'bench' });
          return { ...request, body, headers: { ...request.headers, 'content-type': 'application/json', authorization: `Bearer ${token(randomUUID(), ['PATIENT'])}` } };
        },
      },
    ],
  });
  line('(d) command API POST /v1/appointments', appointments);

  // (d) is to be all accepted: a ratio over a run with refusals says so on its own line, not only
  // on the run's line far above.
  console.log(`ratio d/b (bookings / INSERT): ${(bookings.rps / insert.rps).toFixed(2)} (target ≥ 0.5, p99 ≤ 25 ms: ${bookings.p99} ms)${failuresOf(bookings)}`);
  console.log(`ratio d/b (appointments / INSERT): ${(appointments.rps / insert.rps).toFixed(2)} (p99 ${appointments.p99} ms)${failuresOf(appointments)}`);
  if (appends) {
    console.log(`ratio r/b (emmett's one-append route / INSERT): ${(appends.emmett.rps / insert.rps).toFixed(2)} (the issue expects about 0.33)`);
    console.log(`ratio ours/emmett (one-append routes): ${(appends.ours.rps / appends.emmett.rps).toFixed(2)}`);
    console.log(`ratio d/r (bookings / emmett's one-append route): ${(bookings.rps / appends.emmett.rps).toFixed(2)} (target ≥ 1.5)${failuresOf(bookings)}`);
  }
  if (role === 'all') {
    // (e) reads of what (d) wrote, once the service has settled: measured beside the projector
    // thread draining the backlog (d) left, (e) would be that backlog's figure as much as its own.
    await settled({ databaseUrl: database.url, commands, nextBooking });
    // Each reader signs in once and keeps its token, as clients do, rather than the bench minting
    // one per request on the cores the service runs on.
    const readers = consumers.slice(0, 500).map((consumer) => `Bearer ${token(consumer, ['CONSUMER'])}`);
    let reader = 0;
    const beforeMine = await cacheLookups(queries);
    const mine = await cannon(queries, load, {
      requests: [
        {
          method: 'GET',
          path: '/v1/bookings/me',
          setupRequest: (request) => ({ ...request, headers: { ...request.headers, authorization: readers[reader++ % readers.length] ?? '' } }),
        },
      ],
    });
    line('(e) query API GET /v1/bookings/me', mine);
    console.log(await hitShare(queries, beforeMine));
    const beforeCategory = await cacheLookups(queries);
    const byCategory = await cannon(`${queries}/v1/listings?category=venue`, load);
    line('(e) query API GET /v1/listings?category=venue', byCategory);
    console.log(await hitShare(queries, beforeCategory));

    // With the query cache on (its share printed above), (e) is mostly answered from memory while
    // nothing is written; QUERY_CACHE_MB=0 measures every read against PostgreSQL, as (c) does.
    const cached = process.env.QUERY_CACHE_MB === '0' ? 'query cache off' : 'query cache on';
    console.log(`ratio e/c (bookings/me / SELECT): ${(mine.rps / select.rps).toFixed(2)} (target ≥ 0.7; ${cached})`);
    console.log(`ratio e/c (listings?category / SELECT): ${(byCategory.rps / select.rps).toFixed(2)} (target ≥ 0.7; ${cached})`);

    // Projection lag while bookings come steadily at half the rate measured above: from the
    // command's answer to the bookings read model's checkpoint passing its position (checkpoint NOTIFY).
    const halfRate = Math.max(1, Math.round(bookings.rps / 2));
    const { load: paced, lag } = await bookingsLagUnderLoad({ databaseUrl: database.url, commands, rate: halfRate, seconds, maxInFlight: connections, nextBooking });
    line(`(d) at half rate (${halfRate} req/s, paced evenly)`, paced);
    if (paced.skipped > 0) console.log(`  note: ${paced.skipped} paced requests skipped, ${connections} already in flight`);
    console.log(`projection lag (bookings) at ${halfRate} commands/s: ${lagText(lag)} (target p99 ≤ 100 ms)`);
  }

  clearInterval(sampler);
  console.log(`peak RSS of the ${role} role's process: ${Math.round(peakRss)} MB (target ≤ 300 MB)`);
} finally {
  for (const child of children.reverse()) await stop(child);
  await appendDatabase?.stop();
  await database.stop();
}
