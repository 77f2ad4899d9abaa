import { randomUUID } from 'node:crypto';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { appointmentStreamId } from '../../src/domain/appointment/appointment.decider.js';
import { bookingStreamId } from '../../src/domain/booking/booking.decider.js';
import { doctorScheduleStreamId } from '../../src/domain/doctor-schedule/doctor-schedule.decider.js';
import { listingCalendarStreamId } from '../../src/domain/listing-calendar/listing-calendar.decider.js';
import { listingStreamId } from '../../src/domain/listing/listing.decider.js';
import { patientAgendaStreamId } from '../../src/domain/patient-agenda/patient-agenda.decider.js';
import type { Actor } from '../../src/domain/shared/actor.js';
import { everyMorning, listingInput } from '../support/command-side.js';
import { answerLost, postJson, startApi, startBackend, type TestApi, type TestBackend } from './support/command-api.fixture.js';
import { startReadSide, type ReadSide } from './support/read-side.fixture.js';

const day = 86_400_000;
const person = (roles: Actor['roles']): Actor => ({ id: randomUUID(), roles });
const owner = person(['OWNER']);
const consumer = person(['CONSUMER']);
const patient = person(['PATIENT']);

type Answer = { status: number; headers: Headers; body: Record<string, unknown> };

/**
 * API.md, "Optimistic concurrency": a command on an existing aggregate that sends
 * `If-Match: "<version>"` is refused with 412 when the aggregate is at another version, and
 * nothing is appended; the current version is accepted.
 */
describe('If-Match on commands over HTTP', () => {
  let backend: TestBackend;
  let api: TestApi;
  let readSide: ReadSide;

  const bearer = (actor: Actor) => ({ authorization: `Bearer ${api.app.issueAccessToken(actor).accessToken}` });
  const ifMatch = (version: number) => ({ 'if-match': `"${version}"` });
  const post = (path: string, body: unknown, actor: Actor, headers: Record<string, string> = {}): Promise<Answer> =>
    postJson(`${api.url}${path}`, body, { ...bearer(actor), ...headers });
  async function put(path: string, body: unknown, actor: Actor, headers: Record<string, string> = {}): Promise<Answer> {
    const response = await fetch(`${api.url}${path}`, {
      method: 'PUT',
      headers: { 'content-type': 'application/json', ...bearer(actor), ...headers },
      body: JSON.stringify(body),
    });
    const text = await response.text();
    return { status: response.status, headers: response.headers, body: text === '' ? {} : JSON.parse(text) };
  }

  // Counted in the table, not through readAll (see command-routes.test.ts).
  async function eventCount(): Promise<number> {
    const { rows } = await backend.pool.query<{ count: string }>('SELECT count(*) FROM events');
    return Number(rows[0]?.count);
  }
  /** The stream's version: its last revision, −1 for none. */
  async function versionOf(streamId: string): Promise<number> {
    const { rows } = await backend.pool.query<{ count: string }>('SELECT count(*) FROM events WHERE stream_id = $1', [streamId]);
    return Number(rows[0]?.count) - 1;
  }
  /** Everything a refused command must leave as it was: the whole log, and the streams it would touch. */
  async function snapshot(streamIds: string[]) {
    return { events: await eventCount(), versions: await Promise.all(streamIds.map(versionOf)) };
  }

  function expectVersionMismatch(response: Answer, expected: number, actual: number): void {
    expect(response.status).toBe(412);
    expect(response.headers.get('content-type')).toContain('application/problem+json');
    expect(response.body).toMatchObject({ status: 412, title: 'Version mismatch', expectedVersion: expected, actualVersion: actual });
    expect(response.body.type).toMatch(/\/problems\/version-mismatch$/);
    expect(response.headers.get('etag')).toBeNull();
  }
  function expectAccepted(response: Answer, version: number): void {
    expect(response.status).toBe(200);
    expect(response.body.version).toBe(version);
    expect(response.headers.get('etag')).toBe(`"${version}"`);
  }

  const dayAfter = (days: number) => new Date(api.clock.now().getTime() + days * day).toISOString().slice(0, 10);

  beforeAll(async () => {
    backend = await startBackend();
    api = await startApi(backend);
    readSide = await startReadSide(backend, api);
  });
  afterAll(async () => {
    await readSide.close();
    await api.close();
    await backend.close();
  });

  /**
   * A create has no resource yet whose version a client could have seen: an If-Match on it is
   * refused as the request's mistake (400 naming the header), before its Idempotency-Key is claimed.
   */
  describe('create routes', () => {
    const doctor = person(['DOCTOR']);
    let listingId: string;
    /** Each create route with a request it accepts, and who may send it; fresh values each call. */
    let creates: () => { path: string; body: Record<string, unknown>; actor: Actor }[];

    beforeAll(async () => {
      listingId = String((await post('/v1/listings', listingInput, owner)).body.id);
      expect((await put(`/v1/doctors/${doctor.id}/schedule`, everyMorning, doctor)).status).toBe(200);
      let nextDay = 40;
      creates = () => {
        nextDay += 2;
        return [
          { path: '/v1/listings', body: listingInput, actor: owner },
          { path: '/v1/bookings', body: { listingId, startDate: dayAfter(nextDay), endDate: dayAfter(nextDay + 1) }, actor: consumer },
          { path: '/v1/appointments', body: { doctorId: doctor.id, start: `${dayAfter(nextDay)}T09:00:00Z`, reason: 'check-up' }, actor: patient },
        ];
      };
    });

    function expectIfMatchRefused(response: Answer, path: string): void {
      expect(response.status, path).toBe(400);
      expect(response.headers.get('content-type'), path).toContain('application/problem+json');
      expect(response.body.errors, path).toEqual([{ path: 'headers.if-match', message: expect.stringMatching(/existing resource/) }]);
    }

    it('given a well-formed If-Match, when a create is sent, then it is refused with 400 naming if-match, and nothing is appended', async () => {
      const review = { path: `/v1/listings/${listingId}/reviews`, body: { bookingId: randomUUID(), rating: 5, comment: 'great' }, actor: consumer };
      const before = await eventCount();

      for (const { path, body, actor } of [...creates(), review]) expectIfMatchRefused(await post(path, body, actor, ifMatch(3)), path);

      expect(await eventCount()).toBe(before);
    });

    it('given a well-formed If-Match, when someone signs up, then it is refused with 400 naming if-match, and nobody is signed up', async () => {
      const before = await eventCount();
      const signup = { email: `if-match-${randomUUID()}@example.com`, password: 'a long enough password', name: 'Ann', roles: ['CONSUMER'] };

      expectIfMatchRefused(await postJson(`${api.url}/v1/auth/signup`, signup, ifMatch(3)), '/v1/auth/signup');

      expect(await eventCount()).toBe(before);
    });

    it('given a create refused for a malformed If-Match under a key, when it is sent again under that key without the header, then it runs (201), the key unspent', async () => {
      for (const { path, body, actor } of creates()) {
        const key = { 'idempotency-key': randomUUID() };
        expectIfMatchRefused(await post(path, body, actor, { ...key, 'if-match': 'garbage' }), path);

        const retried = await post(path, body, actor, key);

        expect(retried.status, path).toBe(201);
        expect(retried.headers.get('idempotent-replayed'), path).toBeNull();
      }
    });
  });

  describe('bookings', () => {
    let listingId: string;
    beforeAll(async () => {
      listingId = String((await post('/v1/listings', listingInput, owner)).body.id);
    });

    /** A booking of two nights from `startDate`, paid (version 1), and confirmed too (version 2) if asked. */
    async function paidBooking(startDays: number, confirmed: boolean): Promise<string> {
      const booked = await post('/v1/bookings', { listingId, startDate: dayAfter(startDays), endDate: dayAfter(startDays + 2) }, consumer);
      expect(booked.status).toBe(201);
      const bookingId = String(booked.body.id);
      const context = { actor: { id: 'system:test', roles: [] }, requestId: 'r', correlationId: 'c', causationId: 'r' };
      const { booking } = api.side.handlers;
      await booking.handle(bookingStreamId(bookingId), { type: 'MarkBookingPaid', data: { bookingId, paymentId: randomUUID(), amount: 2 * 12_000, currency: 'EUR' } }, { commandId: randomUUID(), context });
      if (confirmed) await booking.handle(bookingStreamId(bookingId), { type: 'ConfirmBooking', data: { bookingId } }, { commandId: randomUUID(), context });
      expect(await versionOf(bookingStreamId(bookingId))).toBe(confirmed ? 2 : 1);
      return bookingId;
    }

    it('POST /v1/bookings/{id}/cancel: 412 on a stale or unknown version, appending nothing; 200 on the current one', async () => {
      const bookingId = await paidBooking(20, false);
      const path = `/v1/bookings/${bookingId}/cancel`;
      const touched = [bookingStreamId(bookingId), listingCalendarStreamId(listingId)];
      const before = await snapshot(touched);

      expectVersionMismatch(await post(path, { reason: 'plans changed' }, consumer, ifMatch(0)), 0, 1);
      expectVersionMismatch(await post(path, { reason: 'plans changed' }, consumer, ifMatch(2)), 2, 1);
      expect(await snapshot(touched)).toEqual(before);

      const accepted = await post(path, { reason: 'plans changed' }, consumer, ifMatch(1));
      expectAccepted(accepted, 2);
      expect(await versionOf(bookingStreamId(bookingId))).toBe(2);
      // The dates went back to the calendar, unpinned.
      expect(await versionOf(listingCalendarStreamId(listingId))).toBeGreaterThan(before.versions[1] ?? Number.NaN);
    });

    it('POST /v1/bookings/{id}/complete: 412 on a stale version after the stay, appending nothing; 200 on the current one', async () => {
      const bookingId = await paidBooking(30, true);
      api.clock.advance(33 * day);
      const path = `/v1/bookings/${bookingId}/complete`;
      const before = await snapshot([bookingStreamId(bookingId)]);

      expectVersionMismatch(await post(path, {}, owner, ifMatch(1)), 1, 2);
      expect(await snapshot([bookingStreamId(bookingId)])).toEqual(before);

      expectAccepted(await post(path, {}, owner, ifMatch(2)), 3);
      expect(await versionOf(bookingStreamId(bookingId))).toBe(3);
    });
  });

  describe('listings', () => {
    it('answers a listing that does not exist, or that the caller may not change, as such (404, 403), not 412, whatever If-Match says', async () => {
      const id = String((await post('/v1/listings', listingInput, owner)).body.id);
      const otherOwner = person(['OWNER']);
      const before = await snapshot([listingStreamId(id), listingCalendarStreamId(id)]);

      expect((await post(`/v1/listings/${randomUUID()}/update`, { title: 'Mine' }, owner, ifMatch(0))).status).toBe(404);
      for (const path of [`/v1/listings/${id}/update`, `/v1/listings/${id}/deactivate`]) {
        const refused = await post(path, path.endsWith('update') ? { title: 'Mine now' } : {}, otherOwner, ifMatch(3));
        expect(refused.status, path).toBe(403);
        expect(refused.body, path).not.toHaveProperty('actualVersion');
      }
      expect(await snapshot([listingStreamId(id), listingCalendarStreamId(id)])).toEqual(before);
      // Its owner with a stale version still hears 412.
      expectVersionMismatch(await post(`/v1/listings/${id}/update`, { title: 'Renamed' }, owner, ifMatch(3)), 3, 0);
    });

    it('POST /v1/listings/{id}/deactivate retried with its If-Match after it went through (its answer lost): the original answer, not 412', async () => {
      const id = String((await post('/v1/listings', listingInput, owner)).body.id);
      const key = randomUUID();
      const deactivate = () => post(`/v1/listings/${id}/deactivate`, {}, owner, { ...ifMatch(0), 'idempotency-key': key });
      const first = await deactivate();
      expectAccepted(first, 1);
      const after = await snapshot([listingStreamId(id), listingCalendarStreamId(id)]);

      await answerLost(backend, key);
      const retry = await deactivate();

      expectAccepted(retry, 1);
      expect(retry.headers.get('event-position')).toBe(first.headers.get('event-position'));
      expect(await snapshot([listingStreamId(id), listingCalendarStreamId(id)])).toEqual(after);
    });

    it('POST /v1/listings/{id}/reactivate retried after it went through (its answer lost) and a booking since: the original answer', async () => {
      const id = String((await post('/v1/listings', listingInput, owner)).body.id);
      expect((await post(`/v1/listings/${id}/deactivate`, {}, owner)).status).toBe(200);
      const key = randomUUID();
      const reactivate = () => post(`/v1/listings/${id}/reactivate`, {}, owner, { 'idempotency-key': key });
      const first = await reactivate();
      expect(first.status).toBe(200);
      // The calendar moves on after the reopen.
      expect((await post('/v1/bookings', { listingId: id, startDate: dayAfter(300), endDate: dayAfter(302) }, consumer)).status).toBe(201);

      await answerLost(backend, key);
      const retry = await reactivate();

      expect(retry.status).toBe(200);
      expect(retry.headers.get('event-position')).toBe(first.headers.get('event-position'));
    });
  });

  describe('doctor schedules and appointments', () => {
    const doctor = person(['DOCTOR']);
    const schedule = doctorScheduleStreamId(doctor.id);
    const agenda = patientAgendaStreamId(patient.id);
    /** The last position a command answered, for reading the query API at least that far. */
    let position = '';

    beforeAll(async () => {
      expect((await put(`/v1/doctors/${doctor.id}/schedule`, everyMorning, doctor)).status).toBe(200);
    });

    const remember = (response: Answer): Answer => {
      position = response.headers.get('event-position') ?? position;
      return response;
    };
    /** An appointment on `date` at `time` (UTC), moved once to `movedTo` so that its version is 1. */
    async function movedAppointment(date: string, time: string, movedTo: string): Promise<string> {
      const booked = remember(await post('/v1/appointments', { doctorId: doctor.id, start: `${date}T${time}:00Z`, reason: 'check-up' }, patient));
      expect(booked.status).toBe(201);
      const id = String(booked.body.id);
      expectAccepted(remember(await post(`/v1/appointments/${id}/reschedule`, { start: `${date}T${movedTo}:00Z` }, patient)), 1);
      return id;
    }
    /** The doctor's free slots on `date` as the query API shows them once it has read up to `position`. */
    async function freeSlots(date: string): Promise<string[]> {
      const response = await readSide.queryApi.inject({
        url: `/v1/doctors/${doctor.id}/slots?from=${date}T00:00:00Z&to=${date}T23:59:59Z&limit=100`,
        headers: { 'consistency-position': position },
      });
      expect(response.statusCode).toBe(200);
      return response.json<{ items: { start: string }[] }>().items.map((slot) => new Date(slot.start).toISOString().slice(11, 16));
    }

    it('POST /v1/appointments/{id}/reschedule: 412 on a stale version leaves the appointment, the slot and the agenda where they were', async () => {
      const date = dayAfter(3);
      const id = await movedAppointment(date, '09:00', '09:30');
      const touched = [appointmentStreamId(id), schedule, agenda];
      const before = await snapshot(touched);
      expect(await freeSlots(date)).toEqual(['09:00', '10:00', '10:30', '11:00', '11:30']);

      const stale = await post(`/v1/appointments/${id}/reschedule`, { start: `${date}T10:00:00Z` }, patient, ifMatch(0));
      expectVersionMismatch(stale, 0, 1);
      expect(await snapshot(touched)).toEqual(before);
      expect(await freeSlots(date)).toEqual(['09:00', '10:00', '10:30', '11:00', '11:30']);

      const accepted = remember(await post(`/v1/appointments/${id}/reschedule`, { start: `${date}T10:00:00Z` }, patient, ifMatch(1)));
      expectAccepted(accepted, 2);
      expect(await freeSlots(date)).toEqual(['09:00', '09:30', '10:30', '11:00', '11:30']);
    });

    it('POST /v1/appointments/{id}/reschedule retried with its If-Match after it went through (its answer lost): the original answer, nothing moved again', async () => {
      const date = dayAfter(7);
      const id = await movedAppointment(date, '09:00', '09:30');
      const key = randomUUID();
      const move = () => post(`/v1/appointments/${id}/reschedule`, { start: `${date}T11:00:00Z` }, patient, { ...ifMatch(1), 'idempotency-key': key });
      const first = remember(await move());
      expectAccepted(first, 2);
      const touched = [appointmentStreamId(id), schedule, agenda];
      const after = await snapshot(touched);

      await answerLost(backend, key);
      const retry = await move();

      expectAccepted(retry, 2);
      expect(retry.headers.get('event-position')).toBe(first.headers.get('event-position'));
      expect(await snapshot(touched)).toEqual(after);
    });

    it('POST /v1/appointments/{id}/cancel: 412 on a stale version keeps the appointment and its slot; 200 on the current one frees it', async () => {
      const date = dayAfter(4);
      const id = await movedAppointment(date, '09:00', '11:00');
      const touched = [appointmentStreamId(id), schedule, agenda];
      const before = await snapshot(touched);

      expectVersionMismatch(await post(`/v1/appointments/${id}/cancel`, { reason: 'feeling better' }, patient, ifMatch(0)), 0, 1);
      expect(await snapshot(touched)).toEqual(before);
      expect(await freeSlots(date)).not.toContain('11:00');

      expectAccepted(remember(await post(`/v1/appointments/${id}/cancel`, { reason: 'feeling better' }, patient, ifMatch(1))), 2);
      expect(await freeSlots(date)).toContain('11:00');
    });

    it('POST /v1/appointments/{id}/complete: 412 on a stale version, appending nothing; 200 on the current one', async () => {
      const id = await movedAppointment(dayAfter(5), '09:00', '09:30');
      api.clock.advance(6 * day);
      const before = await snapshot([appointmentStreamId(id)]);

      expectVersionMismatch(await post(`/v1/appointments/${id}/complete`, { notes: 'all fine' }, doctor, ifMatch(0)), 0, 1);
      expect(await snapshot([appointmentStreamId(id)])).toEqual(before);

      expectAccepted(await post(`/v1/appointments/${id}/complete`, { notes: 'all fine' }, doctor, ifMatch(1)), 2);
    });

    it('POST /v1/appointments/{id}/no-show: 412 on a stale version, appending nothing; 200 on the current one', async () => {
      const id = await movedAppointment(dayAfter(5), '10:00', '10:30');
      api.clock.advance(6 * day);
      const before = await snapshot([appointmentStreamId(id)]);

      expectVersionMismatch(await post(`/v1/appointments/${id}/no-show`, {}, doctor, ifMatch(0)), 0, 1);
      expect(await snapshot([appointmentStreamId(id)])).toEqual(before);

      expectAccepted(await post(`/v1/appointments/${id}/no-show`, {}, doctor, ifMatch(1)), 2);
    });

    it('PUT /v1/doctors/{id}/schedule: 412 on a stale version keeps the schedule; 200 on the current one', async () => {
      const other = person(['DOCTOR']);
      const path = `/v1/doctors/${other.id}/schedule`;
      expectAccepted(await put(path, everyMorning, other), 0);
      expectAccepted(await put(path, { ...everyMorning, daysOff: [dayAfter(10)] }, other), 1);
      const before = await snapshot([doctorScheduleStreamId(other.id)]);

      const stale = await put(path, { ...everyMorning, slotMinutes: 15 }, other, ifMatch(0));
      expectVersionMismatch(stale, 0, 1);
      expect(await snapshot([doctorScheduleStreamId(other.id)])).toEqual(before);

      const accepted = remember(await put(path, { ...everyMorning, slotMinutes: 15 }, other, ifMatch(1)));
      expectAccepted(accepted, 2);
      const slots = await readSide.queryApi.inject({
        url: `/v1/doctors/${other.id}/slots?from=${dayAfter(2)}T00:00:00Z&to=${dayAfter(2)}T23:59:59Z&limit=100`,
        headers: { 'consistency-position': position },
      });
      expect(slots.json<{ items: unknown[] }>().items).toHaveLength(12);
    });
  });
});
