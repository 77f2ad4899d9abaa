import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { bookAppointment } from '../../src/application/appointments/appointment.use-cases.js';
import type { Actor } from '../../src/application/metadata.js';
import { setSchedule } from '../../src/application/schedules/schedule.use-cases.js';
import { as, doctor, everyMorning, patient } from '../support/command-side.js';
import { startQueryApi, type QueryApiFixture } from '../http/support/query-api.fixture.js';

const auditor: Actor = { id: 'auditor-1', roles: ['AUDITOR'] };

type AccessEntry = { resource: string; patientId: string | null };

/**
 * The access log names whose data an audit read of an appointment's stream concerned, from the
 * stream itself: with the projectors stopped, the appointments read model knows nothing of it.
 */
describe('access log of an audit read while the appointments read model is behind', () => {
  let q: QueryApiFixture;

  beforeAll(async () => {
    q = await startQueryApi();
    await setSchedule(q.side, doctor.id, everyMorning, as(doctor));
    await q.settle();
    await q.runtime.stop();
  });
  afterAll(() => q.close());

  it('records the patient of an appointment stream the read model has not seen yet', async () => {
    const booked = await bookAppointment(q.side, { doctorId: doctor.id, start: '2030-01-14T09:00:00Z', reason: 'back pain' }, as(patient));
    const resource = `/v1/audit/streams/${booked.streamId}/events`;

    expect((await q.app.inject({ url: resource, headers: q.auth(auditor) })).statusCode).toBe(200);

    const trail = await q.app.inject({ url: `/v1/audit/access-log?patientId=${patient.id}&actorId=${auditor.id}`, headers: q.auth(auditor) });
    expect(trail.json<{ items: AccessEntry[] }>().items).toEqual([expect.objectContaining({ resource, patientId: patient.id })]);
  });

  it('records no patient, and answers the read, for a stream id that names no appointment', async () => {
    const resource = '/v1/audit/streams/appointment-not-a-uuid/events';

    expect((await q.app.inject({ url: resource, headers: q.auth(auditor) })).statusCode).toBe(404);

    const trail = await q.app.inject({ url: `/v1/audit/access-log?actorId=${auditor.id}&limit=100`, headers: q.auth(auditor) });
    expect(trail.json<{ items: AccessEntry[] }>().items).toContainEqual(expect.objectContaining({ resource, patientId: null }));
  });
});
