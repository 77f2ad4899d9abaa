import { randomBytes, randomUUID } from 'node:crypto';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { bookAppointment, completeAppointment, rescheduleAppointment } from '../../src/application/appointments/appointment.use-cases.js';
import type { Actor } from '../../src/application/metadata.js';
import type { JsonValue, NewEvent } from '../../src/application/ports/event-store.js';
import type { SubjectKeyStore } from '../../src/application/ports/subject-keys.js';
import { PersonalDataVault } from '../../src/application/privacy/personal-data-vault.js';
import { PgSubjectKeyStore } from '../../src/infrastructure/privacy/pg-subject-key-store.js';
import { setSchedule } from '../../src/application/schedules/schedule.use-cases.js';
import { admin, as, createTestSide, doctor, everyMorning, patient } from '../support/command-side.js';
import { eventually } from '../support/eventually.js';
import { pgVault, testMasterKey } from '../support/personal-data.js';
import { registerUser } from '../projections/support/scenarios.js';
import { startQueryApi, type QueryApiFixture } from '../http/support/query-api.fixture.js';

/**
 * An event the audit trail cannot reveal (its sealed text does not open, or its `personalData`
 * metadata does not parse) is shown with its personal fields reading `[unreadable]` and named in
 * `unreadableFields`; the rest of the history stays readable. A key store that does not answer
 * is no such event: the read is refused for now (503).
 *
 * Its own database: every projection reading appointments stops at such an event, by design.
 */
const auditor: Actor = { id: 'auditor-1', roles: ['AUDITOR'] };

type AuditEvent = { streamId: string; revision: number; type: string; data: Record<string, unknown>; unreadableFields?: string[] };
type Page = { items: AuditEvent[]; nextCursor: string | null };

describe('audit reads of an event that cannot be revealed', () => {
  let q: QueryApiFixture;
  /** Booked and rescheduled as usual; completed with its notes sealed under another key than the patient's. */
  let wrongKey: string;
  /** Booked as usual and indexed; its stored reason was overwritten with garbage afterwards. */
  let tampered: string;
  let tamperedCorrelation: string;
  /** Appended with `personalData` metadata that does not parse. */
  let badMetadata: string;
  /** The same, with a reason that is not even text: no fold can use it. */
  let undecodable: string;

  const get = (url: string, actor: Actor = auditor) => q.app.inject({ url, headers: q.auth(actor) });
  const itemsOf = async (url: string, actor?: Actor) => {
    const response = await get(url, actor);
    expect(response.statusCode, url).toBe(200);
    return response.json<Page>().items;
  };
  const exported = async (url: string, actor?: Actor) => {
    const response = await get(url, actor);
    expect(response.statusCode, url).toBe(200);
    return response.body
      .split('\n')
      .filter((line) => line.length > 0)
      .map((line) => JSON.parse(line) as AuditEvent);
  };

  /** The export reads the global order, which shows a commit only once no older transaction is open. */
  const inGlobalOrder = (streamId: string) =>
    eventually(async () => {
      const first = await q.harness.store.readAll({ filter: { streamPrefixes: [streamId] } })[Symbol.asyncIterator]().next();
      return first.done !== true;
    }, 10_000, `${streamId} in the global order`);

  const scheduled = (appointmentId: string, reason: JsonValue, personalData: JsonValue): NewEvent => ({
    id: randomUUID(),
    type: 'AppointmentScheduled',
    data: {
      appointmentId,
      patientId: patient.id,
      doctorId: doctor.id,
      start: '2030-02-04T09:00:00.000Z',
      end: '2030-02-04T09:30:00.000Z',
      reason,
      scheduledBy: 'patient',
      scheduledAt: '2030-01-10T10:00:00.000Z',
    },
    metadata: { personalData, schemaVersion: 1, actorId: patient.id },
  });

  beforeAll(async () => {
    q = await startQueryApi();
    await registerUser(q.side, doctor, 'Dr Ada');
    await registerUser(q.side, patient, 'Pat');
    await setSchedule(q.side, doctor.id, everyMorning, as(doctor));

    const booked = as(patient);
    tamperedCorrelation = booked.context.correlationId;
    tampered = `appointment-${(await bookAppointment(q.side, { doctorId: doctor.id, start: '2030-01-14T09:00:00Z', reason: 'back pain' }, booked)).id}`;
    await q.settle();
    await q.harness.pool.query('ALTER TABLE events DISABLE TRIGGER events_immutable');
    try {
      const garbage = JSON.stringify(Buffer.alloc(40, 7).toString('base64'));
      await q.harness.pool.query(`UPDATE events SET data = jsonb_set(data, '{reason}', $2::jsonb) WHERE stream_id = $1 AND revision = 0`, [tampered, garbage]);
    } finally {
      await q.harness.pool.query('ALTER TABLE events ENABLE TRIGGER events_immutable');
    }

    const appointmentId = (await bookAppointment(q.side, { doctorId: doctor.id, start: '2030-01-15T09:00:00Z', reason: 'migraine' }, as(patient))).id;
    wrongKey = `appointment-${appointmentId}`;
    await rescheduleAppointment(q.side, appointmentId, { start: '2030-01-16T09:00:00Z' }, as(patient));
    q.clock.advance(7 * 86_400_000);
    // A command side that seals with a key of its own for the patient, who has one: its
    // ciphertext is garbage to the patient's key, and the command loop chains it like any other.
    // It keeps no key in memory, or it would seal with the one it found reading the stream.
    const keys = new PgSubjectKeyStore(q.harness.pool, testMasterKey);
    const sealingWithAnotherKey: SubjectKeyStore = { obtain: async () => randomBytes(32), find: (ids) => keys.find(ids), isErased: (subjectId) => keys.isErased(subjectId), destroy: (subjectId, at) => keys.destroy(subjectId, at) };
    const forgetful = new PersonalDataVault(sealingWithAnotherKey, { keyCacheMs: -1 });
    await completeAppointment(createTestSide(q.harness.store, q.clock, 15, forgetful), appointmentId, { notes: 'rest' }, as(doctor));

    const badId = randomUUID();
    badMetadata = `appointment-${badId}`;
    await q.harness.store.appendToStream(badMetadata, [scheduled(badId, 'c2VhbGVk', 'reason')]);
    const undecodableId = randomUUID();
    undecodable = `appointment-${undecodableId}`;
    await q.harness.store.appendToStream(undecodable, [scheduled(undecodableId, 42, 'reason')]);
    await inGlobalOrder(undecodable);
  });
  afterAll(() => q.close());

  it("shows a stream's history with the unreadable event marked and the others as they are, to auditors and admins", async () => {
    const history = await itemsOf(`/v1/audit/streams/${wrongKey}/events`);
    expect(history.map((event) => [event.revision, event.type])).toEqual([
      [0, 'AppointmentScheduled'],
      [1, 'AppointmentRescheduled'],
      [2, 'AppointmentCompleted'],
    ]);
    expect(history[0]).toMatchObject({ data: { patientId: patient.id, reason: 'migraine' } });
    expect(history.slice(0, 2).some((event) => 'unreadableFields' in event)).toBe(false);
    expect(history[2]).toMatchObject({ data: { notes: '[unreadable]' }, unreadableFields: ['notes'] });
    // The chain covers what was stored, which nobody altered.
    expect((await get(`/v1/audit/verify?streamId=${wrongKey}`)).json()).toMatchObject({ status: 'intact', eventsChecked: 3 });

    const [withMetadataThatDoesNotParse] = await itemsOf(`/v1/audit/streams/${badMetadata}/events`);
    expect(withMetadataThatDoesNotParse).toMatchObject({ data: { reason: '[unreadable]' }, unreadableFields: ['reason'] });

    const seenByAdmin = await itemsOf(`/v1/audit/streams/${wrongKey}/events`, admin);
    expect(seenByAdmin.map((event) => event.data.reason ?? event.data.notes)).toEqual(['[withheld]', undefined, '[unreadable]']);
    expect(await itemsOf(`/v1/audit/streams/${badMetadata}/events`, admin)).toMatchObject([{ data: { reason: '[unreadable]' }, unreadableFields: ['reason'] }]);
  });

  it('withholds the health data of an appointment event stored unsealed from an admin, as of a sealed one', async () => {
    // Stored before sealing existed, or appended outside the command loop: no personalData metadata.
    const id = randomUUID();
    const unsealed = `appointment-${id}`;
    const { personalData: _none, ...metadata } = scheduled(id, 'HIV follow-up', null).metadata;
    await q.harness.store.appendToStream(unsealed, [{ ...scheduled(id, 'HIV follow-up', null), metadata }]);
    await inGlobalOrder(unsealed);

    expect(await itemsOf(`/v1/audit/streams/${unsealed}/events`, admin)).toMatchObject([{ data: { reason: '[withheld]' } }]);
    expect(await exported(`/v1/audit/export?streamPrefix=${unsealed}`, admin)).toMatchObject([
      { streamId: unsealed, revision: 0, type: 'AppointmentScheduled', data: { patientId: patient.id, reason: '[withheld]' } },
    ]);
    expect(await itemsOf(`/v1/audit/streams/${unsealed}/events`)).toMatchObject([{ data: { reason: 'HIV follow-up' } }]);
  });

  it('withholds from an admin the health data of an unreadable event whose metadata names other fields', async () => {
    const id = randomUUID();
    const stream = `appointment-${id}`;
    // Its metadata says only `scheduledBy` was sealed, which does not open: the reason is in clear.
    await q.harness.store.appendToStream(stream, [scheduled(id, 'HIV follow-up', { subjectId: patient.id, fields: ['scheduledBy'] })]);
    await inGlobalOrder(stream);

    expect(await itemsOf(`/v1/audit/streams/${stream}/events`, admin)).toMatchObject([
      { data: { reason: '[withheld]', scheduledBy: '[unreadable]' }, unreadableFields: ['scheduledBy'] },
    ]);
    expect(await exported(`/v1/audit/export?streamPrefix=${stream}`, admin)).toMatchObject([
      { streamId: stream, revision: 0, data: { reason: '[withheld]', scheduledBy: '[unreadable]' }, unreadableFields: ['scheduledBy'] },
    ]);
  });

  it('marks an event whose data key does not unwrap under this MASTER_KEY', async () => {
    const otherMaster = new PersonalDataVault(new PgSubjectKeyStore(q.harness.pool, Buffer.alloc(32, 0x11)));
    const { data, personalData } = await otherMaster.seal(`patient-${randomUUID()}`, { reason: 'sprain' }, [['reason']]);
    const appointmentId = randomUUID();
    const streamId = `appointment-${appointmentId}`;
    await q.harness.store.appendToStream(streamId, [scheduled(appointmentId, data.reason ?? null, personalData ?? null)]);
    expect(await itemsOf(`/v1/audit/streams/${streamId}/events`)).toMatchObject([{ data: { reason: '[unreadable]' }, unreadableFields: ['reason'] }]);
  });

  it('exports every event of every stream, the unreadable ones marked, none cut short', async () => {
    const one = await exported(`/v1/audit/export?streamPrefix=${wrongKey}`);
    expect(one.map((event) => event.revision)).toEqual([0, 1, 2]);
    expect(one[0]).toMatchObject({ data: { reason: 'migraine' } });
    expect(one[2]).toMatchObject({ data: { notes: '[unreadable]' }, unreadableFields: ['notes'] });

    const all = await exported('/v1/audit/export?streamPrefix=appointment-');
    const revisions = (streamId: string) => all.filter((event) => event.streamId === streamId).map((event) => event.revision);
    expect(revisions(wrongKey)).toEqual([0, 1, 2]);
    expect(revisions(tampered)).toEqual([0]);
    expect(revisions(badMetadata)).toEqual([0]);
    expect(revisions(undecodable)).toEqual([0]);
  });

  it('finds the unreadable event by actor and by correlation, marked as its stream shows it', async () => {
    const caused = await itemsOf(`/v1/audit/correlations/${tamperedCorrelation}/events`);
    const inStream = caused.find((event) => event.streamId === tampered);
    expect(inStream).toMatchObject({ data: { reason: '[unreadable]' }, unreadableFields: ['reason'] });
    expect(caused.filter((event) => event.streamId !== tampered).every((event) => event.unreadableFields === undefined)).toBe(true);
    expect(await itemsOf(`/v1/audit/streams/${tampered}/events`)).toEqual([inStream]);

    const byPatient = await itemsOf(`/v1/audit/actors/${patient.id}/events?limit=100`);
    expect(byPatient.find((event) => event.streamId === tampered)).toEqual(inStream);
  });

  it('folds the state through an unreadable event and names it; answers 409 unreadable-event when it does not decode', async () => {
    const completed = await get(`/v1/audit/streams/${wrongKey}/state?version=2`);
    expect(completed.statusCode).toBe(200);
    expect(completed.json()).toMatchObject({ version: 2, state: { status: 'completed', patientId: patient.id }, unreadableRevisions: [2] });
    expect((await get(`/v1/audit/streams/${wrongKey}/state?version=1`)).json()).toMatchObject({ version: 1, state: { status: 'rescheduled' }, unreadableRevisions: [] });
    expect((await get(`/v1/audit/streams/${badMetadata}/state?version=0`)).json()).toMatchObject({ version: 0, unreadableRevisions: [0] });

    const refused = await get(`/v1/audit/streams/${undecodable}/state?version=0`);
    expect(refused.statusCode).toBe(409);
    expect(refused.headers['content-type']).toContain('application/problem+json');
    expect(refused.json()).toMatchObject({ type: expect.stringMatching(/\/unreadable-event$/), streamId: undecodable, revision: 0 });
    // Its history is still there to read.
    expect(await itemsOf(`/v1/audit/streams/${undecodable}/events`)).toMatchObject([{ data: { reason: 42 }, unreadableFields: ['reason'] }]);
  });

  it('documents the mark in /docs', async () => {
    type Schema = { properties?: Record<string, { description?: string }> };
    type Docs = { components: { schemas: Record<string, Schema> }; paths: Record<string, { get: { responses: Record<string, { content: Record<string, { schema: Schema }> }> } }> };
    const docs = (await q.app.inject({ url: '/docs/json' })).json<Docs>();
    expect(docs.components.schemas.AuditEvent?.properties?.unreadableFields?.description).toContain('[unreadable]');
    const state = docs.paths['/v1/audit/streams/{streamId}/state']?.get.responses['200']?.content['application/json']?.schema;
    expect(state?.properties?.unreadableRevisions?.description).toContain('[unreadable]');
  });

  it('refuses the read for now (503) when the key store does not answer, rather than call the event unreadable', async () => {
    const subjectId = `patient-${randomUUID()}`;
    // Sealed by a vault of its own, so the query API has never held this subject's key.
    const { data, personalData } = await pgVault(q.harness.pool).seal(subjectId, { reason: 'sprain' }, [['reason']]);
    const appointmentId = randomUUID();
    const streamId = `appointment-${appointmentId}`;
    const event = scheduled(appointmentId, data.reason ?? null, personalData ?? null);
    await q.harness.pool.query('ALTER TABLE subject_keys RENAME TO subject_keys_away');
    try {
      await q.harness.store.appendToStream(streamId, [event]);
      await inGlobalOrder(streamId);
      for (const url of [`/v1/audit/streams/${streamId}/events`, `/v1/audit/streams/${streamId}/state?version=0`, `/v1/audit/export?streamPrefix=${streamId}`]) {
        const response = await get(url);
        expect(response.statusCode, url).toBe(503);
        expect(response.headers['retry-after'], url).toBeDefined();
        expect(response.json(), url).toMatchObject({ type: expect.stringMatching(/\/key-store-unavailable$/) });
      }
    } finally {
      await q.harness.pool.query('ALTER TABLE subject_keys_away RENAME TO subject_keys');
    }
    expect((await itemsOf(`/v1/audit/streams/${streamId}/events`))[0]?.data.reason).toBe('sprain');
  });
});
