import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { bookAppointment } from '../../src/application/appointments/appointment.use-cases.js';
import type { Actor } from '../../src/application/metadata.js';
import { eraseSubject } from '../../src/application/privacy/erase-subject.use-case.js';
import { setSchedule } from '../../src/application/schedules/schedule.use-cases.js';
import { erasedPlaceholder } from '../../src/domain/shared/personal-data.js';
import { accessTokenTtlSeconds } from '../../src/infrastructure/http/command-api.js';
import type { HttpServer } from '../../src/infrastructure/http/http-server.js';
import { buildQueryApi } from '../../src/infrastructure/http/query-api.js';
import { ErasedSubjects } from '../../src/infrastructure/privacy/erased-subjects.js';
import { PgCheckpointListener } from '../../src/infrastructure/projections/pg-checkpoint-listener.js';
import { startQueryApi, testQueryApiOptions, type QueryApiFixture } from '../http/support/query-api.fixture.js';
import { registerUser } from '../projections/support/scenarios.js';
import { admin, as, doctor, everyMorning, patient } from '../support/command-side.js';
import { eventually } from '../support/eventually.js';
import { pgVault } from '../support/personal-data.js';

// A vault trusts a key from memory for a minute. Only the process that erased someone used to
// stop trusting theirs at once: another one, on the same database, kept revealing the person's
// data for up to that minute, though its watcher of erasures had read the tombstone a second later.

const auditor: Actor = { id: 'auditor-1', roles: ['AUDITOR'] };

type AuditEvent = { type: string; data: Record<string, unknown> };

describe('an erasure seen by another query API process', () => {
  let here: QueryApiFixture;
  let elsewhere: { app: HttpServer; erased: ErasedSubjects; listener: PgCheckpointListener };
  let appointmentStream: string;

  beforeAll(async () => {
    here = await startQueryApi();
    const { harness } = here;
    // Its own vault (its own cache of keys) and its own watcher, as in another process.
    const vault = pgVault(harness.pool);
    const erased = await ErasedSubjects.start({ pool: harness.pool, tokenLifetimeMs: accessTokenTtlSeconds * 1000, vault });
    const listener = new PgCheckpointListener({ connectionString: harness.url, reconnectMs: 100 });
    await listener.start();
    const app = await buildQueryApi({
      ...testQueryApiOptions,
      clock: here.clock,
      pool: harness.pool,
      events: harness.store,
      personalData: vault,
      notifications: listener,
      consistencyTimeoutMs: 5000,
      probes: [],
      isErased: erased.has,
    });
    await app.ready();
    elsewhere = { app, erased, listener };

    await registerUser(here.side, doctor, 'Dr Ada');
    await registerUser(here.side, patient, 'Pat');
    await setSchedule(here.side, doctor.id, everyMorning, as(doctor));
    appointmentStream = `appointment-${(await bookAppointment(here.side, { doctorId: doctor.id, start: '2030-01-14T09:00:00Z', reason: 'HIV follow-up' }, as(patient))).id}`;
  });

  afterAll(async () => {
    await elsewhere.app.close();
    await elsewhere.listener.close();
    await elsewhere.erased.close();
    await here.close();
  });

  const reasonShownBy = async (app: HttpServer) => {
    const response = await app.inject({ url: `/v1/audit/streams/${appointmentStream}/events`, headers: here.auth(auditor) });
    expect(response.statusCode).toBe(200);
    return response.json<{ items: AuditEvent[] }>().items.find((event) => event.type === 'AppointmentScheduled')?.data.reason;
  };

  it("given both processes revealed a patient's reason for visit, when the patient is erased through one, then the other shows it erased within its watcher's next poll", async () => {
    expect(await reasonShownBy(here.app)).toBe('HIV follow-up');
    // Its key now in the other process's memory.
    expect(await reasonShownBy(elsewhere.app)).toBe('HIV follow-up');

    await eraseSubject({ side: here.side, vault: here.harness.vault, outsideTheLog: { eraseSubject: async () => undefined } }, patient.id, as(admin));

    expect(await reasonShownBy(here.app)).toBe(erasedPlaceholder);
    await eventually(async () => (await reasonShownBy(elsewhere.app)) === erasedPlaceholder, 2_500, 'the other process to show the reason erased');
  });
});
