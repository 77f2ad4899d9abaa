import { randomUUID } from 'node:crypto';
import { Writable } from 'node:stream';
import { sql, type Kysely } from 'kysely';
import { pino } from 'pino';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { erasedPlaceholder } from '../../src/domain/shared/personal-data.js';
import type { Actor } from '../../src/domain/shared/actor.js';
import type { HttpServer } from '../../src/infrastructure/http/http-server.js';
import { createKysely } from '../../src/infrastructure/postgres/database.js';
import { readModelProjections } from '../../src/projections/read-models.js';
import { answerLost, postJson, startApi, startBackend, type TestApi, type TestBackend } from '../http/support/command-api.fixture.js';
import { startReadSide, type ReadSide } from '../http/support/read-side.fixture.js';
import { payBooking } from '../projections/support/scenarios.js';
import { activeCheckpoint, eventually } from '../projections/support/runtime-harness.js';
import { everyMorning, listingInput } from '../support/command-side.js';

const day = 86_400_000;
const password = 'correct horse battery staple';

/** What the patient entrusted to the service; none of it may survive the erasure anywhere. */
const secrets = {
  email: `zelda-${randomUUID().slice(0, 8)}@example.com`,
  name: 'Zelda Quartermain',
  reason: 'recurring migraine with aura',
  notes: 'prescribed sumatriptan fifty milligrams',
  cancelReason: 'my mother is in hospital',
  comment: 'the hot tub smelled of sulphur',
  stayCancelReason: 'our wedding was called off',
};

const admin: Actor = { id: randomUUID(), roles: ['ADMIN'] };
const auditor: Actor = { id: randomUUID(), roles: ['AUDITOR'] };
const doctor: Actor = { id: randomUUID(), roles: ['DOCTOR'] };
const owner: Actor = { id: randomUUID(), roles: ['OWNER'] };

/** Every row of every table in every schema whose text shows `needle`, as `schema.table`. */
async function tablesContaining(db: Kysely<unknown>, needle: string): Promise<string[]> {
  const { rows: tables } = await sql<{ schema: string; name: string }>`
    SELECT table_schema AS schema, table_name AS name FROM information_schema.tables
    WHERE table_type = 'BASE TABLE' AND table_schema NOT IN ('pg_catalog', 'information_schema')`.execute(db);
  const found: string[] = [];
  for (const { schema, name } of tables) {
    const rows = await sql<{ n: number }>`
      SELECT count(*)::int AS n FROM ${sql.table(`${schema}.${name}`)} AS t WHERE strpos(t::text, ${needle}) > 0`
      .execute(db)
      .then(({ rows }) => rows)
      // An old read-model generation may be dropped between the listing and the scan.
      .catch((error: unknown) => {
        if (error instanceof Error && 'code' in error && error.code === '42P01') return [];
        throw error;
      });
    if ((rows[0]?.n ?? 0) > 0) found.push(`${schema}.${name}`);
  }
  return found;
}

function logSink(lines: string[]) {
  return new Writable({
    write(chunk: Buffer, _encoding, done) {
      lines.push(chunk.toString('utf8'));
      done();
    },
  });
}

describe('erasing a person (crypto-shredding), end to end over HTTP', () => {
  let backend: TestBackend;
  let api: TestApi;
  let readSide: ReadSide;
  let queryApi: HttpServer;
  const queryLogs: string[] = [];
  let patient: Actor;
  let lastPosition = '';

  const post = async (path: string, body: unknown, actor?: Actor, headers: Record<string, string> = {}) => {
    const auth: Record<string, string> = actor ? { authorization: `Bearer ${api.app.issueAccessToken(actor).accessToken}` } : {};
    const response = await postJson(`${api.url}${path}`, body, { ...auth, ...headers });
    const position = response.headers.get('event-position');
    if (position) lastPosition = position;
    return response;
  };
  const get = (url: string, actor: Actor) =>
    queryApi.inject({ url, headers: { authorization: `Bearer ${queryApi.issueAccessToken(actor).accessToken}`, 'consistency-position': lastPosition } });

  beforeAll(async () => {
    backend = await startBackend();
    api = await startApi(backend, { corsOrigins: [] });
    readSide = await startReadSide(backend, api, pino({ level: 'info' }, logSink(queryLogs)));
    queryApi = readSide.queryApi;
  });

  afterAll(async () => {
    await readSide.close();
    await api.close();
    await backend.close();
  });

  it('leaves no plaintext in any table, export, history or log; the facts and the hash chains stay', async () => {
    const db = createKysely<unknown>(backend.pool);
    // The patient signs up, sees a doctor, stays at a listing and reviews it.
    const signup = await post('/v1/auth/signup', { email: secrets.email, password, name: secrets.name, roles: ['PATIENT', 'CONSUMER'] });
    expect(signup.status).toBe(201);
    patient = { id: String(signup.body.id), roles: ['PATIENT', 'CONSUMER'] };
    const schedule = await fetch(`${api.url}/v1/doctors/${doctor.id}/schedule`, {
      method: 'PUT',
      headers: { 'content-type': 'application/json', authorization: `Bearer ${api.app.issueAccessToken(doctor).accessToken}` },
      body: JSON.stringify(everyMorning),
    });
    expect(schedule.status).toBe(200);
    const tomorrow = new Date(api.clock.now().getTime() + day).toISOString().slice(0, 10);
    const seen = await post('/v1/appointments', { doctorId: doctor.id, start: `${tomorrow}T09:00:00Z`, reason: secrets.reason }, patient, { 'idempotency-key': randomUUID() });
    expect(seen.status).toBe(201);
    const appointmentId = String(seen.body.id);
    const dropped = await post('/v1/appointments', { doctorId: doctor.id, start: `${tomorrow}T10:00:00Z`, reason: secrets.reason }, patient);
    expect((await post(`/v1/appointments/${String(dropped.body.id)}/cancel`, { reason: secrets.cancelReason }, patient)).status).toBe(200);

    const listingId = String((await post('/v1/listings', listingInput, owner)).body.id);
    const stay = (offset: number) => ({
      listingId,
      startDate: new Date(api.clock.now().getTime() + offset * day).toISOString().slice(0, 10),
      endDate: new Date(api.clock.now().getTime() + (offset + 1) * day).toISOString().slice(0, 10),
    });
    const bookingId = String((await post('/v1/bookings', stay(2), patient)).body.id);
    const cancelledStay = String((await post('/v1/bookings', stay(5), patient)).body.id);
    expect((await post(`/v1/bookings/${cancelledStay}/cancel`, { reason: secrets.stayCancelReason }, patient)).status).toBe(200);
    await payBooking(api.side, bookingId);

    api.clock.advance(4 * day);
    expect((await post(`/v1/appointments/${appointmentId}/complete`, { notes: secrets.notes }, doctor)).status).toBe(200);
    expect((await post(`/v1/bookings/${bookingId}/complete`, {}, owner)).status).toBe(200);
    expect((await post(`/v1/listings/${listingId}/reviews`, { bookingId, rating: 2, comment: secrets.comment }, patient)).status).toBe(201);

    // Before: the service shows it to those entitled, and the scan finds it (so the scan can fail).
    expect((await get(`/v1/appointments/${appointmentId}`, patient)).json()).toMatchObject({ reason: secrets.reason, notes: secrets.notes });
    expect((await get('/v1/users/me', patient)).json()).toMatchObject({ name: secrets.name, email: secrets.email });
    expect(await tablesContaining(db, secrets.notes)).toEqual([expect.stringMatching(/^rm_appointments__g\d+\.appointments$/)]);

    // Only an admin erases, and only someone who exists.
    expect((await post(`/v1/admin/subjects/${patient.id}/erase`, {}, auditor)).status).toBe(403);
    expect((await post(`/v1/admin/subjects/${randomUUID()}/erase`, {}, admin)).status).toBe(404);
    // A stale If-Match is refused before anything is erased.
    expect((await post(`/v1/admin/subjects/${patient.id}/erase`, {}, admin, { 'if-match': '"3"' })).status).toBe(412);
    expect((await post('/v1/auth/login', { email: secrets.email, password })).status).toBe(200);
    const key = randomUUID();
    const erase = () => post(`/v1/admin/subjects/${patient.id}/erase`, {}, admin, { 'if-match': '"0"', 'idempotency-key': key });
    const erased = await erase();
    expect(erased.status).toBe(200);
    expect(erased.body).toMatchObject({ id: patient.id, streamId: `user-${patient.id}`, version: 1 });
    // Retried with its If-Match after it went through, its answer lost: answered as it was.
    await answerLost(backend, key);
    expect(await erase()).toMatchObject({ status: 200, body: erased.body });
    expect((await post(`/v1/admin/subjects/${patient.id}/erase`, {}, admin)).body).toMatchObject({ version: 1 });
    expect((await post('/v1/auth/login', { email: secrets.email, password })).status).toBe(401);

    // Every read model rebuilt from the first event, beside the live one, then swapped in.
    for (const { name } of readModelProjections) {
      const before = (await activeCheckpoint(db, name))?.generation ?? 0;
      expect((await post(`/v1/admin/projections/${name}/rebuild`, {}, admin)).status).toBe(202);
      await eventually(async () => ((await activeCheckpoint(db, name))?.generation ?? 0) > before, 20_000, `${name} rebuilt`);
    }
    await eventually(async () => (await tablesContaining(db, secrets.notes)).length === 0 || undefined, 10_000, 'old generations dropped');

    const exported = await get('/v1/audit/export', auditor);
    expect(exported.statusCode).toBe(200);
    expect(exported.body).toContain(erasedPlaceholder);
    const history = await get(`/v1/audit/streams/appointment-${appointmentId}/events`, auditor);
    const logs = [...api.logs.map((line) => JSON.stringify(line)), ...queryLogs].join('\n');
    for (const [what, plaintext] of Object.entries(secrets)) {
      expect(await tablesContaining(db, plaintext), `${what} in a table`).toEqual([]);
      expect(exported.body, `${what} in the export`).not.toContain(plaintext);
      expect(history.body, `${what} in the history`).not.toContain(plaintext);
      expect(logs, `${what} in the logs`).not.toContain(plaintext);
    }

    // The facts stay, now without the personal text; the chains still verify.
    expect(history.json()).toMatchObject({
      items: [
        { type: 'AppointmentScheduled', data: { patientId: patient.id, reason: erasedPlaceholder } },
        { type: 'AppointmentCompleted', data: { notes: erasedPlaceholder } },
      ],
    });
    const asDoctor = await get(`/v1/appointments/${appointmentId}`, doctor);
    expect(asDoctor.json()).toMatchObject({ status: 'completed', reason: erasedPlaceholder, notes: erasedPlaceholder });
    expect((await get(`/v1/listings/${listingId}/reviews`, auditor)).json()).toMatchObject({ items: [{ rating: 2, comment: erasedPlaceholder }] });
    const state = await get(`/v1/audit/streams/user-${patient.id}/state?version=0`, auditor);
    expect(state.statusCode).toBe(200);
    for (const streamId of [`user-${patient.id}`, `appointment-${appointmentId}`, `booking-${cancelledStay}`, `review-${bookingId}`]) {
      expect((await get(`/v1/audit/verify?streamId=${streamId}`, auditor)).json(), streamId).toMatchObject({ status: 'intact' });
    }
  });
});
