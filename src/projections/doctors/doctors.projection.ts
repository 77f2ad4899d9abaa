import { sql, type Kysely, type Transaction } from 'kysely';
import { aggregates } from '../../application/aggregates/aggregates.js';
import type { RecordedEvent } from '../../application/ports/event-store.js';
import type { WeeklyHours } from '../../domain/doctor-schedule/weekly-schedule.js';
import { assertNever } from '../../domain/shared/decider.js';
import { decodeKnown, distinct } from '../shared/batch-fold.js';
import { withinParameterLimit } from '../shared/parameter-limit.js';
import { defineProjection } from '../runtime/projection.js';
import { doctorsProjectionName, type DoctorSlotsTable, type DoctorsTables } from './doctors.table.js';

const codec = aggregates.doctorSchedule.codec;

async function migrate(db: Kysely<unknown>): Promise<void> {
  await db.schema
    .createTable('doctor_schedules')
    .addColumn('doctor_id', 'text', (c) => c.primaryKey())
    .addColumn('time_zone', 'text', (c) => c.notNull())
    .addColumn('slot_minutes', 'integer', (c) => c.notNull())
    .addColumn('weekly_hours', 'jsonb', (c) => c.notNull())
    .addColumn('days_off', 'jsonb', (c) => c.notNull())
    .addColumn('specialty', 'text')
    .addColumn('set_at', 'timestamptz', (c) => c.notNull())
    // Set once the schedule is withdrawn: the doctor is no longer listed, nor their slots offered.
    .addColumn('withdrawn_at', 'timestamptz')
    .execute();
  // Doctors of a specialty, whatever the case it was written in.
  await db.schema.createIndex('doctor_schedules_specialty_idx').on('doctor_schedules').expression(sql`lower(specialty)`).execute();
  await db.schema
    .createTable('doctor_streams')
    .addColumn('doctor_id', 'text', (c) => c.primaryKey())
    .addColumn('version', 'integer', (c) => c.notNull())
    .execute();
  await db.schema
    .createTable('doctor_slots')
    .addColumn('doctor_id', 'text', (c) => c.notNull())
    .addColumn('appointment_id', 'text', (c) => c.notNull())
    .addColumn('start_at', 'timestamptz', (c) => c.notNull())
    .addColumn('end_at', 'timestamptz', (c) => c.notNull())
    // A reschedule holds the new slot beside the old one until the appointment has moved.
    .addColumn('held_for_move', 'boolean', (c) => c.notNull())
    .addPrimaryKeyConstraint('doctor_slots_pk', ['doctor_id', 'appointment_id', 'held_for_move'])
    .execute();
  // The booked slots of one doctor within the range free slots are asked for.
  await db.schema.createIndex('doctor_slots_start_idx').on('doctor_slots').columns(['doctor_id', 'start_at']).execute();
}

type Schedule = {
  time_zone: string;
  slot_minutes: number;
  weekly_hours: WeeklyHours;
  days_off: string[];
  specialty: string | null;
  set_at: Date;
  withdrawn_at: Date | null;
};
type Slot = DoctorSlotsTable;
/**
 * `withdrawnAt`: withdrawn in this batch, its schedule set in an earlier one. `slots` and `holds`
 * (for moves) by appointment id; null once freed.
 */
type Doctor = { version: number; schedule?: Schedule; withdrawnAt?: Date; slots: Map<string, Slot | null>; holds: Map<string, Slot | null> };

/**
 * Each event decides its slot outright (it carries the times), so a batch folds to one change
 * per slot, per doctor one schedule and one version, without reading the slots.
 */
async function apply(trx: Transaction<DoctorsTables>, events: readonly RecordedEvent[]): Promise<void> {
  const decoded = decodeKnown(codec, events);
  if (decoded.length === 0) return;
  const doctorIds = distinct(decoded.map(({ event }) => event.data.doctorId));
  const stored = await trx.selectFrom('doctor_streams').selectAll().where('doctor_id', 'in', doctorIds).execute();
  const doctors = new Map<string, Doctor>(stored.map((row) => [row.doctor_id, { version: row.version, slots: new Map(), holds: new Map() }]));
  for (const { event, recorded } of decoded) {
    const { doctorId } = event.data;
    const doctor: Doctor = doctors.get(doctorId) ?? { version: -1, slots: new Map(), holds: new Map() };
    doctors.set(doctorId, doctor);
    if (recorded.revision <= doctor.version) continue;
    doctor.version = recorded.revision;
    switch (event.type) {
      case 'ScheduleSet': {
        const { timeZone, slotMinutes, weeklyHours, daysOff, specialty, setAt } = event.data;
        doctor.schedule = {
          time_zone: timeZone,
          slot_minutes: slotMinutes,
          weekly_hours: weeklyHours,
          days_off: daysOff,
          specialty,
          set_at: new Date(setAt),
          withdrawn_at: null,
        };
        delete doctor.withdrawnAt;
        break;
      }
      case 'ScheduleWithdrawn': {
        const withdrawnAt = new Date(event.data.withdrawnAt);
        if (doctor.schedule) doctor.schedule = { ...doctor.schedule, withdrawn_at: withdrawnAt };
        else doctor.withdrawnAt = withdrawnAt;
        break;
      }
      case 'SlotBooked':
      case 'SlotMoved':
      case 'SlotRestored':
      case 'SlotMoveCompleted': {
        const { appointmentId, start, end } = event.data;
        doctor.slots.set(appointmentId, { doctor_id: doctorId, appointment_id: appointmentId, start_at: new Date(start), end_at: new Date(end), held_for_move: false });
        if (event.type === 'SlotMoveCompleted') doctor.holds.set(appointmentId, null);
        break;
      }
      case 'SlotMoveHeld': {
        const { appointmentId, start, end } = event.data;
        doctor.holds.set(appointmentId, { doctor_id: doctorId, appointment_id: appointmentId, start_at: new Date(start), end_at: new Date(end), held_for_move: true });
        break;
      }
      case 'SlotReleased':
        doctor.slots.set(event.data.appointmentId, null);
        break;
      case 'SlotMoveDropped':
        doctor.holds.set(event.data.appointmentId, null);
        break;
      default:
        assertNever(event);
    }
  }
  await write(trx, doctors);
}

async function write(trx: Transaction<DoctorsTables>, doctors: ReadonlyMap<string, Doctor>): Promise<void> {
  const schedules = [...doctors].flatMap(([doctorId, { schedule }]) =>
    schedule ? [{ doctor_id: doctorId, ...schedule, weekly_hours: JSON.stringify(schedule.weekly_hours), days_off: JSON.stringify(schedule.days_off) }] : [],
  );
  if (schedules.length > 0) {
    for (const run of withinParameterLimit(schedules)) {
      await trx
        .insertInto('doctor_schedules')
        .values(run)
        .onConflict((oc) =>
          oc.column('doctor_id').doUpdateSet((eb) => ({
            time_zone: eb.ref('excluded.time_zone'),
            slot_minutes: eb.ref('excluded.slot_minutes'),
            weekly_hours: eb.ref('excluded.weekly_hours'),
            days_off: eb.ref('excluded.days_off'),
            specialty: eb.ref('excluded.specialty'),
            set_at: eb.ref('excluded.set_at'),
            withdrawn_at: eb.ref('excluded.withdrawn_at'),
          })),
        )
        .execute();
    }
  }
  const withdrawn = [...doctors].flatMap(([doctorId, { withdrawnAt }]) => (withdrawnAt ? [{ doctorId, withdrawnAt }] : []));
  for (const { doctorId, withdrawnAt } of withdrawn) {
    await trx.updateTable('doctor_schedules').set({ withdrawn_at: withdrawnAt }).where('doctor_id', '=', doctorId).execute();
  }
  const versions = [...doctors].flatMap(([doctorId, { version }]) => (version >= 0 ? [{ doctor_id: doctorId, version }] : []));
  if (versions.length > 0) {
    for (const run of withinParameterLimit(versions)) {
      await trx
        .insertInto('doctor_streams')
        .values(run)
        .onConflict((oc) => oc.column('doctor_id').doUpdateSet((eb) => ({ version: eb.ref('excluded.version') })).where('doctor_streams.version', '<', sql<number>`excluded.version`))
        .execute();
    }
  }
  const changes = [...doctors.values()].flatMap((doctor) => [...doctor.slots.values(), ...doctor.holds.values()]);
  const sets = changes.flatMap((slot) => (slot ? [slot] : []));
  if (sets.length > 0) {
    for (const run of withinParameterLimit(sets)) {
      await trx
        .insertInto('doctor_slots')
        .values(run)
        .onConflict((oc) => oc.columns(['doctor_id', 'appointment_id', 'held_for_move']).doUpdateSet((eb) => ({ start_at: eb.ref('excluded.start_at'), end_at: eb.ref('excluded.end_at') })))
        .execute();
    }
  }
  const freed = (doctorId: string, entries: Map<string, Slot | null>, heldForMove: boolean) =>
    [...entries].filter(([, slot]) => slot === null).map(([appointmentId]) => ({ doctorId, appointmentId, heldForMove }));
  const released = [...doctors].flatMap(([doctorId, doctor]) => [...freed(doctorId, doctor.slots, false), ...freed(doctorId, doctor.holds, true)]);
  if (released.length > 0) {
    await trx
      .deleteFrom('doctor_slots')
      .where((eb) => eb(eb.refTuple('doctor_id', 'appointment_id', 'held_for_move'), 'in', released.map((r) => eb.tuple(r.doctorId, r.appointmentId, r.heldForMove))))
      .execute();
  }
}

/** Doctors' working weeks and booked slots: what free slots are computed from at query time. */
export const doctorsProjection = defineProjection<DoctorsTables>({
  name: doctorsProjectionName,
  // 2: the specialty a schedule publishes. 3: SlotRestored (a reschedule's undo), which version 2's
  // code does not handle: in a rolling deploy, its projector passes one written by new code, and
  // the rebuild this version starts reads it again. 4: ScheduleWithdrawn (`withdrawn_at`), the same way.
  // 5: a reschedule's hold beside the slot (`held_for_move`), and the events that hold, complete and drop it.
  version: 5,
  eventTypes: codec.eventTypes,
  migrate,
  apply,
});
