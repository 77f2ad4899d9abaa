import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { bookAppointment, completeAppointment, rescheduleAppointment } from '../../src/application/appointments/appointment.use-cases.js';
import { requestBooking } from '../../src/application/bookings/booking.use-cases.js';
import { createListing } from '../../src/application/listings/listing.use-cases.js';
import { setSchedule } from '../../src/application/schedules/schedule.use-cases.js';
import { paymentStreamId } from '../../src/domain/payment/payment.decider.js';
import { admin, as, consumer, doctor, everyMorning, listingInput, otherConsumer, otherDoctor, owner, patient } from '../support/command-side.js';
import { payBooking, registerUser, system } from '../projections/support/scenarios.js';
import { startQueryApi, type QueryApiFixture } from './support/query-api.fixture.js';

const otherPatient = { id: 'patient-2', roles: ['PATIENT' as const] };

type AppointmentPage = { items: { id: string; start: string }[]; nextCursor: string | null };

describe('query API: users, doctors, appointments, payments', () => {
  let q: QueryApiFixture;
  let appointmentId: string;
  let paymentId: string;

  beforeAll(async () => {
    q = await startQueryApi();
    await registerUser(q.side, doctor, 'Dr Ada');
    await registerUser(q.side, patient, 'Pat');
    await setSchedule(q.side, doctor.id, { ...everyMorning, specialty: 'General practice' }, as(doctor));
    appointmentId = (await bookAppointment(q.side, { doctorId: doctor.id, start: '2030-01-14T09:00:00Z', reason: 'back pain' }, as(patient))).id;
    q.clock.advance(5 * 86_400_000);
    await completeAppointment(q.side, appointmentId, { notes: 'rest' }, as(doctor));
    q.clock.advance(-5 * 86_400_000);
    const listingId = (await createListing(q.side, listingInput, as(owner))).id;
    const bookingId = (await requestBooking(q.side, { listingId, startDate: '2030-02-01', endDate: '2030-02-02' }, as(consumer))).id;
    paymentId = `pay-${bookingId}`;
    await payBooking(q.side, bookingId, paymentId);
  });
  afterAll(() => q.close());

  it('GET /v1/users/me: own profile, 401 without a token, 404 before the profile exists', async () => {
    const me = await q.app.inject({ url: '/v1/users/me', headers: { ...q.auth(patient), ...q.consistency() } });
    expect(me.json()).toMatchObject({ id: patient.id, name: 'Pat', roles: ['PATIENT'] });
    expect((await q.app.inject({ url: '/v1/users/me' })).statusCode).toBe(401);
    expect((await q.app.inject({ url: '/v1/users/me', headers: q.auth(otherPatient) })).statusCode).toBe(404);
  });

  it('GET /v1/doctors and /v1/doctors/{id}/slots for anyone', async () => {
    const doctors = await q.app.inject({ url: '/v1/doctors', headers: q.consistency() });
    const ada = { id: doctor.id, name: 'Dr Ada', specialty: 'General practice', schedule: { timeZone: 'UTC', slotMinutes: 30 } };
    expect(doctors.json()).toEqual({ items: [ada], nextCursor: null });
    expect((await q.app.inject({ url: '/v1/doctors?specialty=general%20PRACTICE' })).json()).toEqual({ items: [ada], nextCursor: null });
    expect((await q.app.inject({ url: '/v1/doctors?specialty=Dermatology' })).json()).toEqual({ items: [], nextCursor: null });
    const blank = await q.app.inject({ url: '/v1/doctors?specialty=' });
    expect(blank.statusCode).toBe(400);
    expect(blank.body).toContain('specialty');
    const slots = await q.app.inject({ url: `/v1/doctors/${doctor.id}/slots?from=2030-01-14T00:00:00Z&to=2030-01-15T00:00:00Z&limit=2` });
    const body = slots.json<{ items: { start: string }[]; nextCursor: string }>();
    expect(body.items.map((s) => s.start)).toEqual(['2030-01-14T09:30:00.000Z', '2030-01-14T10:00:00.000Z']);
    const next = await q.app.inject({ url: `/v1/doctors/${doctor.id}/slots?from=2030-01-14T00:00:00Z&to=2030-01-15T00:00:00Z&limit=10&cursor=${body.nextCursor}` });
    expect(next.json<{ items: unknown[] }>().items).toHaveLength(3);
    expect((await q.app.inject({ url: `/v1/doctors/${otherDoctor.id}/slots?from=2030-01-14T00:00:00Z&to=2030-01-15T00:00:00Z` })).statusCode).toBe(404);
    expect((await q.app.inject({ url: `/v1/doctors/${doctor.id}/slots?from=2030-01-14T00:00:00Z&to=2030-03-15T00:00:00Z` })).statusCode).toBe(400);
  });

  it('GET /v1/doctors/{id}/slots refuses instants outside the years 1970–8999 with 400 naming the field (at year 10000 the walk over days never ended)', async () => {
    for (const [from, to, field] of [
      ['9999-12-30T00:00:00Z', '9999-12-31T23:00:00Z', 'querystring.from'],
      ['0999-01-01T00:00:00Z', '0999-01-02T00:00:00Z', 'querystring.from'],
      ['8999-12-31T00:00:00Z', '9000-01-01T00:00:00Z', 'querystring.to'],
    ] as const) {
      const refused = await q.app.inject({ url: `/v1/doctors/${doctor.id}/slots?from=${from}&to=${to}` });
      expect(refused.statusCode, from).toBe(400);
      expect(refused.json<{ errors: { path: string }[] }>().errors.map((error) => error.path), from).toContain(field);
    }
    expect((await q.app.inject({ url: `/v1/doctors/${doctor.id}/slots?from=8999-12-01T00:00:00Z&to=8999-12-31T00:00:00Z` })).statusCode).toBe(200);
  });

  it('GET /v1/appointments/{id}: notes for the patient and the doctor, not for admins; 404 for anyone else', async () => {
    for (const actor of [patient, doctor]) {
      const response = await q.app.inject({ url: `/v1/appointments/${appointmentId}`, headers: { ...q.auth(actor), ...q.consistency() } });
      expect(response.json(), actor.id).toMatchObject({ id: appointmentId, status: 'completed', notes: 'rest', reason: 'back pain' });
    }
    const asAdmin = await q.app.inject({ url: `/v1/appointments/${appointmentId}`, headers: q.auth(admin) });
    expect(asAdmin.json()).toMatchObject({ id: appointmentId, status: 'completed', notes: null, reason: null });
    for (const actor of [otherPatient, otherDoctor, consumer]) {
      expect((await q.app.inject({ url: `/v1/appointments/${appointmentId}`, headers: q.auth(actor) })).statusCode, actor.id).toBe(404);
    }
  });

  it('GET /v1/appointments/me for patients and doctors only, each their own', async () => {
    const mine = await q.app.inject({ url: '/v1/appointments/me', headers: q.auth(patient) });
    expect(mine.json<{ items: { id: string }[] }>().items.map((a) => a.id)).toEqual([appointmentId]);
    const doctors = await q.app.inject({ url: '/v1/appointments/me', headers: q.auth(doctor) });
    expect(doctors.json<{ items: { notes: string }[] }>().items.map((a) => a.notes)).toEqual(['rest']);
    expect((await q.app.inject({ url: '/v1/appointments/me', headers: q.auth(otherPatient) })).json()).toEqual({ items: [], nextCursor: null });
    expect((await q.app.inject({ url: '/v1/appointments/me', headers: q.auth(consumer) })).statusCode).toBe(403);
  });

  it('GET /v1/appointments/me pages newest made first: appointments rescheduled between pages are neither shown twice nor skipped', async () => {
    const patient3 = { id: 'patient-3', roles: ['PATIENT' as const] };
    const doctor3 = { id: 'doctor-3', roles: ['DOCTOR' as const] };
    await setSchedule(q.side, doctor3.id, everyMorning, as(doctor3));
    const book = async (day: string) => {
      const { id } = await bookAppointment(q.side, { doctorId: doctor3.id, start: `2030-02-${day}T09:00:00Z`, reason: 'check-up' }, as(patient3));
      q.clock.advance(60_000);
      return id;
    };
    const a = await book('14');
    const b = await book('15');
    const c = await book('16');
    const page = async (query: string) => {
      const response = await q.app.inject({ url: `/v1/appointments/me?${query}`, headers: { ...q.auth(patient3), ...q.consistency() } });
      expect(response.statusCode, query).toBe(200);
      return response.json<AppointmentPage>();
    };
    const first = await page('limit=2');
    // A moves past every other appointment, C before every other one.
    await rescheduleAppointment(q.side, a, { start: '2030-02-20T09:00:00Z' }, as(patient3));
    await rescheduleAppointment(q.side, c, { start: '2030-02-12T09:00:00Z' }, as(patient3));
    const second = await page(`limit=2&cursor=${first.nextCursor ?? ''}`);
    expect([...first.items, ...second.items].map((appointment) => appointment.id)).toEqual([c, b, a]);
    expect(second).toMatchObject({ items: [{ id: a, start: '2030-02-20T09:00:00.000Z' }], nextCursor: null });
    q.clock.advance(-3 * 60_000);
  });

  it('GET /v1/payments/{id}: the payer, the owner and admins; 404 for anyone else; the booking shows its payment', async () => {
    for (const actor of [consumer, owner, admin]) {
      const response = await q.app.inject({ url: `/v1/payments/${paymentId}`, headers: { ...q.auth(actor), ...q.consistency() } });
      expect(response.json(), actor.id).toMatchObject({ id: paymentId, status: 'succeeded', amount: 12_000, refunds: [] });
    }
    for (const actor of [otherConsumer, patient]) {
      expect((await q.app.inject({ url: `/v1/payments/${paymentId}`, headers: q.auth(actor) })).statusCode, actor.id).toBe(404);
    }
    const bookingId = paymentId.slice('pay-'.length);
    const booking = await q.app.inject({ url: `/v1/bookings/${bookingId}`, headers: q.auth(consumer) });
    expect(booking.json()).toMatchObject({ status: 'confirmed', payment: { id: paymentId, status: 'succeeded' } });
  });

  it('GET /v1/payments/{id} and /v1/bookings/{id}: a payment captured in another currency shows what was received, and refundedAmount only what was refunded in its own currency', async () => {
    const listingId = (await createListing(q.side, listingInput, as(owner))).id;
    const bookingId = (await requestBooking(q.side, { listingId, startDate: '2030-03-01', endDate: '2030-03-02' }, as(consumer))).id;
    const mismatchedId = `pay-jpy-${bookingId}`;
    const pay = (command: Parameters<QueryApiFixture['side']['handlers']['payment']['handle']>[1]) => q.side.handlers.payment.handle(paymentStreamId(mismatchedId), command, as(system));
    await pay({ type: 'InitiatePayment', data: { paymentId: mismatchedId, bookingId, providerIntentId: 'pi_jpy', amount: 10_000, currency: 'EUR' } });
    await pay({ type: 'RecordPaymentSucceeded', data: { paymentId: mismatchedId, providerEventId: 'evt_jpy', amount: 1_000_000, currency: 'JPY' } });
    await pay({ type: 'RequestRefund', data: { paymentId: mismatchedId, refundId: 'r-jpy', amount: 1_000_000 } });
    await pay({ type: 'RecordRefundSucceeded', data: { paymentId: mismatchedId, refundId: 'r-jpy', providerEventId: 'evt_r_jpy' } });
    const shown = {
      amount: 10_000,
      currency: 'EUR',
      status: 'mismatched',
      received: { amount: 1_000_000, currency: 'JPY' },
      refundedAmount: 0,
      refunds: [{ amount: 1_000_000, currency: 'JPY', status: 'succeeded' }],
    };
    const payment = await q.app.inject({ url: `/v1/payments/${mismatchedId}`, headers: { ...q.auth(consumer), ...q.consistency() } });
    expect(payment.json()).toMatchObject(shown);
    const booking = await q.app.inject({ url: `/v1/bookings/${bookingId}`, headers: q.auth(consumer) });
    expect(booking.json()).toMatchObject({ payment: { id: mismatchedId, ...shown } });
    expect((await q.app.inject({ url: `/v1/payments/${paymentId}`, headers: q.auth(consumer) })).json()).toMatchObject({ received: null, refundedAmount: 0 });
    const docs = await q.app.inject({ url: '/docs/json' });
    expect(docs.json()).toMatchObject({ components: { schemas: { Payment: { properties: { received: expect.anything() }, required: expect.arrayContaining(['received']) } } } });
  });
});
