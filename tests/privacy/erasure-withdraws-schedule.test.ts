import { randomUUID } from 'node:crypto';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { bookAppointment } from '../../src/application/appointments/appointment.use-cases.js';
import { eraseSubject, type ErasureDeps } from '../../src/application/privacy/erase-subject.use-case.js';
import { setSchedule } from '../../src/application/schedules/schedule.use-cases.js';
import type { Actor } from '../../src/domain/shared/actor.js';
import type { HttpServer } from '../../src/infrastructure/http/http-server.js';
import { answerLost, postJson, startApi, startBackend, type TestApi, type TestBackend } from '../http/support/command-api.fixture.js';
import { startReadSide, type ReadSide } from '../http/support/read-side.fixture.js';
import { registerUser } from '../projections/support/scenarios.js';
import { admin, as, createTestSide, doctor, eventTypes, everyMorning, fakeClock, InterruptibleStore, patient } from '../support/command-side.js';
import { memoryVault } from '../support/personal-data.js';

const day = 86_400_000;

describe('erasing a doctor withdraws their schedule, over HTTP', () => {
  let backend: TestBackend;
  let api: TestApi;
  let readSide: ReadSide;
  let queryApi: HttpServer;
  let lastPosition = '';
  const anAdmin: Actor = { id: randomUUID(), roles: ['ADMIN'] };
  const aPatient: Actor = { id: randomUUID(), roles: ['PATIENT'] };

  const bearer = (actor: Actor) => ({ authorization: `Bearer ${api.app.issueAccessToken(actor).accessToken}` });
  const post = async (path: string, body: unknown, actor?: Actor, headers: Record<string, string> = {}) => {
    const response = await postJson(`${api.url}${path}`, body, { ...(actor ? bearer(actor) : {}), ...headers });
    const position = response.headers.get('event-position');
    if (position) lastPosition = position;
    return response;
  };
  const put = async (path: string, body: unknown, actor: Actor) => {
    const response = await fetch(`${api.url}${path}`, { method: 'PUT', headers: { 'content-type': 'application/json', ...bearer(actor) }, body: JSON.stringify(body) });
    const position = response.headers.get('event-position');
    if (position) lastPosition = position;
    return { status: response.status, body: JSON.parse(await response.text()) };
  };
  const get = (url: string) => queryApi.inject({ url, headers: { 'consistency-position': lastPosition } });

  beforeAll(async () => {
    backend = await startBackend();
    api = await startApi(backend);
    readSide = await startReadSide(backend, api);
    queryApi = readSide.queryApi;
  });

  afterAll(async () => {
    await readSide.close();
    await api.close();
    await backend.close();
  });

  it('refuses new appointments with 409 schedule-withdrawn, stops listing the doctor and their slots, and still lets a booked appointment be cancelled', async () => {
    const signup = await post('/v1/auth/signup', { email: `${randomUUID()}@example.com`, password: 'correct horse battery', name: 'Dr Erin', roles: ['DOCTOR'] });
    expect(signup.status).toBe(201);
    const erin: Actor = { id: String(signup.body.id), roles: ['DOCTOR'] };
    expect((await put(`/v1/doctors/${erin.id}/schedule`, everyMorning, anAdmin)).status).toBe(200);
    const tomorrow = new Date(api.clock.now().getTime() + day).toISOString().slice(0, 10);
    const tomorrowSlots = `from=${tomorrow}T00:00:00Z&to=${tomorrow}T23:59:00Z`;
    const booked = await post('/v1/appointments', { doctorId: erin.id, start: `${tomorrow}T09:00:00Z`, reason: 'check-up' }, aPatient);
    expect(booked.status).toBe(201);
    expect((await get('/v1/doctors?limit=100')).json().items.map((d: { id: string }) => d.id)).toContain(erin.id);
    expect((await get(`/v1/doctors/${erin.id}/slots?${tomorrowSlots}`)).statusCode).toBe(200);

    const key = randomUUID();
    const erase = () => post(`/v1/admin/subjects/${erin.id}/erase`, {}, anAdmin, { 'idempotency-key': key });
    const erased = await erase();
    expect(erased.status).toBe(200);

    const refused = await post('/v1/appointments', { doctorId: erin.id, start: `${tomorrow}T10:00:00Z`, reason: 'check-up' }, aPatient);
    expect(refused.status).toBe(409);
    expect(refused.body.type).toMatch(/\/problems\/schedule-withdrawn$/);
    // Published again neither by an anAdmin, nor by the erased doctor's token while it lasts.
    expect((await put(`/v1/doctors/${erin.id}/schedule`, everyMorning, anAdmin)).body.type).toMatch(/\/problems\/unknown-doctor$/);
    const own = await put(`/v1/doctors/${erin.id}/schedule`, { ...everyMorning, slotMinutes: 20 }, erin);
    expect(own.status).toBe(409);
    expect(own.body.type).toMatch(/\/problems\/unknown-doctor$/);

    const cancelled = await post(`/v1/appointments/${String(booked.body.id)}/cancel`, { reason: 'the doctor left' }, aPatient);
    expect(cancelled.status).toBe(200);
    expect(await eventTypes(backend.eventStore, `doctorSchedule-${erin.id}`)).toEqual(['ScheduleSet', 'SlotBooked', 'ScheduleWithdrawn', 'SlotReleased']);

    expect((await get('/v1/doctors?limit=100')).json().items.map((d: { id: string }) => d.id)).not.toContain(erin.id);
    expect((await get(`/v1/doctors/${erin.id}/slots?${tomorrowSlots}`)).statusCode).toBe(404);

    // Retried after it went through, its answer lost: answered as it was, withdrawn once.
    await answerLost(backend, key);
    expect(await erase()).toMatchObject({ status: 200, body: erased.body });
    expect((await eventTypes(backend.eventStore, `doctorSchedule-${erin.id}`)).filter((type) => type === 'ScheduleWithdrawn')).toHaveLength(1);
  });

  it('stops listing a doctor who never published a schedule once erased', async () => {
    const signup = await post('/v1/auth/signup', { email: `${randomUUID()}@example.com`, password: 'correct horse battery', name: 'Dr Never', roles: ['DOCTOR'] });
    expect(signup.status).toBe(201);
    const doctorIds = async () => (await get('/v1/doctors?limit=100')).json<{ items: { id: string }[] }>().items.map((listed) => listed.id);
    expect(await doctorIds()).toContain(signup.body.id);
    expect((await post(`/v1/admin/subjects/${String(signup.body.id)}/erase`, {}, anAdmin, { 'idempotency-key': randomUUID() })).status).toBe(200);
    expect(await doctorIds()).not.toContain(signup.body.id);
  });
});

describe('an erasure that crashed on the way, retried', () => {
  const start = '2030-01-10T10:00:00Z';
  const schedule = `doctorSchedule-${doctor.id}`;

  async function bookableDoctor() {
    const store = new InterruptibleStore();
    const side = createTestSide(store, fakeClock(start));
    const vault = memoryVault();
    const deps: ErasureDeps = { side, vault, outsideTheLog: { eraseSubject: async () => undefined } };
    await registerUser(side, doctor, 'Dr Ada');
    await setSchedule(side, doctor.id, everyMorning, as(doctor));
    return { store, side, deps };
  }
  const book = (side: ReturnType<typeof createTestSide>, at: string) => bookAppointment(side, { doctorId: doctor.id, start: at, reason: 'checkup' }, as(patient));

  it('dying before its record, leaves the doctor unbookable; the retry records it and withdraws nothing twice', async () => {
    const { store, side, deps } = await bookableDoctor();
    const request = as(admin);
    store.interrupt((streamId) => streamId === `user-${doctor.id}`);
    await expect(eraseSubject(deps, doctor.id, request)).rejects.toThrow(/died/);
    await expect(book(side, '2030-01-14T09:00:00Z')).rejects.toMatchObject({ code: 'schedule-withdrawn' });

    await eraseSubject(deps, doctor.id, request);
    expect(await eventTypes(store, `user-${doctor.id}`)).toEqual(['UserRegistered', 'SubjectErased']);
    expect(await eventTypes(store, schedule)).toEqual(['ScheduleSet', 'ScheduleWithdrawn']);
  });

  it('dying before the withdrawal, leaves the doctor as they were; the retry withdraws the schedule', async () => {
    const { store, side, deps } = await bookableDoctor();
    const request = as(admin);
    store.interrupt((streamId) => streamId === schedule);
    await expect(eraseSubject(deps, doctor.id, request)).rejects.toThrow(/died/);
    expect(await eventTypes(store, `user-${doctor.id}`)).toEqual(['UserRegistered']);

    await eraseSubject(deps, doctor.id, request);
    expect(await eventTypes(store, schedule)).toEqual(['ScheduleSet', 'ScheduleWithdrawn']);
    await expect(book(side, '2030-01-14T09:00:00Z')).rejects.toMatchObject({ code: 'schedule-withdrawn' });
  });

  it('refuses a first schedule published with the token of a doctor erased before publishing any', async () => {
    const store = new InterruptibleStore();
    const side = createTestSide(store, fakeClock(start));
    await registerUser(side, doctor, 'Dr Ada');
    await eraseSubject({ side, vault: memoryVault(), outsideTheLog: { eraseSubject: async () => undefined } }, doctor.id, as(admin));
    await expect(setSchedule(side, doctor.id, everyMorning, as(doctor))).rejects.toMatchObject({ code: 'unknown-doctor' });
    expect(await eventTypes(store, schedule)).toEqual(['ScheduleWithdrawn']);
  });

  it('erases someone who never published a schedule without starting one', async () => {
    const store = new InterruptibleStore();
    const side = createTestSide(store, fakeClock(start));
    await registerUser(side, patient, 'Pat');
    await eraseSubject({ side, vault: memoryVault(), outsideTheLog: { eraseSubject: async () => undefined } }, patient.id, as(admin));
    expect(await eventTypes(store, `doctorSchedule-${patient.id}`)).toEqual([]);
  });
});

describe('a first schedule published while its doctor is erased', () => {
  const start = '2030-01-10T10:00:00Z';
  const schedule = `doctorSchedule-${doctor.id}`;

  // Checked that the doctor is not erased, it reaches its append; the erasure then runs to the end.
  it.each([
    ['their own token', doctor],
    ["an admin's", admin],
  ])('with %s, is refused once it appends, and leaves the erased doctor unbookable', async (_, publisher) => {
    const store = new InterruptibleStore();
    const clock = fakeClock(start);
    const vault = memoryVault();
    const side = createTestSide(store, clock, 15, vault);
    // One process runs commands on a stream one at a time: the erasure, landing while the
    // publishing's append is held back, runs in another process on the same events.
    const otherProcess = createTestSide(store, clock, 15, vault);
    await registerUser(side, doctor, 'Dr Ada');
    let resume = () => {};
    const reached = store.pause((streamId) => streamId === schedule, new Promise<void>((resolve) => (resume = resolve)));
    const publishing = setSchedule(side, doctor.id, everyMorning, as(publisher));
    await reached;
    await eraseSubject({ side: otherProcess, vault: memoryVault(), outsideTheLog: { eraseSubject: async () => undefined } }, doctor.id, as(admin));
    resume();

    await expect(publishing).rejects.toMatchObject({ code: expect.stringMatching(/^(schedule-withdrawn|unknown-doctor)$/) });
    expect(await eventTypes(store, schedule)).toEqual(['ScheduleWithdrawn']);
    await expect(bookAppointment(side, { doctorId: doctor.id, start: '2030-01-14T09:00:00Z', reason: 'checkup' }, as(patient))).rejects.toMatchObject({ code: 'not-found' });
  });
});
