import { randomBytes, randomUUID } from 'node:crypto';
import pg from 'pg';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { PgAccessLog } from '../../src/infrastructure/audit/pg-access-log.js';
import { createHarness, type Harness } from '../projections/support/runtime-harness.js';

// The deployment of src/infrastructure/audit/README.md: migrations as the owner, the service as
// a login role in `bookable_app`.
describe('the bookable_app role', () => {
  let h: Harness;
  let service: pg.Pool;
  const login = `bookable_service_${randomBytes(4).toString('hex')}`;
  const password = randomBytes(12).toString('hex');

  beforeAll(async () => {
    h = await createHarness();
    await h.pool.query(`CREATE ROLE ${login} LOGIN PASSWORD '${password}' IN ROLE bookable_app`);
    const url = new URL(h.url);
    url.username = login;
    url.password = password;
    service = new pg.Pool({ connectionString: url.toString(), max: 2 });
  });
  afterAll(async () => {
    await service.end();
    await h.close();
    const admin = new pg.Client(h.url.replace(/\/[^/]*$/, '/postgres'));
    await admin.connect();
    await admin.query(`DROP ROLE IF EXISTS ${login}`).finally(() => admin.end());
  });

  it('may read and append events and access records, but neither change nor delete them, nor lift the guard', async () => {
    const streamId = `probe-${randomUUID()}`;
    await service.query('SELECT * FROM append_to_stream($1, -1, $2, $3, $4, $5)', [streamId, [randomUUID()], ['Probed'], [{}], [{}]]);
    expect((await service.query('SELECT count(*)::int AS n FROM events WHERE stream_id = $1', [streamId])).rows[0]).toEqual({ n: 1 });
    await new PgAccessLog(service).record({
      at: new Date(),
      actorId: 'probe',
      actorRoles: [],
      action: 'GET /probe',
      resource: '/probe',
      patientId: null,
      outcome: 'granted',
      statusCode: 200,
      ip: null,
      userAgent: null,
      requestId: 'probe-1',
    });
    const changes = ['UPDATE events SET data = data', 'DELETE FROM events', 'UPDATE access_log SET ip = ip', 'DELETE FROM access_log', 'TRUNCATE access_log'];
    const securityLog = ['UPDATE security_events SET ip = ip', 'DELETE FROM security_events', 'TRUNCATE security_events'];
    const loginKey = ['DELETE FROM login_attempts_unknown_key', 'UPDATE login_attempts_unknown_key SET key = key', 'TRUNCATE login_attempts_unknown_key'];
    for (const statement of [...changes, ...securityLog, ...loginKey]) {
      await expect(service.query(statement), statement).rejects.toMatchObject({ code: '42501' });
    }
    await expect(service.query('ALTER TABLE events DISABLE TRIGGER events_immutable')).rejects.toMatchObject({ code: '42501' });
  });
});
