import { randomUUID } from 'node:crypto';
import { Kysely, PostgresDialect } from 'kysely';
import type pg from 'pg';
import { afterEach, beforeEach, describe, expect, it } from 'vitest';
import { Ledger, type AppointmentRecord } from '../bench/support/soak-load.js';
import { checkEventsExactlyOnce } from '../bench/support/soak-checks.js';
import type { JsonObject } from '../src/application/ports/event-store.js';
import { PgEventStore } from '../src/infrastructure/pg-event-store/pg-event-store.js';
import { createPool, migrateToLatest } from '../src/infrastructure/postgres/database.js';
import { createTestDatabase, type TestDatabase } from './support/database.js';

// The soak's own checks, against a log written by hand: a check that cannot see what it looks
// for passes every soak.

let database: TestDatabase;
let pool: pg.Pool;
let store: PgEventStore;
let db: Kysely<unknown>;

// A fresh database per test: the log cannot be emptied, and every check reads all of it.
beforeEach(async () => {
  database = await createTestDatabase();
  pool = createPool(database.url, 4);
  await migrateToLatest(pool);
  store = new PgEventStore(pool);
  db = new Kysely({ dialect: new PostgresDialect({ pool }) });
});

afterEach(async () => {
  await store.close();
  await db.destroy();
  await database.drop();
});

const append = (streamId: string, ...events: [type: string, data: JsonObject][]) =>
  store.appendToStream(
    streamId,
    events.map(([type, data]) => ({ id: randomUUID(), type, data, metadata: {} })),
  );

const dates = (bookingId: string) => ({ bookingId, startDate: '2027-03-01', endDate: '2027-03-04' });
const time = (appointmentId: string) => ({ appointmentId, start: '2027-03-01T09:00:00.000Z', end: '2027-03-01T09:30:00.000Z' });

describe('the soak check that every accepted command left its events once', () => {
  it('flags dates, slots and time still held for a booking or appointment the log never recorded, and nothing given back or owned', async () => {
    const [kept, orphan, released, booked] = [randomUUID(), randomUUID(), randomUUID(), randomUUID()];
    await append(`listingCalendar-${randomUUID()}`, ['DatesHeld', dates(kept)], ['DatesHeld', dates(orphan)], ['DatesHeld', dates(released)], ['DatesReleased', dates(released)]);
    await append(`booking-${kept}`, ['BookingRequested', { bookingId: kept }]);
    const [slotOrphan, refusedByAgenda, appointment] = [randomUUID(), randomUUID(), randomUUID()];
    const schedule = `doctorSchedule-${randomUUID()}`;
    await append(schedule, ['SlotBooked', time(slotOrphan)], ['SlotBooked', time(refusedByAgenda)], ['SlotReleased', time(refusedByAgenda)], ['SlotBooked', time(appointment)]);
    const agenda = `patientAgenda-${randomUUID()}`;
    await append(agenda, ['TimeReserved', time(booked)], ['TimeReserved', time(appointment)]);
    await append(`appointment-${appointment}`, ['AppointmentScheduled', { appointmentId: appointment }]);

    const check = await checkEventsExactlyOnce(db, new Ledger());

    expect(check.ok).toBe(false);
    expect(check.problems).toHaveLength(3);
    expect(check.problems).toEqual(
      expect.arrayContaining([
        expect.stringMatching(new RegExp(`^listingCalendar-.*: DatesHeld for ${orphan} still holds, and no such booking exists$`)),
        expect.stringMatching(new RegExp(`^${schedule}: SlotBooked for ${slotOrphan} still holds, and no such appointment exists$`)),
        expect.stringMatching(new RegExp(`^${agenda}: TimeReserved for ${booked} still holds, and no such appointment exists$`)),
      ]),
    );
  });
});

/** A booking of the soak's, its calendar and its one payment. */
type Booked = { readonly bookingId: string; readonly calendar: string; readonly booking: string; readonly payment: string; readonly paymentId: string };

function newBooking(): Booked {
  const [bookingId, paymentId] = [randomUUID(), randomUUID()];
  return { bookingId, paymentId, calendar: `listingCalendar-${randomUUID()}`, booking: `booking-${bookingId}`, payment: `payment-${paymentId}` };
}

/** What the soak's ledger holds of it: accepted, paid (its webhook answered 200) or not, cancelled by its consumer or not. */
function ledgerOf(booked: Booked, outcome: { paid: boolean; cancelled: boolean }): Ledger {
  const ledger = new Ledger();
  const listingId = booked.calendar.slice('listingCalendar-'.length);
  ledger.bookings.set(booked.bookingId, { listingId, cancelled: outcome.cancelled, paymentIds: outcome.paid ? [booked.paymentId] : [] });
  if (outcome.paid) ledger.payments.set(booked.paymentId, { bookingId: booked.bookingId, webhookAccepted: true });
  return ledger;
}

const captured = 10_000;

/** Requested, its dates held. */
async function givenRequested({ booking, bookingId, calendar }: Booked): Promise<void> {
  await append(booking, ['BookingRequested', { bookingId }]);
  await append(calendar, ['DatesHeld', dates(bookingId)]);
}

/** Requested, paid `captured` through its payment, its dates booked, confirmed: the payment process's work. */
async function givenPaid(booked: Booked): Promise<void> {
  const { booking, bookingId, calendar, payment, paymentId } = booked;
  await givenRequested(booked);
  await append(payment, ['PaymentInitiated', { paymentId, bookingId, amount: captured }], ['PaymentSucceeded', { paymentId, amount: captured }]);
  await append(booking, ['BookingPaid', { bookingId, paymentId, amount: captured }]);
  await append(calendar, ['DatesBooked', dates(bookingId)]);
  await append(booking, ['BookingConfirmed', { bookingId }]);
}

/** Cancelled by its consumer at `percent` of what was paid (`paid`: the booking knew of the payment), its dates given back. */
async function givenCancelled({ booking, bookingId, calendar }: Booked, percent: number, paid = true): Promise<void> {
  await append(booking, ['BookingCancelled', { bookingId, refundPercent: percent, refundAmount: paid ? (captured * percent) / 100 : 0 }]);
  await append(calendar, ['DatesReleased', { ...dates(bookingId), reason: 'cancelled' }]);
}

/** Refunds requested of its payment, one id each, and done at the provider. */
async function givenRefunds({ payment, paymentId }: Booked, ...amounts: number[]): Promise<void> {
  for (const amount of amounts) {
    const refundId = randomUUID();
    await append(payment, ['RefundRequested', { paymentId, refundId, amount }], ['RefundSucceeded', { paymentId, refundId }]);
  }
}

describe('the soak check that every accepted command left its events once: refunds and cancellations', () => {
  it('given a booking paid 10,000, cancelled by its consumer at 50 % and refunded 5,000 once, then it passes', async () => {
    const booked = newBooking();
    await givenPaid(booked);
    await givenCancelled(booked, 50);
    await givenRefunds(booked, 5_000);

    const check = await checkEventsExactlyOnce(db, ledgerOf(booked, { paid: true, cancelled: true }));

    expect(check.problems).toEqual([]);
  });

  it('given the cancellation landed before the payment process marked it paid (refund amount 0 on the cancellation), then the refund owed is still its 50 % of what was captured', async () => {
    const booked = newBooking();
    await givenRequested(booked);
    await append(booked.payment, ['PaymentInitiated', { paymentId: booked.paymentId, bookingId: booked.bookingId, amount: captured }], ['PaymentSucceeded', { paymentId: booked.paymentId, amount: captured }]);
    await givenCancelled(booked, 50, false);
    await givenRefunds(booked, 5_000);

    const check = await checkEventsExactlyOnce(db, ledgerOf(booked, { paid: true, cancelled: true }));

    expect(check.problems).toEqual([]);
  });

  it('given that booking refunded 5,000 twice under two refund ids, then the second refund is flagged', async () => {
    const booked = newBooking();
    await givenPaid(booked);
    await givenCancelled(booked, 50);
    await givenRefunds(booked, 5_000, 5_000);

    const check = await checkEventsExactlyOnce(db, ledgerOf(booked, { paid: true, cancelled: true }));

    expect(check.problems).toEqual([`${booked.payment}: refunds requested ×2 (5,000, 5,000) for booking ${booked.bookingId} cancelled at 50 % of 10,000, expected one of 5,000`]);
  });

  it('given that booking never refunded, then the missing refund is flagged', async () => {
    const booked = newBooking();
    await givenPaid(booked);
    await givenCancelled(booked, 50);

    const check = await checkEventsExactlyOnce(db, ledgerOf(booked, { paid: true, cancelled: true }));

    expect(check.problems).toEqual([`${booked.payment}: refunds requested ×0 () for booking ${booked.bookingId} cancelled at 50 % of 10,000, expected one of 5,000`]);
  });

  it('given that booking refunded in full although the policy granted 50 %, then the amount is flagged', async () => {
    const booked = newBooking();
    await givenPaid(booked);
    await givenCancelled(booked, 50);
    await givenRefunds(booked, 10_000);

    const check = await checkEventsExactlyOnce(db, ledgerOf(booked, { paid: true, cancelled: true }));

    expect(check.problems).toEqual([`${booked.payment}: refunds requested ×1 (10,000) for booking ${booked.bookingId} cancelled at 50 % of 10,000, expected one of 5,000`]);
  });

  it('given a paid booking cancelled at 0 % (too late for a refund), then no refund is owed, and one requested is flagged', async () => {
    const [owedNothing, refundedAnyway] = [newBooking(), newBooking()];
    for (const booked of [owedNothing, refundedAnyway]) {
      await givenPaid(booked);
      await givenCancelled(booked, 0);
    }
    await givenRefunds(refundedAnyway, 10_000);
    const ledger = ledgerOf(owedNothing, { paid: true, cancelled: true });
    for (const [id, record] of ledgerOf(refundedAnyway, { paid: true, cancelled: true }).bookings) ledger.bookings.set(id, record);
    ledger.payments.set(refundedAnyway.paymentId, { bookingId: refundedAnyway.bookingId, webhookAccepted: true });

    const check = await checkEventsExactlyOnce(db, ledger);

    expect(check.problems).toEqual([`${refundedAnyway.payment}: refunds requested ×1 (10,000) for booking ${refundedAnyway.bookingId} cancelled at 0 % of 10,000, expected none`]);
  });

  it('given a payment of the log, in the ledger or not, whose refunds not failed add up to more than was captured, then it is flagged', async () => {
    const booked = newBooking();
    await append(booked.payment, ['PaymentInitiated', { paymentId: booked.paymentId, bookingId: booked.bookingId, amount: captured }], ['PaymentSucceeded', { paymentId: booked.paymentId, amount: captured }]);
    await givenRefunds(booked, 8_000, 5_000);
    const failedId = randomUUID();
    await append(booked.payment, ['RefundRequested', { paymentId: booked.paymentId, refundId: failedId, amount: 9_000 }], ['RefundFailed', { paymentId: booked.paymentId, refundId: failedId }]);

    const check = await checkEventsExactlyOnce(db, new Ledger());

    expect(check.problems).toEqual([`${booked.payment}: refunds of 13,000 requested (not counting 1 failed) exceed the 10,000 captured`]);
  });

  it('given a booking its consumer never cancelled, then a BookingCancelled and a DatesReleased for it are flagged', async () => {
    const booked = newBooking();
    await givenPaid(booked);
    await givenCancelled(booked, 100);
    await givenRefunds(booked, 10_000);

    const check = await checkEventsExactlyOnce(db, ledgerOf(booked, { paid: true, cancelled: false }));

    expect(check.problems).toEqual([
      `${booked.booking}: BookingCancelled ×1, expected ×0`,
      `${booked.calendar}: DatesReleased for ${booked.bookingId} ×1, expected ×0`,
      `${booked.payment}: refunds requested ×1 (10,000) for booking ${booked.bookingId}, not cancelled, expected none`,
    ]);
  });

  it('given an unpaid booking whose hold ran out, then the expiry and its dates released as expired are what is expected, nothing else', async () => {
    const [expired, releasedAsCancelled, notReleased] = [newBooking(), newBooking(), newBooking()];
    for (const booked of [expired, releasedAsCancelled, notReleased]) {
      await givenRequested(booked);
      await append(booked.booking, ['BookingExpired', { bookingId: booked.bookingId }]);
    }
    await append(expired.calendar, ['DatesReleased', { ...dates(expired.bookingId), reason: 'expired' }]);
    await append(releasedAsCancelled.calendar, ['DatesReleased', { ...dates(releasedAsCancelled.bookingId), reason: 'cancelled' }]);
    const ledger = new Ledger();
    for (const booked of [expired, releasedAsCancelled, notReleased]) {
      ledger.bookings.set(booked.bookingId, { listingId: booked.calendar.slice('listingCalendar-'.length), cancelled: false, paymentIds: [] });
    }

    const check = await checkEventsExactlyOnce(db, ledger);

    expect(check.problems).toEqual(
      expect.arrayContaining([
        `${releasedAsCancelled.calendar}: DatesReleased for ${releasedAsCancelled.bookingId} as cancelled, expected as expired`,
        `${notReleased.calendar}: DatesReleased for ${notReleased.bookingId} ×0, expected ×1`,
      ]),
    );
    expect(check.problems.filter((problem) => problem.includes(expired.bookingId))).toEqual([]);
    // The hold of the one never released still holds, and its booking exists: no orphan.
    expect(check.problems).toHaveLength(2);
  });

  it('given a paid and cancelled booking paid twice and its dates booked twice, then both are flagged', async () => {
    const booked = newBooking();
    await givenPaid(booked);
    await append(booked.booking, ['BookingPaid', { bookingId: booked.bookingId, paymentId: booked.paymentId, amount: captured }]);
    await append(booked.calendar, ['DatesBooked', dates(booked.bookingId)]);
    await givenCancelled(booked, 50);
    await givenRefunds(booked, 5_000);

    const check = await checkEventsExactlyOnce(db, ledgerOf(booked, { paid: true, cancelled: true }));

    expect(check.problems).toEqual([`${booked.booking}: BookingPaid ×2, expected at most ×1`, `${booked.calendar}: DatesBooked for ${booked.bookingId} ×2, expected at most ×1`]);
  });
});

/** An appointment of the soak's: its doctor's schedule, its patient's agenda, where it starts and where a reschedule takes it. */
type Made = { readonly appointmentId: string; readonly appointment: string; readonly schedule: string; readonly agenda: string; readonly record: AppointmentRecord };

const nine = '2027-03-01T09:00:00.000Z';
const ten = '2027-03-01T10:00:00.000Z';
const at = (appointmentId: string, start: string) => ({ appointmentId, start, end: new Date(Date.parse(start) + 30 * 60_000).toISOString() });
const moved = (appointmentId: string, from: string, to: string) => ({ ...at(appointmentId, to), previousStart: from });

/** Booked at nine: the slot, the patient's time, the appointment. */
async function givenAppointment(): Promise<Made> {
  const [appointmentId, doctorId, patientId] = [randomUUID(), randomUUID(), randomUUID()];
  const made: Made = {
    appointmentId,
    appointment: `appointment-${appointmentId}`,
    schedule: `doctorSchedule-${doctorId}`,
    agenda: `patientAgenda-${patientId}`,
    record: { doctorId, patientId, start: nine, reschedules: 0, cancelled: false },
  };
  await append(made.schedule, ['SlotBooked', at(appointmentId, nine)]);
  await append(made.agenda, ['TimeReserved', at(appointmentId, nine)]);
  await append(made.appointment, ['AppointmentScheduled', at(appointmentId, nine)]);
  return made;
}

/** An accepted reschedule to ten: the slot moves, then the patient's time, then the appointment. */
async function givenRescheduledToTen(made: Made): Promise<void> {
  await append(made.schedule, ['SlotMoved', moved(made.appointmentId, nine, ten)]);
  await append(made.agenda, ['TimeMoved', moved(made.appointmentId, nine, ten)]);
  await append(made.appointment, ['AppointmentRescheduled', at(made.appointmentId, ten)]);
  made.record.start = ten;
  made.record.reschedules += 1;
}

/** Cancelled: the appointment, then the patient's time and the slot given back. */
async function givenCancelledAppointment(made: Made): Promise<void> {
  await append(made.appointment, ['AppointmentCancelled', { appointmentId: made.appointmentId }]);
  await append(made.agenda, ['TimeReleased', at(made.appointmentId, made.record.start)]);
  await append(made.schedule, ['SlotReleased', at(made.appointmentId, made.record.start)]);
  made.record.cancelled = true;
}

function ledgerWith(...made: Made[]): Ledger {
  const ledger = new Ledger();
  for (const { appointmentId, record } of made) ledger.appointments.set(appointmentId, record);
  return ledger;
}

describe('the soak check that every accepted command left its events once: patients\' agendas', () => {
  it('given an appointment rescheduled and then cancelled, and one whose reschedule was refused after its slot and time had moved and moved back, then it passes', async () => {
    const accepted = await givenAppointment();
    await givenRescheduledToTen(accepted);
    await givenCancelledAppointment(accepted);
    const refused = await givenAppointment();
    // The appointment's own append refused the move: what moved for it moved back, in reverse.
    await append(refused.schedule, ['SlotMoved', moved(refused.appointmentId, nine, ten)]);
    await append(refused.agenda, ['TimeMoved', moved(refused.appointmentId, nine, ten)]);
    await append(refused.agenda, ['TimeMoved', moved(refused.appointmentId, ten, nine)]);
    await append(refused.schedule, ['SlotRestored', moved(refused.appointmentId, ten, nine)]);

    const check = await checkEventsExactlyOnce(db, ledgerWith(accepted, refused));

    expect(check.problems).toEqual([]);
  });

  it('given a patient\'s time reserved twice for one appointment, and never for another, then both are flagged', async () => {
    const [twice, never] = [await givenAppointment(), randomUUID()];
    await append(twice.agenda, ['TimeReserved', at(twice.appointmentId, nine)]);
    const made: Made = { ...twice, appointmentId: never, appointment: `appointment-${never}`, record: { ...twice.record, patientId: randomUUID() } };
    await append(made.schedule, ['SlotBooked', at(never, ten)]);
    await append(made.appointment, ['AppointmentScheduled', at(never, ten)]);
    made.record.start = ten;

    const check = await checkEventsExactlyOnce(db, ledgerWith(twice, made));

    expect(check.problems).toEqual([
      `${twice.agenda}: TimeReserved for ${twice.appointmentId} ×2, expected ×1`,
      `patientAgenda-${made.record.patientId}: TimeReserved for ${never} ×0, expected ×1`,
      `appointment ${never}: its patient's time ends nowhere, expected ${ten}`,
    ]);
  });

  it('given an accepted reschedule whose patient\'s time never moved, then it is flagged', async () => {
    const made = await givenAppointment();
    await append(made.schedule, ['SlotMoved', moved(made.appointmentId, nine, ten)]);
    await append(made.appointment, ['AppointmentRescheduled', at(made.appointmentId, ten)]);
    made.record.start = ten;
    made.record.reschedules = 1;

    const check = await checkEventsExactlyOnce(db, ledgerWith(made));

    expect(check.problems).toEqual([
      `appointment ${made.appointmentId}: its patient's time moved 0 times and back 0 times for 1 accepted reschedules`,
      `appointment ${made.appointmentId}: its patient's time ends ${nine}, expected ${ten}`,
    ]);
  });

  it('given a refused reschedule whose patient\'s time moved and was not moved back, then it is flagged', async () => {
    const made = await givenAppointment();
    await append(made.agenda, ['TimeMoved', moved(made.appointmentId, nine, ten)]);

    const check = await checkEventsExactlyOnce(db, ledgerWith(made));

    expect(check.problems).toEqual([
      `appointment ${made.appointmentId}: its patient's time moved 1 times and back 0 times for 0 accepted reschedules`,
      `appointment ${made.appointmentId}: its patient's time ends ${ten}, expected ${nine}`,
    ]);
  });

  it('given an appointment nobody cancelled whose patient\'s time was released, and a cancelled one whose time was not, then both are flagged', async () => {
    const [released, kept] = [await givenAppointment(), await givenAppointment()];
    await append(released.agenda, ['TimeReleased', at(released.appointmentId, nine)]);
    await append(kept.appointment, ['AppointmentCancelled', { appointmentId: kept.appointmentId }]);
    await append(kept.schedule, ['SlotReleased', at(kept.appointmentId, nine)]);
    kept.record.cancelled = true;

    const check = await checkEventsExactlyOnce(db, ledgerWith(released, kept));

    expect(check.problems).toEqual([
      `${released.agenda}: TimeReleased for ${released.appointmentId} ×1, expected ×0`,
      `${kept.agenda}: TimeReleased for ${kept.appointmentId} ×0, expected ×1`,
      `appointment ${released.appointmentId}: its patient's time ends released, expected ${nine}`,
      `appointment ${kept.appointmentId}: its patient's time ends ${nine}, expected released`,
    ]);
  });
});
