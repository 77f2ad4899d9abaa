/**
 * `npm run bench:audit-export [-- --events 1000000]`: does the NDJSON audit export stay within
 * 150 MB RSS however long the log? Appends the events in large batches (with audit-chain
 * metadata, as the command loop writes them, and a personal field sealed for one of more people
 * than the vault keeps keys for, so the export cannot reveal from memory alone), then serves the
 * query API in a child process and
 * streams `GET /v1/audit/export` over HTTP into nothing, sampling the child's RSS throughout.
 * Prints events/s and peak RSS. Uses `DATABASE_URL` if set, else a throwaway embedded PostgreSQL.
 *
 * The server runs twice: under tsx, as `npm run seed` and the CLIs run, whose loader and
 * in-memory transpiled sources alone take about 50 MB before the first request; and bundled by
 * esbuild under plain node, as `npm start` runs the build. The export's own cost is the growth
 * over the start. Both run with `heapFlags` (BENCH_HEAP_FLAGS), a small young generation and old
 * space, not `npm start`'s: the RSS figure holds under those flags. Either run failing fails the
 * bench.
 */
import { fork, type ChildProcess } from 'node:child_process';
import { randomUUID } from 'node:crypto';
import http from 'node:http';
import path from 'node:path';
import { parseArgs } from 'node:util';
import { build } from 'esbuild';
import { pino } from 'pino';
import { chainMetadata, genesisHash } from '../src/application/audit/hash-chain.js';
import type { NewEvent } from '../src/application/ports/event-store.js';
import { buildQueryApi } from '../src/infrastructure/http/query-api.js';
import { PgEventStore } from '../src/infrastructure/pg-event-store/pg-event-store.js';
import { createPool, migrateToLatest } from '../src/infrastructure/postgres/database.js';
import { PersonalDataVault } from '../src/application/privacy/personal-data-vault.js';
import { PgSubjectKeyStore } from '../src/infrastructure/privacy/pg-subject-key-store.js';
import { PgCheckpointListener } from '../src/infrastructure/projections/pg-checkpoint-listener.js';
import { benchDatabase } from './support/bench-database.js';

const secret = 'bench-audit-export-secret-long-enough-0123456789';
/** The MASTER_KEY of the bench: the parent seals with it, the child reveals with it. */
const masterKey = Buffer.alloc(32, 0x42);
/** Whose the sealed notes are: twice the 10,000 keys a vault keeps in memory. */
const subjects = 20_000;
const limitBytes = 150 * 1024 * 1024;
/**
 * V8 grows its heap with the allocation rate, not with what is live: streaming 700 MB of JSON
 * through a default heap leaves 100+ MB of uncollected garbage in the RSS. A young generation of
 * a few MB keeps that garbage short-lived; what is live during the export is a page of rows.
 */
const heapFlags = (process.env.BENCH_HEAP_FLAGS ?? '--max-semi-space-size=2 --max-old-space-size=96').split(' ').filter((flag) => flag.length > 0);

type ServerMessage = { readonly port: number; readonly token: string } | { readonly peakRss: number; readonly startRss: number };

/** The child: the query API alone, reporting its peak RSS when asked. */
async function serve(url: string): Promise<void> {
  const pool = createPool(url, 4);
  const notifications = new PgCheckpointListener({ connectionString: url });
  await notifications.start();
  const app = await buildQueryApi({
    logger: pino({ level: 'warn' }),
    clock: { now: () => new Date() },
    secret,
    issuer: 'bench',
    audience: 'bench-api',
    corsOrigins: [],
    rateLimitMax: 1_000_000,
    pool,
    events: new PgEventStore(pool),
    personalData: new PersonalDataVault(new PgSubjectKeyStore(pool, masterKey)),
    notifications,
    consistencyTimeoutMs: 1000,
    probes: [],
  });
  await app.listen({ port: 0, host: '127.0.0.1' });
  const address = app.server.address();
  const port = typeof address === 'object' && address ? address.port : 0;
  const startRss = process.memoryUsage.rss();
  let peakRss = startRss;
  const sampler = setInterval(() => (peakRss = Math.max(peakRss, process.memoryUsage.rss())), 10);
  const send = (message: ServerMessage) => process.send?.(message);
  process.on('message', (message) => {
    if (message !== 'report') return;
    clearInterval(sampler);
    send({ peakRss, startRss });
    void app.close().then(() => notifications.close()).then(() => pool.end()).then(() => process.exit(0));
  });
  send({ port, token: app.issueAccessToken({ id: 'bench-auditor', roles: ['AUDITOR'] }).accessToken });
}

/** Streams of `perStream` events, each appended in one batch, `parallel` streams at a time. */
async function seed(url: string, total: number, perStream: number, parallel: number): Promise<number> {
  const pool = createPool(url, parallel + 1);
  await migrateToLatest(pool);
  const store = new PgEventStore(pool);
  // Every key kept: the seeding is not what is measured.
  const vault = new PersonalDataVault(new PgSubjectKeyStore(pool, masterKey), { maxCachedKeys: subjects });
  const started = performance.now();
  const streams = Math.ceil(total / perStream);
  let next = 0;
  const worker = async () => {
    for (let s = next++; s < streams; s = next++) {
      const streamId = `bench-${s}`;
      const count = Math.min(perStream, total - s * perStream);
      let prevHash = genesisHash;
      const events: NewEvent[] = [];
      for (let revision = 0; revision < count; revision++) {
        const sealed = await vault.seal(`bench-subject-${(s * perStream + revision) % subjects}`, { n: revision, note: 'audit export bench' }, [['note']]);
        const data = sealed.data;
        const base = {
          actorId: 'bench',
          actorRoles: [],
          correlationId: streamId,
          causationId: streamId,
          requestId: streamId,
          occurredAt: new Date().toISOString(),
          schemaVersion: 1,
          ...(sealed.personalData && { personalData: sealed.personalData }),
        };
        const id = randomUUID();
        const metadata = chainMetadata(prevHash, { streamId, id, type: 'BenchHappened', data, metadata: base, revision });
        prevHash = String(metadata.hash);
        events.push({ id, type: 'BenchHappened', data, metadata });
      }
      await store.appendToStream(streamId, events, { expectedRevision: 'no_stream' });
    }
  };
  await Promise.all(Array.from({ length: parallel }, worker));
  const seconds = (performance.now() - started) / 1000;
  await store.close();
  await pool.end();
  return seconds;
}

function message(child: ChildProcess): Promise<ServerMessage> {
  return new Promise((resolve, reject) => {
    child.once('message', (value: ServerMessage) => resolve(value));
    child.once('exit', (code) => reject(new Error(`server exited with ${String(code)}`)));
  });
}

/** GETs the export and throws every chunk away, counting lines. */
function drainExport(port: number, token: string): Promise<{ lines: number; bytes: number; status: number }> {
  return new Promise((resolve, reject) => {
    const request = http.get({ host: '127.0.0.1', port, path: '/v1/audit/export', headers: { authorization: `Bearer ${token}` } }, (response) => {
      let lines = 0;
      let bytes = 0;
      response.on('data', (chunk: Buffer) => {
        bytes += chunk.length;
        for (let i = chunk.indexOf(10); i >= 0; i = chunk.indexOf(10, i + 1)) lines++;
      });
      response.on('end', () => resolve({ lines, bytes, status: response.statusCode ?? 0 }));
      response.on('error', reject);
    });
    request.on('error', reject);
  });
}

/** The server as one plain-JavaScript file, next to node_modules so its packages resolve. */
async function bundleServer(): Promise<string> {
  const outfile = path.resolve('node_modules/.cache/bench-audit-export/server.mjs');
  await build({ entryPoints: [process.argv[1] ?? 'bench/audit-export.ts'], bundle: true, platform: 'node', format: 'esm', packages: 'external', outfile, logLevel: 'warning' });
  return outfile;
}

async function exportOnce(label: string, child: ChildProcess, total: number): Promise<boolean> {
  const ready = await message(child);
  if (!('port' in ready)) throw new Error('server did not start');
  const started = performance.now();
  const drained = await drainExport(ready.port, ready.token);
  const seconds = (performance.now() - started) / 1000;
  child.send('report');
  const report = await message(child);
  if (!('peakRss' in report)) throw new Error('no RSS report');
  const mb = (bytes: number) => (bytes / 1024 / 1024).toFixed(1);
  const within = report.peakRss < limitBytes;
  process.stdout.write(
    `[${label}] exported ${drained.lines} events (${mb(drained.bytes)} MB NDJSON, HTTP ${drained.status}) in ${seconds.toFixed(1)} s: ${Math.round(drained.lines / seconds)} events/s\n` +
      `[${label}] server RSS ${mb(report.startRss)} MB at start, ${mb(report.peakRss)} MB peak (+${mb(report.peakRss - report.startRss)} MB during the export; limit ${mb(limitBytes)} MB): ${within ? 'within' : 'OVER'}\n`,
  );
  return drained.lines === total && within;
}

async function main(): Promise<void> {
  const { values } = parseArgs({ options: { serve: { type: 'string' }, events: { type: 'string' } } });
  if (values.serve) return serve(values.serve);
  const total = Number(values.events ?? 1_000_000);
  const database = await benchDatabase('audit-export');
  try {
    const seedSeconds = await seed(database.url, total, 2_000, 4);
    process.stdout.write(`appended ${total} events in ${seedSeconds.toFixed(1)} s (${Math.round(total / seedSeconds)} events/s)\n`);
    const underTsx = fork(process.argv[1] ?? 'bench/audit-export.ts', ['--serve', database.url], { stdio: 'inherit', execArgv: [...process.execArgv, ...heapFlags] });
    const tsxPassed = await exportOnce('tsx', underTsx, total);
    const bundled = fork(await bundleServer(), ['--serve', database.url], { stdio: 'inherit', execArgv: heapFlags });
    const bundledPassed = await exportOnce('bundled', bundled, total);
    if (!tsxPassed || !bundledPassed) process.exitCode = 1;
  } finally {
    await database.stop();
  }
}

main().catch((error: unknown) => {
  process.stderr.write(`${error instanceof Error ? (error.stack ?? error.message) : String(error)}\n`);
  process.exitCode = 1;
});
