import { randomUUID } from 'node:crypto';
import { fc } from '@fast-check/vitest';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import type { Actor } from '../../src/domain/shared/actor.js';
import { everyMorning, listingInput } from '../support/command-side.js';
import { postJson, startApi, startBackend, type TestApi, type TestBackend } from './support/command-api.fixture.js';

const person = (roles: Actor['roles']): Actor => ({ id: randomUUID(), roles });
const owner = person(['OWNER']);
const otherOwner = person(['OWNER']);
const consumer = person(['CONSUMER']);
const otherConsumer = person(['CONSUMER']);
const doctor = person(['DOCTOR']);
const patient = person(['PATIENT']);
const otherPatient = person(['PATIENT']);

describe('command routes over HTTP', () => {
  let backend: TestBackend;
  let api: TestApi;
  const bearer = (actor: Actor) => ({ authorization: `Bearer ${api.app.issueAccessToken(actor).accessToken}` });
  const post = (path: string, body: unknown, actor?: Actor, headers: Record<string, string> = {}) =>
    postJson(`${api.url}${path}`, body, { ...(actor ? bearer(actor) : {}), ...headers });
  async function put(path: string, body: unknown, actor: Actor) {
    const response = await fetch(`${api.url}${path}`, { method: 'PUT', headers: { 'content-type': 'application/json', ...bearer(actor) }, body: JSON.stringify(body) });
    const text = await response.text();
    return { status: response.status, body: text === '' ? {} : JSON.parse(text) };
  }
  async function eventCount(): Promise<number> {
    let count = 0;
    for await (const _ of backend.eventStore.readAll()) count++;
    return count;
  }

  beforeAll(async () => {
    backend = await startBackend();
    api = await startApi(backend);
  });
  afterAll(async () => {
    await api.close();
    await backend.close();
  });

  describe('listings', () => {
    it('creates a listing: 201 with the command result, ETag and Event-Position', async () => {
      const response = await post('/v1/listings', listingInput, owner);
      expect(response.status).toBe(201);
      expect(response.body).toMatchObject({ streamId: `listing-${String(response.body.id)}`, version: 0 });
      expect(response.headers.get('etag')).toBe('"0"');
      expect(response.headers.get('event-position')).toBe(response.body.position);
    });

    it('names the field that is wrong, and appends nothing', async () => {
      const before = await eventCount();
      const response = await post('/v1/listings', { ...listingInput, pricePerDay: -5 }, owner);
      expect(response.status).toBe(400);
      expect(response.headers.get('content-type')).toContain('application/problem+json');
      expect(response.body.errors).toEqual([expect.objectContaining({ path: expect.stringContaining('pricePerDay') })]);
      expect(await eventCount()).toBe(before);
    });

    it('answers 401 without a token and 403 for a consumer', async () => {
      expect((await post('/v1/listings', listingInput)).status).toBe(401);
      expect((await post('/v1/listings', listingInput, consumer)).status).toBe(403);
    });

    it("refuses to change another owner's listing (403) and a stale If-Match (412)", async () => {
      const created = await post('/v1/listings', listingInput, owner);
      const id = String(created.body.id);
      expect((await post(`/v1/listings/${id}/update`, { pricePerDay: 1 }, otherOwner)).status).toBe(403);
      expect((await post(`/v1/listings/${id}/update`, { pricePerDay: 9_000 }, owner, { 'if-match': '"0"' })).status).toBe(200);
      const stale = await post(`/v1/listings/${id}/update`, { pricePerDay: 9_500 }, owner, { 'if-match': '"0"' });
      expect(stale.status).toBe(412);
      expect(stale.body.type).toMatch(/version-mismatch$/);
    });

    it('answers 404 for a listing that does not exist', async () => {
      expect((await post(`/v1/listings/${randomUUID()}/deactivate`, {}, owner)).status).toBe(404);
    });
  });

  describe('bookings', () => {
    let listingId: string;
    beforeAll(async () => {
      listingId = String((await post('/v1/listings', listingInput, owner)).body.id);
    });

    it('holds the dates for the first consumer; the overlapping request gets 409 dates-unavailable', async () => {
      const first = await post('/v1/bookings', { listingId, startDate: '2030-04-01', endDate: '2030-04-05' }, consumer);
      expect(first.status).toBe(201);
      const second = await post('/v1/bookings', { listingId, startDate: '2030-04-03', endDate: '2030-04-06' }, otherConsumer);
      expect(second.status).toBe(409);
      expect(second.body.type).toMatch(/\/problems\/dates-unavailable$/);
    });

    it("hides a booking from other consumers (404) and lets its consumer cancel it", async () => {
      const booked = await post('/v1/bookings', { listingId, startDate: '2030-05-01', endDate: '2030-05-03' }, consumer);
      const path = `/v1/bookings/${String(booked.body.id)}/cancel`;
      expect((await post(path, { reason: 'not mine' }, otherConsumer)).status).toBe(404);
      expect((await post(path, { reason: '' }, consumer)).status).toBe(400);
      expect((await post(path, { reason: 'plans changed' }, consumer)).status).toBe(200);
    });

    it('refuses an owner booking their own listing', async () => {
      const both = { id: owner.id, roles: ['OWNER' as const, 'CONSUMER' as const] };
      const response = await post('/v1/bookings', { listingId, startDate: '2030-06-01', endDate: '2030-06-02' }, both);
      expect(response.status).toBe(409);
      expect(response.body.type).toMatch(/own-listing$/);
    });
  });

  describe('doctor schedules and appointments', () => {
    beforeAll(async () => {
      expect((await put(`/v1/doctors/${doctor.id}/schedule`, everyMorning, doctor)).status).toBe(200);
    });

    it('books a slot once; the same slot for someone else is 409 slot-taken', async () => {
      const body = { doctorId: doctor.id, start: '2030-02-04T09:00:00Z', reason: 'check-up' };
      expect((await post('/v1/appointments', body, patient)).status).toBe(201);
      const taken = await post('/v1/appointments', body, otherPatient);
      expect(taken.status).toBe(409);
      expect(taken.body.type).toMatch(/slot-taken$/);
    });

    it('lists the appointments a new schedule would strand', async () => {
      const booked = await post('/v1/appointments', { doctorId: doctor.id, start: '2030-02-05T10:00:00Z', reason: 'x-ray' }, patient);
      const afternoons = [{ from: '14:00', to: '17:00' }];
      const weeklyHours = { mon: afternoons, tue: afternoons, wed: afternoons, thu: afternoons, fri: afternoons, sat: afternoons, sun: afternoons };
      const refused = await put(`/v1/doctors/${doctor.id}/schedule`, { ...everyMorning, weeklyHours }, doctor);
      expect(refused.status).toBe(409);
      expect(refused.body.affectedAppointmentIds).toContain(booked.body.id);
    });

    it('lets only the doctor complete, with notes', async () => {
      const booked = await post('/v1/appointments', { doctorId: doctor.id, start: '2030-02-06T09:00:00Z', reason: 'follow-up' }, patient);
      const path = `/v1/appointments/${String(booked.body.id)}/complete`;
      expect((await post(path, { notes: 'fine' }, patient)).status).toBe(403);
      // Not yet started: the rule answers, not a 500.
      expect((await post(path, { notes: 'fine' }, doctor)).status).toBe(409);
    });

    it('refuses a schedule with an invalid time zone, naming the field', async () => {
      const response = await put(`/v1/doctors/${doctor.id}/schedule`, { ...everyMorning, timeZone: 'Mars/Olympus' }, doctor);
      expect(response.status).toBe(400);
      expect(JSON.stringify(response.body.errors)).toContain('timeZone');
    });
  });

  describe('fuzz: arbitrary bodies on every command route', () => {
    const routes = [
      ['/v1/listings', owner],
      [`/v1/listings/${randomUUID()}/update`, owner],
      [`/v1/listings/${randomUUID()}/reviews`, consumer],
      ['/v1/bookings', consumer],
      [`/v1/bookings/${randomUUID()}/cancel`, consumer],
      ['/v1/appointments', patient],
      [`/v1/appointments/${randomUUID()}/reschedule`, patient],
      [`/v1/appointments/${randomUUID()}/complete`, doctor],
    ] as const;

    it('never answers 5xx and never appends for a rejected request', async () => {
      const before = await eventCount();
      await fc.assert(
        fc.asyncProperty(fc.constantFrom(...routes), fc.jsonValue(), async ([path, actor], body) => {
          const response = await post(path, body, actor);
          expect(response.status).toBeGreaterThanOrEqual(400);
          expect(response.status).toBeLessThan(500);
        }),
        { numRuns: 120 },
      );
      expect(await eventCount()).toBe(before);
    });
  });
});
