import { randomUUID } from 'node:crypto';
import { sql, type Kysely } from 'kysely';
import { pino } from 'pino';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { createHttpServer } from '../../src/infrastructure/http/http-server.js';
import type { ReadinessProbe } from '../../src/infrastructure/http/plugins/health.plugin.js';
import { eventStoreProbe, migrationsProbe, projectionsProbe } from '../../src/infrastructure/http/readiness-probes.js';
import { PgEventStore } from '../../src/infrastructure/pg-event-store/pg-event-store.js';
import { createKysely, createPool, migrateToLatest } from '../../src/infrastructure/postgres/database.js';
import { ensureGeneration, requestRebuild } from '../../src/projections/runtime/projection-checkpoints.queries.js';
import { createTestDatabase, type TestDatabase } from '../support/database.js';

let database: TestDatabase;
beforeAll(async () => {
  database = await createTestDatabase();
});
afterAll(() => database.drop());

/** What a projector does once it holds a new active generation: creates its tables and views. */
async function setUp(db: Kysely<unknown>, name: string): Promise<void> {
  await sql`update projection_checkpoints set schema_ready = true where name = ${name} and active`.execute(db);
}

/** GET /health/ready of a server with these probes. */
async function readiness(probes: readonly ReadinessProbe[]) {
  const app = await createHttpServer({
    logger: pino({ level: 'silent' }),
    openApi: { title: 't', description: 't', version: '1' },
    security: { corsOrigins: [], rateLimitMax: 10_000 },
    auth: { secret: 'x'.repeat(40), issuer: 'i', audience: 'a', accessTokenTtlSeconds: 60 },
    probes,
  });
  try {
    const response = await app.inject({ url: '/health/ready' });
    return { status: response.statusCode, body: response.json<{ status: string; checks: Record<string, string> }>() };
  } finally {
    await app.close();
  }
}

describe('GET /health/ready names what keeps the service from serving', () => {
  it('migrations not applied (a process started with RUN_MIGRATIONS=false before they ran), then applied', async () => {
    const pool = createPool(database.url, 2);
    try {
      const before = await readiness([migrationsProbe(pool)]);
      expect(before.status).toBe(503);
      expect(before.body.checks.migrations).toMatch(/^not applied: 0001_event_store, /);
      await migrateToLatest(pool);
      expect(await readiness([migrationsProbe(pool)])).toEqual({ status: 200, body: { status: 'ready', checks: { migrations: 'ok' } } });
    } finally {
      await pool.end();
    }
  });

  it('an event store that does not answer', async () => {
    const pool = createPool(database.url, 2);
    const store = new PgEventStore(pool);
    expect((await readiness([eventStoreProbe(store)])).body.checks).toEqual({ 'event store': 'ok' });
    await store.close();
    expect(await readiness([eventStoreProbe(store)])).toEqual({ status: 503, body: { status: 'unavailable', checks: { 'event store': 'unreachable' } } });
    await pool.end();
  });

  it('a read model failed, or further behind than allowed; a rebuild beside it does not count', async () => {
    const pool = createPool(database.url, 4);
    const db = createKysely<unknown>(pool);
    const store = new PgEventStore(pool);
    try {
      await migrateToLatest(pool);
      const name = `ready_${randomUUID().slice(0, 8)}`;
      await ensureGeneration(db, name, 1);
      await setUp(db, name);
      // Nothing processed yet, and one event recorded: how far behind depends on the clock.
      const { position } = await store.appendToStream(`ready-${randomUUID()}`, [{ id: randomUUID(), type: 'Anything', data: {}, metadata: {} }]);
      const at = (ms: number) => () => new Date(Date.now() + ms);
      expect((await readiness([projectionsProbe(db, [name], 30_000, at(0))])).status).toBe(200);
      expect((await readiness([projectionsProbe(db, [name], 30_000, at(60_000))])).body.checks).toEqual({ projections: `more than 30000 ms behind: ${name}` });

      await sql`update projection_checkpoints set status = 'failed' where name = ${name}`.execute(db);
      expect(await readiness([projectionsProbe(db, [name], 30_000, at(0))])).toEqual({ status: 503, body: { status: 'unavailable', checks: { projections: `failed: ${name}` } } });
      // Only the generation readers see counts: a rebuild beside a caught-up one fails, far behind.
      await sql`
        update projection_checkpoints
           set status = 'running', position_commit = ${position.commit.toString()}, position_prepare = ${position.prepare.toString()}
         where name = ${name}`.execute(db);
      await requestRebuild(db, name);
      await sql`update projection_checkpoints set status = 'failed' where name = ${name} and not active`.execute(db);
      expect((await readiness([projectionsProbe(db, [name], 30_000, at(60_000))])).status).toBe(200);
    } finally {
      await store.close();
      await db.destroy();
    }
  });

  it('a read model no projector has built yet (a fresh database, the query role started first), then built', async () => {
    const pool = createPool(database.url, 4);
    const db = createKysely<unknown>(pool);
    try {
      await migrateToLatest(pool);
      const [listings, doctors] = [`listings_${randomUUID().slice(0, 8)}`, `doctors_${randomUUID().slice(0, 8)}`];
      const probe = projectionsProbe(db, [listings, doctors], 30_000, () => new Date());
      expect(await readiness([probe])).toEqual({ status: 503, body: { status: 'unavailable', checks: { projections: `not built yet: ${listings}, ${doctors}` } } });
      // The first generation is active as soon as its row exists, before its tables do.
      await ensureGeneration(db, listings, 1);
      expect((await readiness([probe])).body.checks).toEqual({ projections: `not built yet: ${listings}, ${doctors}` });
      await setUp(db, listings);
      expect((await readiness([probe])).body.checks).toEqual({ projections: `not built yet: ${doctors}` });
      // A generation that is not active serves nobody, however far along.
      await ensureGeneration(db, doctors, 1);
      await setUp(db, doctors);
      await sql`update projection_checkpoints set active = false where name = ${doctors}`.execute(db);
      expect((await readiness([probe])).body.checks).toEqual({ projections: `not built yet: ${doctors}` });
      await sql`update projection_checkpoints set active = true where name = ${doctors}`.execute(db);
      expect(await readiness([probe])).toEqual({ status: 200, body: { status: 'ready', checks: { projections: 'ok' } } });
    } finally {
      await db.destroy();
    }
  });
});
