import { fc, test } from '@fast-check/vitest';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { sql } from 'kysely';
import { bookAppointment, cancelAppointment, rescheduleAppointment } from '../../src/application/appointments/appointment.use-cases.js';
import { setSchedule } from '../../src/application/schedules/schedule.use-cases.js';
import type { WeeklySchedule } from '../../src/domain/doctor-schedule/weekly-schedule.js';
import { slotsOverlap } from '../../src/domain/shared/time-slot.js';
import { freeSlots } from '../../src/projections/doctors/doctor-slots.js';
import { doctorsProjection } from '../../src/projections/doctors/doctors.projection.js';
import { doctorSchedule, freeSlotsOf, listDoctors } from '../../src/projections/doctors/doctors.queries.js';
import { withSearchPath } from '../../src/projections/runtime/projection-checkpoints.queries.js';
import { generationSchema, readSchema } from '../../src/projections/runtime/projection.js';
import { usersProjection } from '../../src/projections/users/users.projection.js';
import type { Actor } from '../../src/domain/shared/actor.js';
import { admin, as, doctor, everyMorning, otherDoctor, patient } from '../support/command-side.js';
import { tablesOf } from '../support/read-model-tables.js';
import { allEvents, startReadModels, type ReadModelHarness } from './support/read-models.harness.js';
import { registerUser } from './support/scenarios.js';

const none = { mon: [], tue: [], wed: [], thu: [], fri: [], sat: [], sun: [] };

describe('free slots (computed at query time)', () => {
  const paris: WeeklySchedule = { timeZone: 'Europe/Paris', slotMinutes: 30, weeklyHours: { ...none, sun: [{ from: '01:00', to: '04:00' }] }, daysOff: [] };
  const day = { from: new Date('2030-03-30T12:00:00Z'), to: new Date('2030-04-01T00:00:00Z') };
  const past = new Date('2030-01-01T00:00:00Z');

  it('skips wall times a daylight-saving jump removes, as the decider does', () => {
    expect(freeSlots(paris, [], day, past).map((s) => s.start)).toEqual([
      '2030-03-31T00:00:00.000Z', // 01:00 CET
      '2030-03-31T00:30:00.000Z', // 01:30 CET, 30 real minutes up to the jump
      '2030-03-31T01:00:00.000Z', // 03:00 CEST: 02:00 and 02:30 do not exist that night
      '2030-03-31T01:30:00.000Z',
    ]);
  });

  it('skips a slot whose minutes a daylight-saving change falls into', () => {
    const odd: WeeklySchedule = { ...paris, slotMinutes: 45, weeklyHours: { ...none, sun: [{ from: '01:30', to: '04:30' }] } };
    // 01:30 CET + 45 min crosses 02:00, where the clocks jump; 02:15 does not exist; 03:00 and 03:45 CEST remain.
    expect(freeSlots(odd, [], day, past).map((s) => s.start)).toEqual(['2030-03-31T01:00:00.000Z', '2030-03-31T01:45:00.000Z']);
  });

  it('drops booked slots, slots before now, and days off', () => {
    const booked = [{ start: '2030-03-31T01:00:00.000Z', end: '2030-03-31T01:30:00.000Z' }];
    expect(freeSlots(paris, booked, day, past).map((s) => s.start)).toEqual(['2030-03-31T00:00:00.000Z', '2030-03-31T00:30:00.000Z', '2030-03-31T01:30:00.000Z']);
    expect(freeSlots(paris, [], day, new Date('2030-03-31T00:30:00Z')).map((s) => s.start)).toEqual(['2030-03-31T01:00:00.000Z', '2030-03-31T01:30:00.000Z']);
    expect(freeSlots({ ...paris, daysOff: ['2030-03-31'] }, [], day, past)).toEqual([]);
  });

  const week = { from: new Date('2030-01-14T00:00:00Z'), to: new Date('2030-01-21T00:00:00Z') };
  const tenMinutes: WeeklySchedule = { ...everyMorning, slotMinutes: 10, weeklyHours: { ...none, mon: [{ from: '08:00', to: '20:00' }], wed: [{ from: '00:00', to: '23:50' }] } };
  const bookedInWeek = fc.array(
    fc.record({ minute: fc.integer({ min: 0, max: 7 * 24 * 60 - 1 }), length: fc.integer({ min: 1, max: 120 }) }).map(({ minute, length }) => ({
      start: new Date(week.from.getTime() + minute * 60_000).toISOString(),
      end: new Date(week.from.getTime() + (minute + length) * 60_000).toISOString(),
    })),
    { maxLength: 400 },
  );

  test.prop([bookedInWeek])('leaves out exactly the slots some booking overlaps, however the bookings lie', (booked) => {
    const every = freeSlots(tenMinutes, [], week, past);
    expect(freeSlots(tenMinutes, booked, week, past)).toEqual(every.filter((slot) => !booked.some((taken) => slotsOverlap(taken, slot))));
  });

  test.prop([bookedInWeek, fc.integer({ min: 1, max: 200 })])('asked for at least n, starts with the same slots as the whole range', (booked, n) => {
    const all = freeSlots(tenMinutes, booked, week, past);
    const some = freeSlots(tenMinutes, booked, week, past, n);
    expect(some.length).toBeGreaterThanOrEqual(Math.min(n, all.length));
    expect(some).toEqual(all.slice(0, some.length));
  });

  it('lists no slot booking would refuse as too far ahead: none from past the horizon, and only those up to it in a range across it', () => {
    // 365 days after now is 2031-01-01T09:10Z: 09:00 that morning may be booked, 09:30 may not.
    const now = new Date('2030-01-01T09:10:00Z');
    const fourHundredDaysOn = { from: new Date('2031-02-05T00:00:00Z'), to: new Date('2031-03-05T00:00:00Z') };
    const acrossTheHorizon = { from: new Date('2030-12-31T11:00:00Z'), to: new Date('2031-01-03T00:00:00Z') };

    expect(freeSlots(everyMorning, [], fourHundredDaysOn, now)).toEqual([]);
    expect(freeSlots(everyMorning, [], acrossTheHorizon, now).map((slot) => slot.start)).toEqual([
      '2030-12-31T11:00:00.000Z',
      '2030-12-31T11:30:00.000Z',
      '2031-01-01T09:00:00.000Z',
    ]);
  });

  it('keeps every slot exactly slotMinutes long, on the grid', () => {
    const slots = freeSlots(everyMorning, [], { from: new Date('2030-01-14T00:00:00Z'), to: new Date('2030-01-15T00:00:00Z') }, past);
    expect(slots).toHaveLength(6);
    expect(slots[0]).toEqual({ start: '2030-01-14T09:00:00.000Z', end: '2030-01-14T09:30:00.000Z' });
  });
});

describe('doctors read model', () => {
  let h: ReadModelHarness;
  const monday = { from: new Date('2030-01-14T00:00:00Z'), to: new Date('2030-01-15T00:00:00Z') };
  const starts = async () => (await freeSlotsOf(h.db, doctor.id, monday, h.clock.now(), { limit: 100 }))?.items.map((s) => s.start.slice(11, 16));

  beforeAll(async () => {
    h = await startReadModels([doctorsProjection, usersProjection]);
    await registerUser(h.side, doctor, 'Dr Ada');
    await registerUser(h.side, otherDoctor, 'Dr Bea');
    await registerUser(h.side, patient, 'Pat');
  });
  afterAll(() => h.close());

  it('lists the users with the DOCTOR role by name, with their schedule and specialty once set', async () => {
    await setSchedule(h.side, doctor.id, { ...everyMorning, specialty: 'Cardiology' }, as(doctor));
    await h.settle();
    const page = await listDoctors(h.db, {}, { limit: 10 });
    expect(page.items).toEqual([
      { id: doctor.id, name: 'Dr Ada', specialty: 'Cardiology', schedule: { timeZone: 'UTC', slotMinutes: 30 } },
      { id: otherDoctor.id, name: 'Dr Bea', specialty: null, schedule: null },
    ]);
    const first = await listDoctors(h.db, {}, { limit: 1 });
    expect((await listDoctors(h.db, {}, { limit: 1, after: first.next ?? undefined })).items.map((d) => d.id)).toEqual([otherDoctor.id]);
  });

  it('given a ScheduleSet with a specialty, then the doctor is found by it in any case, and no longer once it is withdrawn', async () => {
    const cardiologists = async () => (await listDoctors(h.db, { specialty: 'CARDIOLOGY' }, { limit: 10 })).items.map((d) => d.id);
    await setSchedule(h.side, doctor.id, { ...everyMorning, specialty: 'Cardiology' }, as(doctor));
    await h.settle();
    expect(await cardiologists()).toEqual([doctor.id]);
    expect((await listDoctors(h.db, { specialty: 'Dermatology' }, { limit: 10 })).items).toEqual([]);
    await setSchedule(h.side, doctor.id, everyMorning, as(doctor));
    await h.settle();
    expect(await cardiologists()).toEqual([]);
  });

  it('while a version 1 generation still serves (tables without the specialty column), lists doctors without specialties', async () => {
    await setSchedule(h.side, doctor.id, { ...everyMorning, specialty: 'Cardiology' }, as(doctor));
    await h.settle();
    const { rows } = await sql<{ generation: number }>`select generation from projection_checkpoints where name = 'doctors' and active`.execute(h.db);
    const table = sql.table(`${generationSchema('doctors', rows[0]?.generation ?? 0)}.doctor_schedules`);
    await sql`drop view rm_doctors.doctor_schedules`.execute(h.db);
    await sql`create view rm_doctors.doctor_schedules as select doctor_id, time_zone, slot_minutes, weekly_hours, days_off, set_at from ${table}`.execute(h.db);
    try {
      expect((await listDoctors(h.db, {}, { limit: 10 })).items.map((d) => [d.id, d.specialty, d.schedule])).toEqual([
        [doctor.id, null, { timeZone: 'UTC', slotMinutes: 30 }],
        [otherDoctor.id, null, null],
      ]);
      expect((await listDoctors(h.db, { specialty: 'Cardiology' }, { limit: 10 })).items).toEqual([]);
    } finally {
      await sql`drop view rm_doctors.doctor_schedules`.execute(h.db);
      await sql`create view rm_doctors.doctor_schedules as select * from ${table}`.execute(h.db);
    }
    expect((await listDoctors(h.db, { specialty: 'Cardiology' }, { limit: 10 })).items.map((d) => d.id)).toEqual([doctor.id]);
    await setSchedule(h.side, doctor.id, everyMorning, as(doctor));
    await h.settle();
  });

  it('while a version 3 generation still serves (tables without withdrawn_at), lists doctors with specialties and offers their slots', async () => {
    await setSchedule(h.side, doctor.id, { ...everyMorning, specialty: 'Cardiology' }, as(doctor));
    await h.settle();
    const { rows } = await sql<{ generation: number }>`select generation from projection_checkpoints where name = 'doctors' and active`.execute(h.db);
    const table = sql.table(`${generationSchema('doctors', rows[0]?.generation ?? 0)}.doctor_schedules`);
    await sql`drop view rm_doctors.doctor_schedules`.execute(h.db);
    await sql`create view rm_doctors.doctor_schedules as select doctor_id, time_zone, slot_minutes, weekly_hours, days_off, specialty, set_at from ${table}`.execute(h.db);
    try {
      expect((await listDoctors(h.db, {}, { limit: 10 })).items.map((d) => [d.id, d.specialty])).toEqual([
        [doctor.id, 'Cardiology'],
        [otherDoctor.id, null],
      ]);
      expect((await listDoctors(h.db, { specialty: 'cardiology' }, { limit: 10 })).items.map((d) => d.id)).toEqual([doctor.id]);
      expect(await starts()).toEqual(['09:00', '09:30', '10:00', '10:30', '11:00', '11:30']);
    } finally {
      await sql`drop view rm_doctors.doctor_schedules`.execute(h.db);
      await sql`create view rm_doctors.doctor_schedules as select * from ${table}`.execute(h.db);
    }
    await setSchedule(h.side, doctor.id, everyMorning, as(doctor));
    await h.settle();
  });

  it('given ScheduleSet, SlotBooked, SlotMoved and SlotReleased, then the free slots follow', async () => {
    expect(await starts()).toEqual(['09:00', '09:30', '10:00', '10:30', '11:00', '11:30']);
    const { id } = await bookAppointment(h.side, { doctorId: doctor.id, start: '2030-01-14T09:30:00Z', reason: 'checkup' }, as(patient));
    await h.settle();
    expect(await starts()).toEqual(['09:00', '10:00', '10:30', '11:00', '11:30']);
    await rescheduleAppointment(h.side, id, { start: '2030-01-14T11:00:00Z' }, as(patient));
    await h.settle();
    expect(await starts()).toEqual(['09:00', '09:30', '10:00', '10:30', '11:30']);
    await cancelAppointment(h.side, id, { reason: 'better' }, as(patient));
    await h.settle();
    expect(await starts()).toEqual(['09:00', '09:30', '10:00', '10:30', '11:00', '11:30']);
    await setSchedule(h.side, doctor.id, { ...everyMorning, slotMinutes: 60 }, as(doctor));
    await h.settle();
    expect(await starts()).toEqual(['09:00', '10:00', '11:00']);
    expect((await doctorSchedule(h.db, doctor.id))?.slotMinutes).toBe(60);
  });

  it('pages free slots by start, and has none for a doctor without a schedule', async () => {
    const first = await freeSlotsOf(h.db, doctor.id, monday, h.clock.now(), { limit: 2 });
    expect(first?.items.map((s) => s.start.slice(11, 16))).toEqual(['09:00', '10:00']);
    const rest = await freeSlotsOf(h.db, doctor.id, monday, h.clock.now(), { limit: 2, after: first?.next ?? undefined });
    expect(rest).toEqual({ items: [{ start: '2030-01-14T11:00:00.000Z', end: '2030-01-14T12:00:00.000Z' }], next: null });
    expect(await freeSlotsOf(h.db, otherDoctor.id, monday, h.clock.now(), { limit: 2 })).toBeUndefined();
  });

  it('counts as taken a free slot that an appointment left off a moved grid, not cancelled yet, overlaps, even one starting after the range asked for', async () => {
    const tuesday = '2030-01-15';
    await setSchedule(h.side, otherDoctor.id, everyMorning, as(otherDoctor));
    const { id } = await bookAppointment(h.side, { doctorId: otherDoctor.id, start: `${tuesday}T09:30:00Z`, reason: 'checkup' }, as(patient));
    // The grid moves a quarter of an hour, acknowledging the 09:30 appointment, which keeps its
    // slot until it is cancelled: the schedule is set, the cancellation not made yet (as when
    // that request dies in between, until its retry or the hold-expiry process makes it).
    const shifted = [{ from: '09:15', to: '12:15' }];
    const weeklyHours = { mon: shifted, tue: shifted, wed: shifted, thu: shifted, fri: shifted, sat: shifted, sun: shifted };
    const change = { ...everyMorning, weeklyHours, doctorId: otherDoctor.id, specialty: null, acknowledgedAffected: [id], now: h.clock.now().toISOString() };
    await h.side.handlers.doctorSchedule.handle(`doctorSchedule-${otherDoctor.id}`, { type: 'SetSchedule', data: change }, as(otherDoctor));
    await h.settle();

    const early = await freeSlotsOf(h.db, otherDoctor.id, { from: new Date(`${tuesday}T09:00:00Z`), to: new Date(`${tuesday}T09:20:00Z`) }, h.clock.now(), { limit: 10 });
    expect(early?.items).toEqual([]);
    const morning = await freeSlotsOf(h.db, otherDoctor.id, { from: new Date(`${tuesday}T09:00:00Z`), to: new Date(`${tuesday}T11:00:00Z`) }, h.clock.now(), { limit: 10 });
    expect(morning?.items.map((slot) => slot.start.slice(11, 16))).toEqual(['10:15', '10:45']);
  });

  it('given SlotRestored, then the slot is taken exactly where it was put back, off the grid or not', async () => {
    const wednesday = '2030-01-16';
    const schedule = `doctorSchedule-${otherDoctor.id}`;
    const { id } = await bookAppointment(h.side, { doctorId: otherDoctor.id, start: `${wednesday}T09:45:00Z`, reason: 'checkup' }, as(patient));
    const now = h.clock.now().toISOString();
    await h.side.handlers.doctorSchedule.handle(schedule, { type: 'HoldSlotForMove', data: { appointmentId: id, from: `${wednesday}T09:45:00Z`, newStart: `${wednesday}T10:45:00Z`, now } }, as(otherDoctor));
    await h.side.handlers.doctorSchedule.handle(schedule, { type: 'CompleteSlotMove', data: { appointmentId: id, to: `${wednesday}T10:45:00Z`, now } }, as(otherDoctor));
    const restore = { appointmentId: id, from: `${wednesday}T10:45:00Z`, start: `${wednesday}T09:30:00Z`, end: `${wednesday}T10:00:00Z`, now };
    await h.side.handlers.doctorSchedule.handle(schedule, { type: 'RestoreSlot', data: restore }, as(otherDoctor));
    await h.settle();

    const day = { from: new Date(`${wednesday}T00:00:00Z`), to: new Date(`${wednesday}T23:59:00Z`) };
    const free = await freeSlotsOf(h.db, otherDoctor.id, day, h.clock.now(), { limit: 10 });
    // 09:30–10:00 overlaps the slots at 09:15 and 09:45; 10:45 is free again.
    expect(free?.items.map((slot) => slot.start.slice(11, 16))).toEqual(['10:15', '10:45', '11:15', '11:45']);
  });

  it('given ScheduleWithdrawn, then the doctor is listed no more and their slots are not offered; a slot held stays until released', async () => {
    const leaving: Actor = { id: 'doctor-3', roles: ['DOCTOR'] };
    const listed = async (filter = {}) => (await listDoctors(h.db, filter, { limit: 10 })).items.map((d) => d.id);
    const heldSlots = async () => (await h.rows('doctors', 'doctor_slots')).filter((row) => row.doctor_id === leaving.id).map((row) => row.appointment_id);
    await registerUser(h.side, leaving, 'Dr Cleo');
    await setSchedule(h.side, leaving.id, { ...everyMorning, specialty: 'Paediatrics' }, as(leaving));
    const { id } = await bookAppointment(h.side, { doctorId: leaving.id, start: '2030-01-14T09:00:00Z', reason: 'checkup' }, as(patient));
    await h.settle();
    expect(await listed()).toEqual([doctor.id, otherDoctor.id, leaving.id]);
    expect(await listed({ specialty: 'Paediatrics' })).toEqual([leaving.id]);
    expect((await freeSlotsOf(h.db, leaving.id, monday, h.clock.now(), { limit: 100 }))?.items).toHaveLength(5);

    // Settled in between: the withdrawal comes in a batch of its own, without the schedule's ScheduleSet.
    await h.side.handlers.doctorSchedule.handle(`doctorSchedule-${leaving.id}`, { type: 'WithdrawSchedule', data: { doctorId: leaving.id, now: h.clock.now().toISOString() } }, as(admin));
    await h.settle();
    expect(await listed()).toEqual([doctor.id, otherDoctor.id]);
    expect(await listed({ specialty: 'Paediatrics' })).toEqual([]);
    expect(await freeSlotsOf(h.db, leaving.id, monday, h.clock.now(), { limit: 100 })).toBeUndefined();
    expect(await doctorSchedule(h.db, leaving.id)).toBeUndefined();
    expect(await heldSlots()).toEqual([id]);

    await cancelAppointment(h.side, id, { reason: 'the doctor left' }, as(patient));
    await h.settle();
    expect(await heldSlots()).toEqual([]);
    expect(await listed()).toEqual([doctor.id, otherDoctor.id]);
  });

  it('given ScheduleWithdrawn for a doctor who never set a schedule, then no schedule is made up for them, and nothing is offered', async () => {
    const unpublished: Actor = { id: 'doctor-4', roles: ['DOCTOR'] };
    await registerUser(h.side, unpublished, 'Dr Dee');
    await h.side.handlers.doctorSchedule.handle(`doctorSchedule-${unpublished.id}`, { type: 'WithdrawSchedule', data: { doctorId: unpublished.id, now: h.clock.now().toISOString() } }, as(admin));
    await h.settle();
    const of = (rows: Record<string, unknown>[]) => rows.filter((row) => row.doctor_id === unpublished.id);
    expect(of(await h.rows('doctors', 'doctor_schedules'))).toEqual([]);
    expect(of(await h.rows('doctors', 'doctor_streams'))).toEqual([{ doctor_id: unpublished.id, version: 0 }]);
    expect(await doctorSchedule(h.db, unpublished.id)).toBeUndefined();
    expect(await freeSlotsOf(h.db, unpublished.id, monday, h.clock.now(), { limit: 100 })).toBeUndefined();
    expect((await listDoctors(h.db, {}, { limit: 10 })).items.find((d) => d.id === unpublished.id)).toMatchObject({ specialty: null, schedule: null });
  });

  it('a rebuild from the first event gives the same tables, whether a withdrawal comes in the batch of its schedule or alone', async () => {
    const events = await allEvents(h.harness.revealed);
    const live = await tablesOf(h.harness.db, readSchema('doctors'));
    const schema = 'rebuilt_doctors';
    for (const size of [events.length, 1]) {
      await h.harness.db.transaction().execute(async (trx) => {
        await sql`drop schema if exists ${sql.id(schema)} cascade`.execute(trx);
        await sql`create schema ${sql.id(schema)}`.execute(trx);
        await withSearchPath(trx, schema, () => doctorsProjection.migrate(trx));
      });
      for (let start = 0; start < events.length; start += size) {
        await h.harness.db.transaction().execute((trx) => withSearchPath(trx, schema, () => doctorsProjection.apply(trx, events.slice(start, start + size))));
      }
      expect(await tablesOf(h.harness.db, schema), `in batches of ${size}`).toEqual(live);
    }
    await sql`drop schema ${sql.id(schema)} cascade`.execute(h.harness.db);
    expect(live.doctor_schedules?.filter((row) => row.withdrawn_at !== null).map((row) => row.doctor_id)).toEqual(['doctor-3']);
  });

  it('a replayed batch changes nothing', async () => {
    const before = [await h.rows('doctors', 'doctor_schedules'), await h.rows('doctors', 'doctor_slots'), await h.rows('doctors', 'doctor_streams')];
    await h.replay(doctorsProjection);
    expect([await h.rows('doctors', 'doctor_schedules'), await h.rows('doctors', 'doctor_slots'), await h.rows('doctors', 'doctor_streams')]).toEqual(before);
  });

  it('given SlotMoveHeld, then both the old slot and the held one are taken; given SlotMoveCompleted, then the old one is free; given SlotMoveDropped, then the held one is', async () => {
    const thursday = '2030-01-17';
    const moving: Actor = { id: 'doctor-moving', roles: ['DOCTOR'] };
    await registerUser(h.side, moving, 'Dr Moss');
    await setSchedule(h.side, moving.id, everyMorning, as(moving));
    const schedule = `doctorSchedule-${moving.id}`;
    const at = (time: string) => `${thursday}T${time}:00.000Z`;
    const day = { from: new Date(at('00:00')), to: new Date(at('23:59')) };
    const free = async () => (await freeSlotsOf(h.db, moving.id, day, h.clock.now(), { limit: 10 }))?.items.map((slot) => slot.start.slice(11, 16));
    const moved = await bookAppointment(h.side, { doctorId: moving.id, start: at('09:00'), reason: 'checkup' }, as(patient));
    const dropped = await bookAppointment(h.side, { doctorId: moving.id, start: at('09:30'), reason: 'checkup' }, as(patient));
    const now = h.clock.now().toISOString();
    const hold = (appointmentId: string, from: string, newStart: string) =>
      h.side.handlers.doctorSchedule.handle(schedule, { type: 'HoldSlotForMove', data: { appointmentId, from: at(from), newStart: at(newStart), now } }, as(moving));
    await hold(moved.id, '09:00', '10:00');
    await hold(dropped.id, '09:30', '11:00');
    await h.settle();
    expect(await free()).toEqual(['10:30', '11:30']);

    await h.side.handlers.doctorSchedule.handle(schedule, { type: 'CompleteSlotMove', data: { appointmentId: moved.id, to: at('10:00'), now } }, as(moving));
    await h.side.handlers.doctorSchedule.handle(schedule, { type: 'DropSlotHold', data: { appointmentId: dropped.id, to: at('11:00') } }, as(moving));
    await h.settle();
    expect(await free()).toEqual(['09:00', '10:30', '11:00', '11:30']);
    const rows = (await h.rows('doctors', 'doctor_slots')).filter((row) => row.appointment_id === moved.id || row.appointment_id === dropped.id);
    expect(rows.map((row) => row.held_for_move)).toEqual([false, false]);
  });
});
