import type { Kysely } from 'kysely';
import type { Database } from '../read-models.js';
import { toPage, type Page, type PageRequest } from '../shared/page.js';
import type { AppointmentRow, AppointmentStatus } from './appointments.table.js';

export type AppointmentView = {
  readonly id: string;
  readonly patientId: string;
  readonly doctorId: string;
  readonly start: string;
  readonly end: string;
  readonly status: AppointmentStatus;
  /** Personal health data: null unless the viewer is the patient or the doctor. */
  readonly reason: string | null;
  readonly notes: string | null;
  readonly scheduledBy: string;
  readonly cancelledBy: string | null;
  /** Why it was cancelled; personal data as `reason` is: null unless the viewer is the patient or the doctor. */
  readonly cancellationReason: string | null;
  readonly lateCancellation: boolean | null;
  readonly scheduledAt: string;
  readonly version: number;
};

/**
 * When the appointment was made, then its id. Not its time: a reschedule moves that, and pages
 * keyed on it showed a moved appointment twice or never.
 */
export type AppointmentSortKey = { readonly scheduledAt: string; readonly appointmentId: string };

export type Viewer = { readonly id: string; readonly admin: boolean };

/**
 * The appointment as `viewer` may see it: whole for its patient and doctor, without the reason,
 * notes and cancellation reason for an admin, and not at all (undefined) for anyone else.
 */
export function appointmentFor(viewer: Viewer, row: AppointmentRow): AppointmentView | undefined {
  const party = viewer.id === row.patient_id || viewer.id === row.doctor_id;
  if (!party && !viewer.admin) return undefined;
  return {
    id: row.appointment_id,
    patientId: row.patient_id,
    doctorId: row.doctor_id,
    start: row.start_at.toISOString(),
    end: row.end_at.toISOString(),
    status: row.status,
    reason: party ? row.reason : null,
    notes: party ? row.notes : null,
    scheduledBy: row.scheduled_by,
    cancelledBy: row.cancelled_by,
    cancellationReason: party ? row.cancellation_reason : null,
    lateCancellation: row.late_cancellation,
    scheduledAt: row.scheduled_at.toISOString(),
    version: row.version,
  };
}

export async function findAppointment(db: Kysely<Database>, appointmentId: string): Promise<AppointmentRow | undefined> {
  return db.selectFrom('rm_appointments.appointments').selectAll().where('appointment_id', '=', appointmentId).executeTakeFirst();
}

/**
 * The appointments where the caller is the patient (`asPatient`) or the doctor (`asDoctor`), the
 * most recently made first. The caller is a party of every row, so each shows whole.
 */
export async function appointmentsOf(
  db: Kysely<Database>,
  party: { readonly userId: string; readonly asPatient: boolean; readonly asDoctor: boolean },
  page: PageRequest<AppointmentSortKey>,
): Promise<Page<AppointmentView, AppointmentSortKey>> {
  const { after, limit } = page;
  const { userId, asPatient, asDoctor } = party;
  if (!asPatient && !asDoctor) return { items: [], next: null };
  let query = db
    .selectFrom('rm_appointments.appointments')
    .selectAll()
    .where((eb) => eb.or([...(asPatient ? [eb('patient_id', '=', userId)] : []), ...(asDoctor ? [eb('doctor_id', '=', userId)] : [])]));
  if (after) query = query.where((eb) => eb(eb.refTuple('scheduled_at', 'appointment_id'), '<', eb.tuple(new Date(after.scheduledAt), after.appointmentId)));
  const rows = await query.orderBy('scheduled_at', 'desc').orderBy('appointment_id', 'desc').limit(limit + 1).execute();
  const viewer = { id: userId, admin: false };
  return toPage(
    rows,
    limit,
    (row) => appointmentFor(viewer, row) ?? never(),
    (row) => ({ scheduledAt: row.scheduled_at.toISOString(), appointmentId: row.appointment_id }),
  );
}

function never(): never {
  throw new Error('an appointment of the caller was not visible to the caller');
}
