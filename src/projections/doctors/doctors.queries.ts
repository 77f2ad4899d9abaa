import { sql, type Kysely } from 'kysely';
import type { WeeklySchedule } from '../../domain/doctor-schedule/weekly-schedule.js';
import { erasedPlaceholder } from '../../domain/shared/personal-data.js';
import type { TimeSlot } from '../../domain/shared/time-slot.js';
import type { Database } from '../read-models.js';
import { toPage, type Page, type PageRequest } from '../shared/page.js';
import { readAcrossGenerations } from '../shared/read-across-generations.js';
import { freeSlots } from './doctor-slots.js';

export type DoctorView = {
  readonly id: string;
  readonly name: string;
  /** As the doctor last published it with their schedule; null before that, or if they gave none. */
  readonly specialty: string | null;
  readonly schedule: { readonly timeZone: string; readonly slotMinutes: number } | null;
};

/**
 * By name, then id. The name a page hands on is cut to `sortKeyNameLength` code points: a stored
 * name has no upper bound (event schemas keep a loose rule, and older releases let any control
 * character through), while the cursor that carries the key must fit back into a query string.
 */
export type DoctorSortKey = { readonly name: string; readonly doctorId: string };

/** Code points of a name a sort key keeps: every name signup has ever accepted, whole. */
export const sortKeyNameLength = 200;

/** Its first `sortKeyNameLength` code points, never half a surrogate pair. */
const sortKeyName = (name: string): string => [...name].slice(0, sortKeyNameLength).join('');

/**
 * The columns of the doctors read model a query may read. After a deploy, a new version rebuilds
 * beside the active older one, whose tables lack its new columns, and doctors must keep answering
 * until it swaps in: `specialty` came with version 2, `withdrawn_at` with version 4. Drop a flag
 * once no deployment can still have a version without its column active.
 */
type Columns = { readonly specialty: boolean; readonly withdrawn: boolean };

/** Doctors with schedule and specialty, but those whose schedule was withdrawn (erased). */
function doctorsQuery(db: Kysely<Database>, columns: Columns) {
  const query = db
    .selectFrom('rm_users.users as u')
    .leftJoin('rm_doctors.doctor_schedules as s', 's.doctor_id', 'u.user_id')
    .select(['u.user_id', 'u.name', 's.time_zone', 's.slot_minutes'])
    .select(sql<string | null>`${columns.specialty ? sql.ref('s.specialty') : sql`null::text`}`.as('specialty'))
    .where(sql<boolean>`'DOCTOR' = any(u.roles)`)
    // Erased: nobody left to book, whether or not a schedule was ever published.
    .where('u.email', '<>', erasedPlaceholder);
  return columns.withdrawn ? query.where('s.withdrawn_at', 'is', null) : query;
}

type DoctorRecord = Awaited<ReturnType<ReturnType<typeof doctorsQuery>['execute']>>[number];

function toDoctorView(row: DoctorRecord): DoctorView {
  const schedule = row.time_zone !== null && row.slot_minutes !== null ? { timeZone: row.time_zone, slotMinutes: row.slot_minutes } : null;
  return { id: row.user_id, name: row.name, specialty: row.specialty, schedule };
}

export type DoctorFilter = {
  /** Only doctors who published this specialty, compared case-insensitively. */
  readonly specialty?: string | undefined;
};

/** Users holding the DOCTOR role (users read model), with their schedule if they set one; none withdrawn or erased. */
export async function listDoctors(
  db: Kysely<Database>,
  filter: DoctorFilter,
  page: PageRequest<DoctorSortKey>,
): Promise<Page<DoctorView, DoctorSortKey>> {
  const { after, limit } = page;
  const read = async (columns: Columns) => {
    let query = doctorsQuery(db, columns);
    if (filter.specialty !== undefined) {
      // Version 1 knows no specialties: no doctor has the one asked for.
      if (!columns.specialty) return { items: [], next: null };
      // Lowered on both sides by PostgreSQL, as the listings' location is (see there).
      query = query.where(sql<string>`lower(s.specialty)`, '=', sql<string>`lower(${filter.specialty})`);
    }
    if (after) query = query.where((eb) => eb(eb.refTuple('u.name', 'u.user_id'), '>', eb.tuple(resumeAfter(db, after), after.doctorId)));
    const rows = await query.orderBy('u.name').orderBy('u.user_id').limit(limit + 1).execute();
    return toPage(rows, limit, toDoctorView, (row) => ({ name: sortKeyName(row.name), doctorId: row.user_id }));
  };
  return readAcrossGenerations(
    () => read({ specialty: true, withdrawn: true }),
    () => readAcrossGenerations(() => read({ specialty: true, withdrawn: false }), () => read({ specialty: false, withdrawn: false })),
  );
}

/**
 * The name the next page starts after. One the key holds whole is the name itself; one it may
 * hold cut short is completed from the doctor's own row, while that still starts so. Should it
 * not (erased since the cursor was issued), the start alone places the page, near where it was.
 */
function resumeAfter(db: Kysely<Database>, after: DoctorSortKey) {
  if ([...after.name].length < sortKeyNameLength) return sql<string>`${after.name}`;
  const whole = db
    .selectFrom('rm_users.users as a')
    .select('a.name')
    .where('a.user_id', '=', after.doctorId)
    .where(sql<boolean>`starts_with(a.name, ${after.name})`);
  return sql<string>`coalesce((${whole}), ${after.name})`;
}

/** A doctor's working week, or undefined when none was set or it was withdrawn. */
export async function doctorSchedule(db: Kysely<Database>, doctorId: string): Promise<WeeklySchedule | undefined> {
  const read = (withdrawnColumn: boolean) => {
    const query = db.selectFrom('rm_doctors.doctor_schedules').select(['time_zone', 'slot_minutes', 'weekly_hours', 'days_off']).where('doctor_id', '=', doctorId);
    return (withdrawnColumn ? query.where('withdrawn_at', 'is', null) : query).executeTakeFirst();
  };
  // Before version 4 swaps in, its tables have no `withdrawn_at`: a withdrawn schedule still shows.
  const row = await readAcrossGenerations(() => read(true), () => read(false));
  return row && { timeZone: row.time_zone, slotMinutes: row.slot_minutes, weeklyHours: row.weekly_hours, daysOff: row.days_off };
}

/** Longest slot the schedule allows: a booked slot starting this much before `from` may still overlap it. */
const maxSlotMs = 120 * 60_000;

/**
 * Free slots of a doctor in `[from, to)`, computed now from the schedule minus the booked
 * slots; undefined when the doctor has no schedule.
 */
export async function freeSlotsOf(
  db: Kysely<Database>,
  doctorId: string,
  range: { readonly from: Date; readonly to: Date },
  now: Date,
  page: PageRequest<{ readonly start: string }>,
): Promise<Page<TimeSlot, { readonly start: string }> | undefined> {
  const schedule = await doctorSchedule(db, doctorId);
  if (!schedule) return undefined;
  const booked = await db
    .selectFrom('rm_doctors.doctor_slots')
    .select(['start_at', 'end_at'])
    .where('doctor_id', '=', doctorId)
    .where('start_at', '>=', new Date(range.from.getTime() - maxSlotMs))
    // A slot starting before `to` ends after it: a booking off the grid (kept through a schedule
    // change) may start past `to` and still take it.
    .where('start_at', '<', new Date(range.to.getTime() + maxSlotMs))
    .execute();
  const taken = booked.map((slot) => ({ start: slot.start_at.toISOString(), end: slot.end_at.toISOString() }));
  const after = page.after;
  const from = after ? new Date(Math.max(range.from.getTime(), Date.parse(after.start) + 1)) : range.from;
  const slots = freeSlots(schedule, taken, { from, to: range.to }, now, page.limit + 1);
  return toPage(slots.slice(0, page.limit + 1), page.limit, (slot) => slot, (slot) => ({ start: slot.start }));
}
