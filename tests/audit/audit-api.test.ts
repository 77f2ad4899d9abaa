import { randomUUID } from 'node:crypto';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { bookAppointment, completeAppointment } from '../../src/application/appointments/appointment.use-cases.js';
import { createListing, updateListing } from '../../src/application/listings/listing.use-cases.js';
import { setSchedule } from '../../src/application/schedules/schedule.use-cases.js';
import { eraseSubject } from '../../src/application/privacy/erase-subject.use-case.js';
import { erasedPlaceholder } from '../../src/domain/shared/personal-data.js';
import type { Actor } from '../../src/application/metadata.js';
import { admin, as, consumer, doctor, everyMorning, listingInput, otherDoctor, owner, patient, streamEvents } from '../support/command-side.js';
import { registerUser } from '../projections/support/scenarios.js';
import { startQueryApi, type QueryApiFixture } from '../http/support/query-api.fixture.js';

const auditor: Actor = { id: 'auditor-1', roles: ['AUDITOR'] };
const outsiders: Actor[] = [consumer, owner, patient, doctor];

type Page<Item> = { items: Item[]; nextCursor: string | null };
type AuditEvent = {
  streamId: string;
  revision: number;
  type: string;
  position: string;
  schemaVersion: number;
  data: Record<string, unknown>;
  metadata: Record<string, unknown>;
  hash: string | null;
  prevHash: string | null;
};
type AccessEntry = { actorId: string; action: string; resource: string; patientId: string | null; outcome: string; statusCode: number; requestId: string; userAgent: string | null };

import type { IdentityTables } from '../../src/infrastructure/identity/identity.tables.js';
import { PgSecurityEventLog } from '../../src/infrastructure/identity/pg-security-event-log.js';
import { createKysely } from '../../src/infrastructure/postgres/database.js';

describe('audit API', () => {
  let q: QueryApiFixture;
  let appointmentId: string;
  let listingStream: string;
  let listingCorrelation: string;
  let bookingCorrelation: string;

  beforeAll(async () => {
    q = await startQueryApi();
    await registerUser(q.side, doctor, 'Dr Ada');
    await registerUser(q.side, patient, 'Pat');
    await setSchedule(q.side, doctor.id, everyMorning, as(doctor));
    const booked = as(patient);
    bookingCorrelation = booked.context.correlationId;
    appointmentId = (await bookAppointment(q.side, { doctorId: doctor.id, start: '2030-01-14T09:00:00Z', reason: 'back pain' }, booked)).id;
    q.clock.advance(5 * 86_400_000);
    await completeAppointment(q.side, appointmentId, { notes: 'rest' }, as(doctor));
    const created = as(owner);
    listingCorrelation = created.context.correlationId;
    const listingId = (await createListing(q.side, listingInput, created)).id;
    listingStream = `listing-${listingId}`;
    q.clock.advance(86_400_000);
    await updateListing(q.side, listingId, { pricePerDay: 9_000 }, as(owner));
    q.clock.advance(86_400_000);
    await updateListing(q.side, listingId, { pricePerDay: 8_000 }, as(owner));
    await q.settle();
  });
  afterAll(() => q.close());

  const get = (url: string, actor?: Actor, headers: Record<string, string> = {}) =>
    q.app.inject({ url, headers: { ...(actor ? q.auth(actor) : {}), 'user-agent': 'audit-spec', ...headers } });

  const accessLog = async (filter: string) => {
    const rows = await q.harness.pool.query<AccessEntry>(
      `SELECT actor_id AS "actorId", action, resource, patient_id AS "patientId", outcome, status_code AS "statusCode", request_id AS "requestId", user_agent AS "userAgent"
         FROM access_log WHERE ${filter} ORDER BY id`,
    );
    return rows.rows;
  };

  it('lets AUDITOR and ADMIN into every audit endpoint and answers 403 to every other role, 401 without a token', async () => {
    const urls = [
      `/v1/audit/streams/${listingStream}/events`,
      `/v1/audit/streams/${listingStream}/state?version=0`,
      `/v1/audit/actors/${owner.id}/events`,
      `/v1/audit/correlations/${listingCorrelation}/events`,
      `/v1/audit/export?streamPrefix=listing-`,
      `/v1/audit/verify?streamId=${listingStream}`,
      `/v1/audit/access-log`,
      `/v1/audit/access-log/verify`,
    ];
    for (const url of urls) {
      for (const allowed of [auditor, admin]) expect((await get(url, allowed)).statusCode, `${allowed.id} ${url}`).toBe(200);
      for (const outsider of outsiders) expect((await get(url, outsider)).statusCode, `${outsider.id} ${url}`).toBe(403);
      expect((await get(url)).statusCode, url).toBe(401);
    }
  });

  it("pages one aggregate's history with metadata and chain hashes, by revision", async () => {
    const first = (await get(`/v1/audit/streams/${listingStream}/events?limit=2`, auditor)).json<Page<AuditEvent>>();
    expect(first.items.map((event) => [event.revision, event.type])).toEqual([
      [0, 'ListingCreated'],
      [1, 'ListingPriceChanged'],
    ]);
    expect(first.items[0]?.metadata).toMatchObject({ actorId: owner.id, actorRoles: ['OWNER'], correlationId: listingCorrelation, requestId: expect.any(String) });
    expect(first.items[0]?.prevHash).toBe('0'.repeat(64));
    expect(first.items[1]?.prevHash).toBe(first.items[0]?.hash);
    const rest = (await get(`/v1/audit/streams/${listingStream}/events?limit=2&cursor=${first.nextCursor ?? ''}`, auditor)).json<Page<AuditEvent>>();
    expect(rest).toMatchObject({ items: [{ revision: 2 }], nextCursor: null });
    expect((await get('/v1/audit/streams/listing-nope/events', auditor)).statusCode).toBe(404);
  });

  it('shows the state as it was at a version or an instant, and 404 for a category it does not know', async () => {
    const atVersion = await get(`/v1/audit/streams/${listingStream}/state?version=1`, auditor);
    expect(atVersion.json()).toMatchObject({ version: 1, category: 'listing', state: { status: 'active', listing: { price: { pricePerDay: 9_000 } } } });
    const created = (await get(`/v1/audit/streams/${listingStream}/events?limit=1`, auditor)).json<Page<AuditEvent>>().items[0];
    const atTime = await get(`/v1/audit/streams/${listingStream}/state?at=${String(created?.metadata.occurredAt)}`, auditor);
    expect(atTime.json()).toMatchObject({ version: 0, state: { listing: { price: { pricePerDay: listingInput.pricePerDay } } } });
    expect((await get(`/v1/audit/streams/${listingStream}/state?at=2000-01-01T00:00:00Z`, auditor)).json()).toMatchObject({ version: -1, state: { status: 'none' } });
    expect((await get(`/v1/audit/streams/${listingStream}/state?version=9`, auditor)).statusCode).toBe(404);
    expect((await get('/v1/audit/streams/spaceship-1/state', auditor)).statusCode).toBe(404);
    expect((await get(`/v1/audit/streams/${listingStream}/state?version=1&at=2030-01-01T00:00:00Z`, auditor)).statusCode).toBe(400);
    // An empty version is no version 0.
    expect((await get(`/v1/audit/streams/${listingStream}/state?version=`, auditor)).statusCode).toBe(400);
  });

  it('refuses a state asked both at an instant and at a version with 400 naming the field', async () => {
    const response = await get(`/v1/audit/streams/${listingStream}/state?at=2030-01-16T00:00:00Z&version=0`, auditor);
    expect(response.statusCode).toBe(400);
    expect(response.json()).toMatchObject({ errors: [{ path: 'querystring.version' }] });
  });

  it("finds everything one actor did and everything one request caused, through the audit index", async () => {
    const byOwner = (await get(`/v1/audit/actors/${owner.id}/events?limit=2`, auditor, q.consistency())).json<Page<AuditEvent>>();
    expect(byOwner.items.map((event) => event.type)).toEqual(['ListingCreated', 'ListingPriceChanged']);
    const more = (await get(`/v1/audit/actors/${owner.id}/events?limit=2&cursor=${byOwner.nextCursor ?? ''}`, auditor)).json<Page<AuditEvent>>();
    expect(more.items.map((event) => event.type)).toEqual(['ListingPriceChanged']);
    const ranged = (await get(`/v1/audit/actors/${owner.id}/events?to=2030-01-16T00:00:00Z`, auditor)).json<Page<AuditEvent>>();
    expect(ranged.items.map((event) => event.type)).toEqual(['ListingCreated']);
    const caused = (await get(`/v1/audit/correlations/${listingCorrelation}/events`, auditor)).json<Page<AuditEvent>>();
    expect(caused.items.map((event) => event.streamId)).toContain(listingStream);
    expect(caused.items.every((event) => event.revision === 0)).toBe(true);
  });

  it("pages an actor's trail in log order, without skipping an event stamped earlier that landed after a page was served", async () => {
    const lister: Actor = { id: randomUUID(), roles: ['OWNER'] };
    const listingId = (await createListing(q.side, listingInput, as(lister))).id;
    await updateListing(q.side, listingId, { pricePerDay: 9_500 }, as(lister));
    await q.settle();
    const first = (await get(`/v1/audit/actors/${lister.id}/events?limit=1`, auditor, q.consistency())).json<Page<AuditEvent>>();
    expect(first.items.map((event) => event.revision)).toEqual([0]);

    // A command whose clock ran behind: stamped before the events already served, landed after them.
    q.clock.advance(-3 * 86_400_000);
    await updateListing(q.side, listingId, { pricePerDay: 9_400 }, as(lister));
    q.clock.advance(3 * 86_400_000);
    await q.settle();
    const rest: AuditEvent[] = [];
    for (let cursor = first.nextCursor; cursor !== null; ) {
      const page = (await get(`/v1/audit/actors/${lister.id}/events?limit=1&cursor=${cursor}`, auditor, q.consistency())).json<Page<AuditEvent>>();
      rest.push(...page.items);
      cursor = page.nextCursor;
    }
    expect(rest.map((event) => event.revision)).toEqual([1, 2]);
  });

  it('completes an erasure pinned to a version once its key is gone, though the user changed meanwhile: its record follows, and the read model drops the data', async () => {
    const person: Actor = { id: randomUUID(), roles: ['PATIENT'] };
    await registerUser(q.side, person, 'Changed Meanwhile');
    const { version } = await q.side.handlers.user.read(`user-${person.id}`);
    let granted = false;
    // The delete runs again after the record too, when the person is erased and takes no roles.
    const grantMeanwhile = async () => {
      if (granted) return;
      granted = true;
      const grant = { type: 'GrantRoles' as const, data: { userId: person.id, roles: ['CONSUMER' as const], grantedBy: admin } };
      await q.side.handlers.user.handle(`user-${person.id}`, grant, as(admin));
    };
    await eraseSubject({ side: q.side, vault: q.harness.vault, outsideTheLog: { eraseSubject: grantMeanwhile } }, person.id, { ...as(admin), expectedVersion: version });
    await q.settle();

    const history = (await get(`/v1/audit/streams/user-${person.id}/events`, auditor)).json<Page<AuditEvent>>();
    expect(history.items.map((event) => event.type)).toEqual(['UserRegistered', 'RolesGranted', 'SubjectErased']);
    const row = await q.harness.pool.query<{ name: string }>('SELECT name FROM rm_users.users WHERE user_id = $1', [person.id]);
    expect(row.rows.map((user) => user.name)).not.toContain('Changed Meanwhile');
  });

  it('shows each event found by actor or by correlation exactly as the stream history shows it, personal data revealed or erased alike', async () => {
    const erased: Actor = { id: 'patient-erased', roles: ['PATIENT'] };
    await registerUser(q.side, erased, 'Gone');
    const booked = as(erased);
    await bookAppointment(q.side, { doctorId: doctor.id, start: '2030-03-04T10:00:00Z', reason: 'migraine' }, booked);
    await eraseSubject({ side: q.side, vault: q.harness.vault, outsideTheLog: { eraseSubject: async () => undefined } }, erased.id, as(admin));
    await q.settle();

    const asHistoryShowsThem = async (events: AuditEvent[]) => {
      const history = new Map<string, AuditEvent>();
      for (const streamId of new Set(events.map((event) => event.streamId))) {
        const page = (await get(`/v1/audit/streams/${streamId}/events?limit=100`, auditor)).json<Page<AuditEvent>>();
        for (const event of page.items) history.set(`${event.streamId}@${event.revision}`, event);
      }
      return events.map((event) => history.get(`${event.streamId}@${event.revision}`));
    };
    const found = new Map<string, AuditEvent[]>();
    for (const url of [
      `/v1/audit/actors/${patient.id}/events`,
      `/v1/audit/correlations/${bookingCorrelation}/events`,
      `/v1/audit/actors/${erased.id}/events`,
      `/v1/audit/correlations/${booked.context.correlationId}/events`,
      `/v1/audit/actors/${owner.id}/events?limit=2`,
      `/v1/audit/correlations/${listingCorrelation}/events`,
    ]) {
      const page = (await get(url, auditor, q.consistency())).json<Page<AuditEvent>>();
      expect(page.items.length, url).toBeGreaterThan(0);
      expect(page.items, url).toEqual(await asHistoryShowsThem(page.items));
      for (const event of page.items) {
        expect(event, url).toMatchObject({ schemaVersion: expect.any(Number), data: expect.any(Object), metadata: expect.any(Object), hash: expect.stringMatching(/^[0-9a-f]{64}$/), prevHash: expect.stringMatching(/^[0-9a-f]{64}$/) });
      }
      found.set(url, page.items);
    }
    const scheduled = (url: string) => found.get(url)?.find((event) => event.type === 'AppointmentScheduled');
    expect(scheduled(`/v1/audit/correlations/${bookingCorrelation}/events`)?.data).toMatchObject({ patientId: patient.id, reason: 'back pain' });
    expect(scheduled(`/v1/audit/actors/${erased.id}/events`)?.data).toMatchObject({ patientId: erased.id, reason: erasedPlaceholder });
  });

  it("withholds appointments' reasons and clinical notes from an admin who is no auditor, on every route; an auditor reads them", async () => {
    const adminAuditor: Actor = { id: 'admin-auditor', roles: ['ADMIN', 'AUDITOR'] };
    const appointmentStream = `appointment-${appointmentId}`;
    const healthOf = (events: readonly AuditEvent[]) =>
      events.filter((event) => event.streamId === appointmentStream).flatMap((event) => ['reason', 'notes'].filter((field) => field in event.data).map((field) => event.data[field]));
    const pages = [`/v1/audit/streams/${appointmentStream}/events`, `/v1/audit/correlations/${bookingCorrelation}/events`, `/v1/audit/actors/${doctor.id}/events?limit=100`];
    const exported = async (actor: Actor) =>
      (await get(`/v1/audit/export?streamPrefix=${appointmentStream}`, actor)).body
        .split('\n')
        .filter((line) => line.length > 0)
        .map((line) => JSON.parse(line) as AuditEvent);

    for (const reader of [auditor, adminAuditor]) {
      const seen = [...(await Promise.all(pages.map(async (url) => (await get(url, reader, q.consistency())).json<Page<AuditEvent>>().items))).flat(), ...(await exported(reader))];
      expect(new Set(healthOf(seen)), reader.id).toEqual(new Set(['back pain', 'rest']));
    }
    const seenByAdmin = [...(await Promise.all(pages.map(async (url) => (await get(url, admin, q.consistency())).json<Page<AuditEvent>>().items))).flat(), ...(await exported(admin))];
    expect(seenByAdmin.filter((event) => event.streamId === appointmentStream).map((event) => event.type)).toContain('AppointmentCompleted');
    expect(new Set(healthOf(seenByAdmin))).toEqual(new Set(['[withheld]']));
  });

  it('answers a malformed Consistency-Position on every audit route reading events with 400 problem+json naming the header', async () => {
    const urls = [
      `/v1/audit/streams/${listingStream}/events`,
      `/v1/audit/streams/${listingStream}/state?version=0`,
      `/v1/audit/actors/${owner.id}/events`,
      `/v1/audit/correlations/${listingCorrelation}/events`,
      '/v1/audit/export?streamPrefix=listing-',
      `/v1/audit/verify?streamId=${listingStream}`,
    ];
    for (const url of urls) {
      const response = await get(url, auditor, { 'consistency-position': 'not-a-position' });
      expect(response.statusCode, url).toBe(400);
      expect(response.headers['content-type'], url).toContain('application/problem+json');
      expect(response.json(), url).toMatchObject({ errors: [expect.objectContaining({ path: 'headers.consistency-position' })] });
      expect((await get(url, auditor, q.consistency())).statusCode, url).toBe(200);
    }
  });

  it('exports NDJSON in global order with the chain hashes, filtered by stream prefix and time', async () => {
    const response = await get(`/v1/audit/export?streamPrefix=${listingStream}`, auditor);
    expect(response.headers['content-type']).toContain('application/x-ndjson');
    const lines = response.body.trim().split('\n').map((line) => JSON.parse(line) as AuditEvent);
    expect(lines.map((event) => event.revision)).toEqual([0, 1, 2]);
    expect(lines.every((event) => event.streamId === listingStream && /^[0-9a-f]{64}$/.test(event.hash ?? ''))).toBe(true);
    const later = await get(`/v1/audit/export?streamPrefix=${listingStream}&from=2030-01-16T00:00:00Z`, auditor);
    expect(later.body.trim().split('\n')).toHaveLength(2);
  });

  it('refuses UPDATE and DELETE of events, access-log and security-log rows', async () => {
    const pool = q.harness.pool;
    await expect(pool.query(`UPDATE events SET data = '{}' WHERE stream_id = $1`, [listingStream])).rejects.toMatchObject({ code: 'EV003' });
    await expect(pool.query(`DELETE FROM events WHERE stream_id = $1`, [listingStream])).rejects.toMatchObject({ code: 'EV003' });
    await get('/v1/audit/access-log', auditor);
    await expect(pool.query(`UPDATE access_log SET outcome = 'granted'`)).rejects.toMatchObject({ code: 'AU001' });
    await expect(pool.query(`DELETE FROM access_log`)).rejects.toMatchObject({ code: 'AU001' });
    await expect(pool.query(`TRUNCATE access_log`)).rejects.toMatchObject({ code: 'AU001' });
    await pool.query(`INSERT INTO security_events (occurred_at, type, request_id) VALUES (now(), 'login_failed', 'r-1')`);
    await expect(pool.query(`UPDATE security_events SET type = 'login_succeeded'`)).rejects.toMatchObject({ code: 'AU001' });
    await expect(pool.query(`DELETE FROM security_events`)).rejects.toMatchObject({ code: 'AU001' });
    await expect(pool.query(`TRUNCATE security_events`)).rejects.toMatchObject({ code: 'AU001' });
  });

  it('records every read of an appointment, granted or refused, with whose data it is', async () => {
    const url = `/v1/appointments/${appointmentId}`;
    const granted = await get(url, patient, q.consistency());
    expect(granted.statusCode).toBe(200);
    expect((await get(url, otherDoctor)).statusCode).toBe(404);
    expect((await get('/v1/appointments/me', patient)).statusCode).toBe(200);
    expect((await get('/v1/appointments/me', consumer)).statusCode).toBe(403);
    expect((await get(url)).statusCode).toBe(401);

    const rows = await accessLog(`action LIKE 'GET /v1/appointments/%'`);
    expect(rows).toEqual([
      expect.objectContaining({ actorId: patient.id, action: 'GET /v1/appointments/:id', resource: url, patientId: patient.id, outcome: 'granted', statusCode: 200, userAgent: 'audit-spec', requestId: granted.headers['x-request-id'] }),
      expect.objectContaining({ actorId: otherDoctor.id, patientId: patient.id, outcome: 'not-found', statusCode: 404 }),
      expect.objectContaining({ actorId: patient.id, action: 'GET /v1/appointments/me', patientId: patient.id, outcome: 'granted' }),
      expect.objectContaining({ actorId: consumer.id, action: 'GET /v1/appointments/me', patientId: null, outcome: 'denied', statusCode: 403 }),
    ]);
  });

  it("records a doctor's read of their appointments once for each patient in the answer, so each patient's trail finds it", async () => {
    const read = await get('/v1/appointments/me?limit=100', doctor, q.consistency());
    expect(read.statusCode).toBe(200);
    const patients = [...new Set(read.json<Page<{ patientId: string }>>().items.map((appointment) => appointment.patientId))];
    expect(patients).toEqual(expect.arrayContaining([patient.id, 'patient-erased']));
    for (const patientId of patients) {
      const trail = (await get(`/v1/audit/access-log?patientId=${patientId}&actorId=${doctor.id}&limit=100`, auditor)).json<Page<AccessEntry>>();
      expect(trail.items, patientId).toContainEqual(
        expect.objectContaining({ actorId: doctor.id, action: 'GET /v1/appointments/me', patientId, outcome: 'granted', statusCode: 200, requestId: read.headers['x-request-id'] }),
      );
    }
    const rows = await accessLog(`request_id = '${String(read.headers['x-request-id'])}'`);
    expect(rows.map((row) => row.patientId).sort()).toEqual([...patients].sort());
  });

  it('answers who may not read before what is wrong with the request: 401 or 403 to a malformed query, recorded as denied', async () => {
    const malformed = `/v1/audit/streams/ab/state?version=x`;
    expect((await get(malformed)).statusCode).toBe(401);
    expect((await get(malformed, consumer)).statusCode).toBe(403);
    const tooEarly = await get(`/v1/audit/access-log?from=0000-01-01T00:00:00Z`, auditor);
    expect(tooEarly.statusCode).toBe(400);
    expect(tooEarly.json()).toMatchObject({ errors: [{ path: 'querystring.from' }] });
    const denied = (await get(`/v1/audit/access-log?actorId=${consumer.id}&limit=100`, admin)).json<Page<AccessEntry>>();
    expect(denied.items.at(-1)).toMatchObject({ action: 'GET /v1/audit/streams/:streamId/state', outcome: 'denied', statusCode: 403 });
  });

  it('records reads of the audit trail itself, and serves and verifies the access log', async () => {
    await get(`/v1/audit/streams/appointment-${appointmentId}/events`, auditor);
    await get(`/v1/audit/streams/appointment-${appointmentId}/events`, consumer);
    const mine = (await get(`/v1/audit/access-log?patientId=${patient.id}&actorId=${auditor.id}`, admin)).json<Page<AccessEntry>>();
    expect(mine.items.at(-1)).toMatchObject({ actorId: auditor.id, action: 'GET /v1/audit/streams/:streamId/events', patientId: patient.id, outcome: 'granted' });
    const denied = (await get(`/v1/audit/access-log?actorId=${consumer.id}&limit=100`, admin)).json<Page<AccessEntry>>();
    expect(denied.items.at(-1)).toMatchObject({ action: 'GET /v1/audit/streams/:streamId/events', outcome: 'denied', statusCode: 403 });
    expect((await get('/v1/audit/access-log/verify', auditor)).json()).toMatchObject({ status: 'intact' });
  });

  it("records reads by actor, by correlation, of a doctor's schedule and exports with each patient whose data they held", async () => {
    const reader: Actor = { id: 'auditor-trail', roles: ['AUDITOR'] };
    const reads = [
      `/v1/audit/actors/${doctor.id}/events?limit=100`,
      `/v1/audit/correlations/${bookingCorrelation}/events`,
      `/v1/audit/streams/doctorSchedule-${doctor.id}/events?limit=100`,
      `/v1/audit/export?streamPrefix=appointment-${appointmentId}`,
    ];
    for (const url of reads) expect((await get(url, reader, q.consistency())).statusCode, url).toBe(200);
    expect((await get('/v1/audit/export?streamPrefix=doctorSchedule-', reader)).statusCode).toBe(200);
    expect((await get('/v1/audit/export?streamPrefix=listing-', reader)).statusCode).toBe(200);

    const rows = await accessLog(`actor_id = '${reader.id}'`);
    const patientsOf = (resource: string) => rows.filter((row) => row.resource === resource).map((row) => row.patientId);
    for (const url of reads) expect(patientsOf(url), url).toContain(patient.id);
    expect(patientsOf('/v1/audit/export?streamPrefix=doctorSchedule-')).toEqual(['*']);
    expect(patientsOf('/v1/audit/export?streamPrefix=listing-')).toEqual([null]);

    // A patient's trail finds every read that held their data, the bulk one included.
    const trail = (await get(`/v1/audit/access-log?patientId=${patient.id}&actorId=${reader.id}&limit=100`, auditor)).json<Page<AccessEntry>>();
    expect(trail.items.map((entry) => entry.resource).sort()).toEqual([...reads, '/v1/audit/export?streamPrefix=doctorSchedule-'].sort());
    const someoneElse = (await get(`/v1/audit/access-log?patientId=patient-nobody&actorId=${reader.id}&limit=100`, auditor)).json<Page<AccessEntry>>();
    expect(someoneElse.items.map((entry) => entry.resource)).toEqual(['/v1/audit/export?streamPrefix=doctorSchedule-']);
  });

  it('records a request whose path or user agent carries NUL (which PostgreSQL text cannot hold) and answers it normally', async () => {
    const response = await get('/v1/appointments/me%00', patient, { 'user-agent': 'probe\u0000' });
    expect(response.statusCode).toBeLessThan(500);
    expect((await get('/v1/audit/access-log/verify', auditor)).json()).toMatchObject({ status: 'intact' });
  });

  it('serves the security events of the identity service, by user, to auditors only', async () => {
    const log = new PgSecurityEventLog(createKysely<IdentityTables>(q.harness.pool));
    const at = new Date('2030-01-01T00:00:00Z');
    await log.record({ type: 'login_failed', userId: patient.id, occurredAt: at, requestId: 'req-sec-1', ip: '10.0.0.1', userAgent: 'spec' });
    await log.record({ type: 'account_locked', userId: patient.id, occurredAt: at, requestId: 'req-sec-2' });
    await log.record({ type: 'login_failed', userId: doctor.id, occurredAt: at, requestId: 'req-sec-3' });

    expect((await get('/v1/audit/security-events', patient)).statusCode).toBe(403);
    const first = (await get(`/v1/audit/security-events?userId=${patient.id}&limit=1`, auditor)).json<Page<{ type: string }>>();
    expect(first.items.map((item) => item.type)).toEqual(['login_failed']);
    const second = (await get(`/v1/audit/security-events?userId=${patient.id}&limit=1&cursor=${first.nextCursor ?? ''}`, auditor)).json<Page<{ type: string }>>();
    expect(second).toMatchObject({ items: [{ type: 'account_locked' }], nextCursor: null });
  });

  it('refuses security-event bounds outside the years 1970–8999, naming the field', async () => {
    for (const [bound, instant] of [
      ['from', '0000-01-01T00:00:00Z'],
      ['to', '9999-12-31T23:59:59-14:00'],
    ] as const) {
      const response = await get(`/v1/audit/security-events?${bound}=${encodeURIComponent(instant)}`, auditor);
      expect(response.statusCode, bound).toBe(400);
      expect(response.headers['content-type'], bound).toContain('application/problem+json');
      expect(response.json(), bound).toMatchObject({ errors: [{ path: `querystring.${bound}` }] });
    }
  });

  it('pages the security events without skipping one that committed late', async () => {
    const db = createKysely<IdentityTables>(q.harness.pool);
    const at = new Date('2030-01-02T00:00:00Z');
    const userId = randomUUID();
    const event = (requestId: string) => ({ type: 'login_failed' as const, userId, occurredAt: at, requestId });
    let commitLate = () => {};
    const held = new Promise<void>((resolve) => (commitLate = resolve));
    let inserted = () => {};
    const late = db.transaction().execute(async (trx) => {
      await new PgSecurityEventLog(trx).record(event('late'));
      inserted();
      await held;
    });
    await new Promise<void>((resolve) => (inserted = resolve));
    const meanwhile = new PgSecurityEventLog(db).record(event('meanwhile'));
    const seenMeanwhile = await Promise.race([meanwhile.then(() => 'committed'), new Promise((resolve) => setTimeout(() => resolve('waiting'), 300))]);
    commitLate();
    await Promise.all([late, meanwhile]);

    // Until the late row commits, no later one does: a reader can never pass a row still to come.
    expect(seenMeanwhile).toBe('waiting');
    const all = (await get(`/v1/audit/security-events?userId=${userId}`, auditor)).json<Page<{ requestId: string }>>();
    expect(all.items.map((item) => item.requestId)).toEqual(['late', 'meanwhile']);
  });

  it('exports, with a Consistency-Position, the events up to it even while an older transaction holds back what the log reads', async () => {
    const older = await q.harness.pool.connect();
    try {
      await older.query('BEGIN');
      await older.query('SELECT txid_current()');
      const listingId = (await createListing(q.side, listingInput, as(owner))).id;
      const exported = get(`/v1/audit/export?streamPrefix=listing-${listingId}`, auditor, q.consistency());
      await new Promise((resolve) => setTimeout(resolve, 300));
      await older.query('COMMIT');

      const response = await exported;
      expect(response.statusCode).toBe(200);
      expect(response.body.trim().split('\n').map((line) => (JSON.parse(line) as { type: string }).type)).toEqual(['ListingCreated']);
    } finally {
      older.release();
    }
  });

  it('refuses the read when its access record cannot be written', async () => {
    const pool = q.harness.pool;
    // As the owner: the access log accepts nothing (a full disk, a lost grant, a locked table).
    await pool.query('ALTER TABLE access_log ADD CONSTRAINT refuse_everything CHECK (false) NOT VALID');
    try {
      const refused = await get(`/v1/appointments/${appointmentId}`, patient);
      expect(refused.statusCode).toBe(503);
      expect(refused.json()).toMatchObject({ type: expect.stringContaining('access-log-unavailable') });
      expect(refused.body).not.toContain('back pain');
      expect((await get('/v1/audit/export', auditor)).statusCode).toBe(503);
    } finally {
      await pool.query('ALTER TABLE access_log DROP CONSTRAINT refuse_everything');
    }
    expect((await get(`/v1/appointments/${appointmentId}`, patient)).statusCode).toBe(200);
  });

  /**
   * Sets `pricePerDay` of one stored event to 1 as the table owner can: the trigger disabled; the
   * chain still shows what changed. `stripped`: its `hash` and `prevHash` removed as well.
   */
  const editPricePerDay = async (streamId: string, revision: number, options: { stripped?: boolean } = {}) => {
    const pool = q.harness.pool;
    const metadata = options.stripped === true ? `metadata - 'hash' - 'prevHash'` : 'metadata';
    await pool.query('ALTER TABLE events DISABLE TRIGGER events_immutable');
    try {
      await pool.query(`UPDATE events SET data = jsonb_set(data, '{pricePerDay}', '1'), metadata = ${metadata} WHERE stream_id = $1 AND revision = $2`, [streamId, revision]);
    } finally {
      await pool.query('ALTER TABLE events ENABLE TRIGGER events_immutable');
    }
  };

  it('verifies a stream and names the revision an attacker with raw access edited', async () => {
    expect((await get(`/v1/audit/verify?streamId=${listingStream}`, auditor)).json()).toMatchObject({ status: 'intact', eventsChecked: 3 });
    await editPricePerDay(listingStream, 1);
    expect((await get(`/v1/audit/verify?streamId=${listingStream}`, auditor)).json()).toMatchObject({
      status: 'broken',
      brokenAt: { revision: 1, reason: 'hash-mismatch' },
    });
    expect((await get('/v1/audit/verify?streamId=listing-nope', auditor)).statusCode).toBe(404);
  });

  it("verifies an event appended outside the command loop through the next event's link (intact, listed as unhashed); never calls intact a last event edited and stripped of its hash", async () => {
    const listingId = (await createListing(q.side, listingInput, as(owner))).id;
    const stream = `listing-${listingId}`;
    const outsiderId = randomUUID();
    await q.harness.store.appendToStream(stream, [{ id: outsiderId, type: 'ListingPriceChanged', data: { listingId, pricePerDay: 5_000, currency: 'EUR' }, metadata: { schemaVersion: 1 } }]);
    await updateListing(q.side, listingId, { pricePerDay: 6_000 }, as(owner));
    await updateListing(q.side, listingId, { pricePerDay: 7_000 }, as(owner));
    const last = (await streamEvents(q.harness.store, stream)).at(-1);
    const verify = async () => (await get(`/v1/audit/verify?streamId=${stream}`, auditor)).json<Record<string, unknown>>();

    expect(await verify()).toEqual({ streamId: stream, status: 'intact', eventsChecked: 4, lastHash: expect.any(String), unhashed: [{ revision: 1, eventId: outsiderId }] });
    await editPricePerDay(stream, 3, { stripped: true });
    expect(await verify()).toEqual({
      streamId: stream,
      status: 'unverified-tail',
      eventsChecked: 4,
      lastHash: expect.any(String),
      unhashed: [{ revision: 1, eventId: outsiderId }],
      unverifiedFrom: { revision: 3, eventId: last?.id },
    });
    await editPricePerDay(stream, 2);
    expect(await verify()).toMatchObject({ status: 'broken', brokenAt: { revision: 2, reason: 'hash-mismatch' }, unhashed: [{ revision: 1, eventId: outsiderId }] });
  });

  it("answers 404 for an event store's own (`$`) stream on every route that reads one stream, as for a stream that does not exist", async () => {
    // EventStoreDB keeps `$user-admin` (a password hash among it); here it is planted in PostgreSQL
    // by hand, since the store itself refuses to write such a stream.
    const stream = '$user-admin';
    await q.harness.pool.query(
      `INSERT INTO events (stream_id, revision, event_id, event_type, data, metadata) VALUES ($1, 0, $2, '$UserCreated', '{"passwordHash":"secret","salt":"pepper"}', '{}')`,
      [stream, randomUUID()],
    );
    for (const url of [`/v1/audit/streams/${encodeURIComponent(stream)}/events`, `/v1/audit/streams/${encodeURIComponent(stream)}/state`, `/v1/audit/verify?streamId=${encodeURIComponent(stream)}`]) {
      const response = await get(url, auditor);
      expect(response.statusCode, url).toBe(404);
      expect(response.body, url).not.toContain('secret');
    }
  });
});
