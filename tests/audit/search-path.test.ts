import { randomBytes, randomUUID } from 'node:crypto';
import pg from 'pg';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { PgAccessLog } from '../../src/infrastructure/audit/pg-access-log.js';
import { PgEventStore } from '../../src/infrastructure/pg-event-store/pg-event-store.js';
import { createKysely, createPool } from '../../src/infrastructure/postgres/database.js';
import { streamEvents } from '../support/command-side.js';
import { createHarness, type Harness } from '../projections/support/runtime-harness.js';
import { probeAccess } from './support/access-records.js';

/**
 * The service's login may create schemas (the projector makes one per generation), and
 * PostgreSQL's default `search_path` is `"$user", public`: a schema named after the login, holding
 * an `events` and an `access_log` of its own making (copies without the triggers, free to edit),
 * would be read first by every later session of that login. The service's connections and the
 * store's functions never look there: they name `public` alone.
 */
describe("a forged copy of the log in the service login's own schema", () => {
  let h: Harness;
  let forger: pg.Client;
  let loginUrl: string;
  const login = `bookable_service_${randomBytes(4).toString('hex')}`;
  const password = randomBytes(12).toString('hex');
  const realStream = `probe-${randomUUID()}`;
  const forgedStream = `forged-${randomUUID()}`;

  const countIn = async (table: string, column: string, value: string): Promise<number> => {
    const { rows } = await h.pool.query<{ n: number }>(`SELECT count(*)::int AS n FROM ${table} WHERE ${column} = $1`, [value]);
    return rows[0]?.n ?? -1;
  };

  beforeAll(async () => {
    h = await createHarness();
    await h.store.appendToStream(realStream, [{ id: randomUUID(), type: 'Probed', data: { said: 'the truth' }, metadata: {} }]);
    await new PgAccessLog(h.pool).record(probeAccess('real-1'));
    await h.pool.query(`CREATE ROLE ${login} LOGIN PASSWORD '${password}' IN ROLE bookable_app`);
    const url = new URL(h.url);
    url.username = login;
    url.password = password;
    loginUrl = url.toString();

    // Someone with the login, in a session as PostgreSQL opens it.
    forger = new pg.Client(loginUrl);
    await forger.connect();
    await forger.query(`CREATE SCHEMA ${login}`);
    for (const [table, identity] of [['events', 'global_position'], ['access_log', 'id']]) {
      await forger.query(`CREATE TABLE ${login}.${table} (LIKE public.${table} INCLUDING ALL)`);
      await forger.query(`INSERT INTO ${login}.${table} OVERRIDING SYSTEM VALUE SELECT * FROM public.${table}`);
      await forger.query(`ALTER TABLE ${login}.${table} ALTER COLUMN ${identity} RESTART WITH 1000`);
    }
    await forger.query(`UPDATE ${login}.events SET data = '{"said":"a lie"}' WHERE stream_id = $1`, [realStream]);
    await forger.query(
      `INSERT INTO ${login}.events (stream_id, revision, event_id, event_type, data, metadata) VALUES ($1, 0, $2, 'Forged', '{}', '{}')`,
      [forgedStream, randomUUID()],
    );
    await forger.query(`UPDATE ${login}.access_log SET actor_id = 'someone-else'`);
  });
  afterAll(async () => {
    await forger.end();
    await h.close();
    const admin = new pg.Client(h.url.replace(/\/[^/]*$/, '/postgres'));
    await admin.connect();
    await admin.query(`DROP ROLE IF EXISTS ${login}`).finally(() => admin.end());
  });

  it("is what a session of the login reads by PostgreSQL's default", async () => {
    const { rows } = await forger.query<{ data: unknown }>('SELECT data FROM events WHERE stream_id = $1', [realStream]);
    expect(rows).toEqual([{ data: { said: 'a lie' } }]);
  });

  it("is never read by the service's connections: the event store, kysely and the access log read public's", async () => {
    const service = createPool(loginUrl, 2);
    const store = new PgEventStore(service);
    try {
      expect((await streamEvents(store, realStream)).map((event) => event.data)).toEqual([{ said: 'the truth' }]);
      expect(await streamEvents(store, forgedStream)).toEqual([]);
      const kysely = createKysely<{ events: { stream_id: string } }>(service);
      expect(await kysely.selectFrom('events').select('stream_id').where('stream_id', '=', forgedStream).execute()).toEqual([]);
      expect((await new PgAccessLog(service).list({}, { limit: 10 })).items.map((entry) => entry.actorId)).toEqual(['probe']);
    } finally {
      await store.close();
      await service.end();
    }
  });

  it("is never written by the store's functions, even when a session that reads the copy calls them", async () => {
    const appended = `probe-${randomUUID()}`;
    await forger.query('SELECT * FROM append_to_stream($1, -1, $2, $3, $4, $5)', [appended, [randomUUID()], ['Probed'], [{}], [{}]]);
    const batched = `probe-${randomUUID()}`;
    await forger.query('SELECT * FROM append_to_streams($1)', [
      JSON.stringify([{ stream: batched, expected: -1, events: [{ id: randomUUID(), type: 'Probed', data: {}, metadata: {} }] }]),
    ]);
    await forger.query(`SELECT o_id FROM append_access_log(now(), 'probe', '{}', 'GET /probe', '/probe', NULL, 'granted', 200, NULL, NULL, 'probe-2', '{}')`);

    expect(await countIn('public.events', 'stream_id', appended)).toBe(1);
    expect(await countIn('public.events', 'stream_id', batched)).toBe(1);
    expect(await countIn('public.access_log', 'request_id', 'probe-2')).toBe(1);
    expect(await countIn(`${login}.events`, 'stream_id', appended)).toBe(0);
    expect(await countIn(`${login}.events`, 'stream_id', batched)).toBe(0);
    expect(await countIn(`${login}.access_log`, 'request_id', 'probe-2')).toBe(0);
  });

  it("leaves no function of ours to resolve names by its caller's search_path", async () => {
    const { rows } = await h.pool.query<{ name: string; config: string[] | null }>(`
      SELECT p.proname AS name, p.proconfig AS config FROM pg_proc p
       WHERE p.pronamespace = 'public'::regnamespace
         AND NOT EXISTS (SELECT 1 FROM pg_depend d WHERE d.classid = 'pg_proc'::regclass AND d.objid = p.oid AND d.deptype = 'e')
       ORDER BY 1`);
    expect(rows.length).toBeGreaterThan(0);
    for (const { name, config } of rows) expect(config, name).toContain('search_path=pg_catalog, public, pg_temp');
  });
});
