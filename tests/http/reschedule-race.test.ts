import { randomUUID } from 'node:crypto';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import type { Actor } from '../../src/domain/shared/actor.js';
import { everyMorning, whereIsAppointment } from '../support/command-side.js';
import { FakeClock, postJson, startApi, startBackend, type TestApi, type TestBackend } from './support/command-api.fixture.js';

const day = 86_400_000;
const person = (roles: Actor['roles']): Actor => ({ id: randomUUID(), roles });

/**
 * A patient (with `If-Match`) and their doctor (without) reschedule one appointment to the same
 * time at once, each through a command API of its own on one PostgreSQL database, as two
 * processes would. Whichever lands, the other's answer (200, or the patient's 412) must leave the
 * doctor's slot and the patient's time where the appointment is.
 */
describe('a patient and their doctor rescheduling one appointment to the same time at once, over HTTP', () => {
  let backend: TestBackend;
  let patientsApi: TestApi;
  let doctorsApi: TestApi;
  const clock = new FakeClock();
  const doctor = person(['DOCTOR']);

  const bearer = (actor: Actor) => ({ authorization: `Bearer ${patientsApi.app.issueAccessToken(actor).accessToken}` });
  const post = (api: TestApi, path: string, body: unknown, actor: Actor, headers: Record<string, string> = {}) =>
    postJson(`${api.url}${path}`, body, { ...bearer(actor), ...headers });

  beforeAll(async () => {
    backend = await startBackend();
    patientsApi = await startApi(backend, { clock });
    doctorsApi = await startApi(backend, { clock });
    const response = await fetch(`${doctorsApi.url}/v1/doctors/${doctor.id}/schedule`, {
      method: 'PUT',
      headers: { 'content-type': 'application/json', ...bearer(doctor) },
      body: JSON.stringify(everyMorning),
    });
    expect(response.status).toBe(200);
  });
  afterAll(async () => {
    await patientsApi.close();
    await doctorsApi.close();
    await backend.close();
  });

  it('20 rounds: the appointment, its slot and its time end at the new time, and no third patient can book it', async () => {
    const wrong: string[] = [];
    for (let round = 0; round < 20; round++) {
      // Given an appointment at 09:00 (version 0), on a day of its own,
      const date = new Date(clock.now().getTime() + (3 + round) * day).toISOString().slice(0, 10);
      const [from, to] = [`${date}T09:00:00.000Z`, `${date}T10:00:00.000Z`];
      const patient = person(['PATIENT']);
      const booked = await post(patientsApi, '/v1/appointments', { doctorId: doctor.id, start: from, reason: 'check-up' }, patient);
      expect(booked.status).toBe(201);
      const id = String(booked.body.id);

      // when the patient (If-Match "0") and the doctor reschedule it to 10:00 at once,
      const [byPatient, byDoctor] = await Promise.all([
        post(patientsApi, `/v1/appointments/${id}/reschedule`, { start: to }, patient, { 'if-match': '"0"' }),
        post(doctorsApi, `/v1/appointments/${id}/reschedule`, { start: to }, doctor),
      ]);

      // then each is accepted, or the patient's refused as stale,
      if (![200, 412].includes(byPatient.status)) wrong.push(`round ${round}: the patient's answered ${byPatient.status}`);
      if (byDoctor.status !== 200) wrong.push(`round ${round}: the doctor's answered ${byDoctor.status}`);
      // and the appointment, the doctor's slot and the patient's time are all at 10:00,
      const where = await whereIsAppointment(doctorsApi.side, id, { doctorId: doctor.id, patientId: patient.id });
      if (where.appointment !== to || where.slot !== to || where.time !== to) wrong.push(`round ${round}: ${JSON.stringify(where)}`);
      // which nobody else can book.
      const third = await post(patientsApi, '/v1/appointments', { doctorId: doctor.id, start: to, reason: 'x' }, person(['PATIENT']));
      if (third.status !== 409) wrong.push(`round ${round}: a third patient booked 10:00 (${third.status})`);
    }

    expect(wrong).toEqual([]);
  });
});
