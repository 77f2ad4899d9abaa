import { randomUUID } from 'node:crypto';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import type { RecordedEvent } from '../../src/application/ports/event-store.js';
import { comparePositions, parsePosition } from '../../src/application/ports/position.js';
import { bookingStreamId } from '../../src/domain/booking/booking.decider.js';
import { listingCalendarStreamId } from '../../src/domain/listing-calendar/listing-calendar.decider.js';
import { listingStreamId } from '../../src/domain/listing/listing.decider.js';
import { doctorScheduleStreamId } from '../../src/domain/doctor-schedule/doctor-schedule.decider.js';
import { patientAgendaStreamId } from '../../src/domain/patient-agenda/patient-agenda.decider.js';
import type { Actor } from '../../src/domain/shared/actor.js';
import { PgEventStore } from '../../src/infrastructure/pg-event-store/pg-event-store.js';
import { everyMorning, listingInput } from '../support/command-side.js';
import { postJson, startApi, startBackend, type TestApi, type TestBackend } from './support/command-api.fixture.js';
import { startReadSide, type ReadSide } from './support/read-side.fixture.js';

const day = 86_400_000;
const person = (roles: Actor['roles']): Actor => ({ id: randomUUID(), roles });

type Answer = { status: number; headers: Headers; body: Record<string, unknown> };

/** The PostgreSQL event store, whose next append to a chosen stream can be held back. */
class PausableStore extends PgEventStore {
  private pauseNext: { readonly on: (streamId: string) => boolean; readonly until: Promise<unknown>; readonly reached: () => void } | undefined;

  /** Resolves once an append has reached the pause; it goes on when `until` does. */
  pause(on: (streamId: string) => boolean, until: Promise<unknown>): Promise<void> {
    return new Promise((reached) => (this.pauseNext = { on, until, reached }));
  }

  override async appendToStream(...args: Parameters<PgEventStore['appendToStream']>): ReturnType<PgEventStore['appendToStream']> {
    const pause = this.pauseNext;
    if (pause?.on(args[0])) {
      this.pauseNext = undefined;
      pause.reached();
      await pause.until;
    }
    return super.appendToStream(...args);
  }
}

/**
 * API.md, "Read-your-writes": a command refused after it appended steps and their undoing (a
 * slot taken, then given back) answers its 409 with the `Event-Position` of its last append, so
 * that a read waiting on it sees the undoing, not the step.
 */
describe('Event-Position on a refusal that appended compensations', () => {
  let backend: TestBackend;
  let store: PausableStore;
  let api: TestApi;
  /**
   * Another command process on the same database. One process runs commands on a stream one at a
   * time, so a request that lands while one of `api`'s appends is held back is served elsewhere.
   */
  let otherApi: TestApi;
  let readSide: ReadSide;
  const doctor = person(['DOCTOR']);
  const otherDoctor = person(['DOCTOR']);

  const bearer = (actor: Actor) => ({ authorization: `Bearer ${api.app.issueAccessToken(actor).accessToken}` });
  const post = (path: string, body: unknown, actor: Actor, headers: Record<string, string> = {}): Promise<Answer> =>
    postJson(`${api.url}${path}`, body, { ...bearer(actor), ...headers });
  const dayAfter = (days: number) => new Date(api.clock.now().getTime() + days * day).toISOString().slice(0, 10);
  const book = (doctorId: string, start: string, patient: Actor, headers: Record<string, string> = {}) =>
    post('/v1/appointments', { doctorId, start, reason: 'check-up' }, patient, headers);

  /** A doctor's free slots on `date` (UTC times) as the query API shows them once it has read up to `position`. */
  async function freeSlots(doctorId: string, date: string, position: string): Promise<string[]> {
    const response = await readSide.queryApi.inject({
      url: `/v1/doctors/${doctorId}/slots?from=${date}T00:00:00Z&to=${date}T23:59:59Z&limit=100`,
      headers: { 'consistency-position': position },
    });
    expect(response.statusCode).toBe(200);
    return response.json<{ items: { start: string }[] }>().items.map((slot) => new Date(slot.start).toISOString().slice(11, 16));
  }

  function expectPatientOverlap(answer: Answer): void {
    expect(answer.status).toBe(409);
    expect(answer.headers.get('content-type')).toContain('application/problem+json');
    expect(answer.body.type).toMatch(/\/problems\/patient-overlap$/);
  }

  // Counted in the table, not through readAll (see command-routes.test.ts).
  async function eventCount(): Promise<number> {
    const { rows } = await backend.pool.query<{ count: string }>('SELECT count(*) FROM events');
    return Number(rows[0]?.count);
  }

  /** The refusal's `Event-Position`, in the form success answers use. */
  function positionOf(answer: Answer): string {
    const position = answer.headers.get('event-position');
    expect(position, 'Event-Position').not.toBeNull();
    expect(position).toMatch(/^\d+\.\d+$/);
    return String(position);
  }

  beforeAll(async () => {
    backend = await startBackend();
    store = new PausableStore(backend.pool);
    api = await startApi({ ...backend, eventStore: store });
    otherApi = await startApi(backend, { clock: api.clock });
    readSide = await startReadSide(backend, api);
    for (const each of [doctor, otherDoctor]) {
      const response = await fetch(`${api.url}/v1/doctors/${each.id}/schedule`, {
        method: 'PUT',
        headers: { 'content-type': 'application/json', ...bearer(each) },
        body: JSON.stringify(everyMorning),
      });
      expect(response.status).toBe(200);
    }
  });
  afterAll(async () => {
    await readSide.close();
    await api.close();
    await otherApi.close();
    await store.close();
    await backend.close();
  });

  it("given another patient took the new slot while the patient's time moved, when the reschedule is refused, then its 409 carries the position of the time moved back", async () => {
    const patient = person(['PATIENT']);
    const date = dayAfter(3);
    const booked = await book(doctor.id, `${date}T09:00:00Z`, patient);
    expect(booked.status).toBe(201);
    let resume = () => {};
    // The reschedule has moved the patient's time; its HoldSlotForMove waits while another patient books the doctor at the new time.
    const paused = store.pause((streamId) => streamId === doctorScheduleStreamId(doctor.id), new Promise<void>((resolve) => (resume = resolve)));
    const rescheduling = post(`/v1/appointments/${String(booked.body.id)}/reschedule`, { start: `${date}T10:00:00Z` }, patient);
    await paused;
    const other = await postJson(`${otherApi.url}/v1/appointments`, { doctorId: doctor.id, start: `${date}T10:00:00Z`, reason: 'check-up' }, bearer(person(['PATIENT'])));
    expect(other.status).toBe(201);
    resume();

    const refused = await rescheduling;

    expect(refused.status).toBe(409);
    expect(refused.body.type).toMatch(/\/problems\/slot-taken$/);
    const agenda = await backend.eventStore.readStream(patientAgendaStreamId(patient.id));
    const events: RecordedEvent[] = [];
    if (agenda.status === 'found') for await (const event of agenda.events) events.push(event);
    expect(events.map((event) => event.type)).toEqual(['TimeReserved', 'TimeMoved', 'TimeMoved']);
    const movedBack = events.at(-1)?.position;
    const answered = parsePosition(positionOf(refused));
    expect(movedBack && answered && comparePositions(answered, movedBack)).toBe(0);
  });

  it('given the appointment is cancelled elsewhere while the reschedule holds the new slot, when the reschedule is refused on its retry, then its 409 still carries the position of what its first try appended', async () => {
    const patient = person(['PATIENT']);
    const date = dayAfter(4);
    const booked = await book(doctor.id, `${date}T09:00:00Z`, patient);
    expect(booked.status).toBe(201);
    const id = String(booked.body.id);
    let resume = () => {};
    // The reschedule has moved the patient's time and held 10:00; its own append waits while the
    // appointment is cancelled elsewhere. The append, pinned, is then refused, and the retry,
    // finding the appointment cancelled, is refused before it appends anything.
    const paused = store.pause((streamId) => streamId === `appointment-${id}`, new Promise<void>((resolve) => (resume = resolve)));
    const rescheduling = post(`/v1/appointments/${id}/reschedule`, { start: `${date}T10:00:00Z` }, patient);
    await paused;
    const cancelled = await postJson(`${otherApi.url}/v1/appointments/${id}/cancel`, { reason: 'feeling better' }, bearer(patient));
    expect(cancelled.status).toBe(200);
    resume();

    const refused = await rescheduling;

    expect(refused.status).toBe(409);
    const schedule = await backend.eventStore.readStream(doctorScheduleStreamId(doctor.id));
    const events: RecordedEvent[] = [];
    if (schedule.status === 'found') for await (const event of schedule.events) events.push(event);
    const held = events.filter((event) => event.type === 'SlotMoveHeld' && event.data.appointmentId === id).at(-1)?.position;
    const answered = parsePosition(positionOf(refused));
    expect(held && answered && comparePositions(answered, held)).toBeGreaterThanOrEqual(0);
  });

  it('given the patient is busy then with another doctor, when the booking is refused before it takes the slot, then its 409 has no Event-Position: it appended nothing', async () => {
    const patient = person(['PATIENT']);
    const date = dayAfter(6);
    expect((await book(doctor.id, `${date}T11:00:00Z`, patient)).status).toBe(201);
    const events = await eventCount();

    const refused = await book(otherDoctor.id, `${date}T11:00:00Z`, patient);

    expectPatientOverlap(refused);
    expect(refused.headers.get('event-position')).toBeNull();
    expect(await eventCount()).toBe(events);
  });

  it('given the patient became busy then with another doctor after the booking read their agenda, when the booking takes the slot and is refused, then its 409 carries the position of the slot given back, replayed with it, and a read at it shows the slot free', async () => {
    const patient = person(['PATIENT']);
    const date = dayAfter(4);
    const key = { 'idempotency-key': randomUUID() };
    let resume = () => {};
    // The booking has found the patient free; its slot waits while the patient books the same hour with another doctor.
    const paused = store.pause((streamId) => streamId === doctorScheduleStreamId(otherDoctor.id), new Promise<void>((resolve) => (resume = resolve)));
    const booking = book(otherDoctor.id, `${date}T11:00:00Z`, patient, key);
    await paused;
    const elsewhere = await postJson(`${otherApi.url}/v1/appointments`, { doctorId: doctor.id, start: `${date}T11:00:00Z`, reason: 'check-up' }, bearer(patient));
    expect(elsewhere.status).toBe(201);
    resume();

    const refused = await booking;

    expectPatientOverlap(refused);
    expect(await freeSlots(otherDoctor.id, date, positionOf(refused))).toEqual(['09:00', '09:30', '10:00', '10:30', '11:00', '11:30']);
    const replayed = await book(otherDoctor.id, `${date}T11:00:00Z`, patient, key);
    expect(replayed.headers.get('idempotent-replayed')).toBe('true');
    expect(replayed.headers.get('event-position')).toBe(positionOf(refused));
  });

  it('given the patient is busy at the new time before anything moves, when the reschedule is refused, then its 409 has no Event-Position: it appended nothing', async () => {
    const patient = person(['PATIENT']);
    const date = dayAfter(5);
    const booked = await book(doctor.id, `${date}T09:00:00Z`, patient);
    expect((await book(otherDoctor.id, `${date}T10:00:00Z`, patient)).status).toBe(201);

    const refused = await post(`/v1/appointments/${String(booked.body.id)}/reschedule`, { start: `${date}T10:00:00Z` }, patient);

    expectPatientOverlap(refused);
    expect(refused.headers.get('event-position')).toBeNull();
  });

  it('given the hold lapsed before the booking was recorded, when the booking is refused, then its 409 carries the position of the booking expired, and the consumer reads it expired there', async () => {
    const owner = person(['OWNER']);
    const consumer = person(['CONSUMER']);
    const listingId = String((await post('/v1/listings', listingInput, owner)).body.id);
    let resume = () => {};
    // The dates are held; the booking's own append waits until the hold has run out.
    const paused = store.pause((streamId) => streamId.startsWith(bookingStreamId('')), new Promise<void>((resolve) => (resume = resolve)));
    const requesting = post('/v1/bookings', { listingId, startDate: dayAfter(10), endDate: dayAfter(12) }, consumer);
    await paused;
    api.clock.advance(16 * 60_000);
    resume();

    const refused = await requesting;

    expect(refused.status).toBe(409);
    expect(refused.body.type).toMatch(/\/problems\/hold-expired$/);
    const mine = await readSide.queryApi.inject({ url: '/v1/bookings/me', headers: { ...bearer(consumer), 'consistency-position': positionOf(refused) } });
    expect(mine.json<{ items: { status: string }[] }>().items.map((booking) => booking.status)).toEqual(['expired']);
  });

  it('given another change of the listing lands while its deactivation closed the calendar, when the deactivation is refused, then its 412 carries the position of the calendar reopened', async () => {
    const owner = person(['OWNER']);
    const listingId = String((await post('/v1/listings', listingInput, owner)).body.id);
    let resume = () => {};
    const paused = store.pause((streamId) => streamId === listingStreamId(listingId), new Promise<void>((resolve) => (resume = resolve)));
    const deactivating = post(`/v1/listings/${listingId}/deactivate`, {}, owner, { 'if-match': '"0"' });
    await paused;
    expect((await postJson(`${otherApi.url}/v1/listings/${listingId}/update`, { title: 'Renamed' }, bearer(owner))).status).toBe(200);
    resume();

    const refused = await deactivating;

    expect(refused.status).toBe(412);
    const calendar = await backend.eventStore.readStream(listingCalendarStreamId(listingId));
    const events: RecordedEvent[] = [];
    if (calendar.status === 'found') for await (const event of calendar.events) events.push(event);
    expect(events.map((event) => event.type)).toEqual(['CalendarClosed', 'CalendarReopened']);
    const reopened = events.at(-1)?.position;
    const answered = parsePosition(positionOf(refused));
    expect(reopened && answered && comparePositions(answered, reopened)).toBe(0);
  });
});
