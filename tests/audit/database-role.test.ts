import { randomBytes, randomUUID } from 'node:crypto';
import pg from 'pg';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { PgAccessLog } from '../../src/infrastructure/audit/pg-access-log.js';
import { claimMasterKey } from '../../src/infrastructure/privacy/master-key-claim.js';
import { PgSubjectKeyStore } from '../../src/infrastructure/privacy/pg-subject-key-store.js';
import { testMasterKey } from '../support/personal-data.js';
import { createHarness, type Harness } from '../projections/support/runtime-harness.js';
import { probeAccess } from './support/access-records.js';

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
    await new PgAccessLog(service).record(probeAccess('probe-1'));
    const changes = ['UPDATE events SET data = data', 'DELETE FROM events', 'UPDATE access_log SET ip = ip', 'DELETE FROM access_log', 'TRUNCATE access_log'];
    const securityLog = ['UPDATE security_events SET ip = ip', 'DELETE FROM security_events', 'TRUNCATE security_events'];
    const loginKey = ['DELETE FROM login_attempts_unknown_key', 'UPDATE login_attempts_unknown_key SET key = key', 'TRUNCATE login_attempts_unknown_key'];
    for (const statement of [...changes, ...securityLog, ...loginKey]) {
      await expect(service.query(statement), statement).rejects.toMatchObject({ code: '42501' });
    }
    await expect(service.query('ALTER TABLE events DISABLE TRIGGER events_immutable')).rejects.toMatchObject({ code: '42501' });
  });

  // A key row gone reads as a lost key, not as an erasure (`PersonalDataVault`); erasure only
  // ever turns a row into a tombstone.
  it('may store data keys and erase them, but neither delete a key row nor change one into anything but a tombstone', async () => {
    const keys = new PgSubjectKeyStore(service, testMasterKey);
    await keys.obtain('kept-subject');
    await keys.obtain('erased-subject');
    await keys.destroy('erased-subject', new Date());
    await keys.destroy('erased-subject', new Date());
    expect((await keys.find(['erased-subject'])).get('erased-subject')).toBe('erased');

    for (const statement of ["DELETE FROM subject_keys WHERE subject_id = 'kept-subject'", 'TRUNCATE subject_keys']) {
      await expect(service.query(statement), statement).rejects.toMatchObject({ code: '42501' });
    }
    const changes = [
      "UPDATE subject_keys SET wrapped_key = '\\x00' WHERE subject_id = 'kept-subject'",
      "UPDATE subject_keys SET subject_id = 'someone-else' WHERE subject_id = 'kept-subject'",
      `UPDATE subject_keys SET wrapped_key = k.wrapped_key, wrapped_with = k.wrapped_with, erased_at = NULL
         FROM subject_keys k WHERE k.subject_id = 'kept-subject' AND subject_keys.subject_id = 'erased-subject'`,
    ];
    for (const statement of changes) await expect(service.query(statement), statement).rejects.toMatchObject({ code: 'SK001' });
    const after = await keys.find(['kept-subject', 'erased-subject']);
    expect(after.get('kept-subject')).toBeInstanceOf(Buffer);
    expect(after.get('erased-subject')).toBe('erased');
  });

  // Only one master key may wrap new data keys (README "Personal data and erasure"): the login
  // that claims it at first start must not be able to move the claim to a key of its own.
  it('may read the master-key claim and make the first one, but neither change nor remove it', async () => {
    const first = await claimMasterKey(service, '0123456789abcdef');
    expect(await claimMasterKey(service, 'fedcba9876543210')).toBe(first);

    for (const statement of ["UPDATE master_key_claim SET fingerprint = 'fedcba9876543210'", 'DELETE FROM master_key_claim', 'TRUNCATE master_key_claim']) {
      await expect(service.query(statement), statement).rejects.toMatchObject({ code: '42501' });
    }
    expect((await service.query('SELECT fingerprint FROM master_key_claim')).rows).toEqual([{ fingerprint: first }]);
  });
});
