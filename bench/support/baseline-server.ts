// Baselines for bench/http.ts: what fastify alone does on this machine against the same
// PostgreSQL. Started as its own process: `node --import tsx bench/support/baseline-server.ts`
// with DATABASE_URL and PORT; with APPEND_DATABASE_URL (a database of its own on the same server,
// so that the service's projectors never see these events) also the reference: a route
// doing one appendToStream of @event-driven-io/emmett-postgresql, and the same route on our store.
import { randomUUID } from 'node:crypto';
import { dumbo, endAllPools } from '@event-driven-io/dumbo';
import { STREAM_DOES_NOT_EXIST } from '@event-driven-io/emmett';
import { getPostgreSQLEventStore } from '@event-driven-io/emmett-postgresql';
import Fastify from 'fastify';
import pg from 'pg';
import type { JsonObject } from '../../src/application/ports/event-store.js';
import { PgEventStore } from '../../src/infrastructure/pg-event-store/pg-event-store.js';
import { createPool, migrateToLatest } from '../../src/infrastructure/postgres/database.js';

// As many connections as the service gets in the benches (`startBenchService`), so that group
// commit has as much to work with on both sides.
const pool = new pg.Pool({ connectionString: process.env.DATABASE_URL, max: 20 });
await pool.query('CREATE TABLE IF NOT EXISTS bench_rows (id bigserial PRIMARY KEY, payload jsonb NOT NULL)');
await pool.query(`INSERT INTO bench_rows (payload) SELECT jsonb_build_object('n', g) FROM generate_series(1, 10000) g`);

const app = Fastify();
app.get('/hello', async () => ({ hello: 'world' }));
// `id::text`: what pg's default int8 parser gives, which emmett's dumbo replaces process-wide by BigInt (unserialisable).
app.post('/insert', async (request) => {
  const { rows } = await pool.query('INSERT INTO bench_rows (payload) VALUES ($1) RETURNING id::text', [JSON.stringify(request.body)]);
  return { id: rows[0]?.id };
});
app.get('/select', async () => {
  const id = 1 + Math.floor(Math.random() * 10_000);
  const { rows } = await pool.query('SELECT id::text, payload FROM bench_rows WHERE id = $1', [id]);
  return rows[0] ?? null;
});

const closers: (() => Promise<unknown>)[] = [() => pool.end()];
const appendUrl = process.env.APPEND_DATABASE_URL;
if (appendUrl) {
  // Both with pools of the service's size in the benches, 20; each request a new stream, as a new booking is.
  const ourPool = createPool(appendUrl, 20);
  await migrateToLatest(ourPool);
  const ours = new PgEventStore(ourPool);
  const emmettPgPool = new pg.Pool({ connectionString: appendUrl, max: 20 });
  const emmettPool = dumbo({ connectionString: appendUrl, pool: emmettPgPool });
  const emmett = getPostgreSQLEventStore(appendUrl, { connectionOptions: { dumbo: emmettPool } });
  await emmett.schema.migrate();
  closers.push(() => ours.close(), () => ourPool.end(), () => emmett.close(), () => endAllPools(), () => emmettPgPool.end());
  const eventOf = (body: unknown) => ({ type: 'BenchAppended', data: (body ?? {}) as JsonObject, metadata: { requestId: randomUUID() } });
  app.post('/append/ours', async (request) => {
    const { position } = await ours.appendToStream(`bench-${randomUUID()}`, [{ id: randomUUID(), ...eventOf(request.body) }], { expectedRevision: 'no_stream' });
    return { position: `${position.commit}/${position.prepare}` };
  });
  app.post('/append/emmett', async (request) => {
    const result = await emmett.appendToStream(`bench-${randomUUID()}`, [eventOf(request.body)], { expectedStreamVersion: STREAM_DOES_NOT_EXIST });
    return { position: result.lastEventGlobalPosition.toString() };
  });
}

await app.listen({ port: Number(process.env.PORT), host: '127.0.0.1' });
process.on('SIGTERM', () => {
  void (async () => {
    await app.close();
    for (const close of closers) await close().catch(() => undefined);
    process.exit(0);
  })();
});
