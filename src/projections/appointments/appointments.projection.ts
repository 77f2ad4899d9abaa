import { sql, type Kysely, type Transaction } from 'kysely';
import { aggregates } from '../../application/aggregates/aggregates.js';
import type { RecordedEvent } from '../../application/ports/event-store.js';
import type { AppointmentEvent } from '../../domain/appointment/appointment.events.js';
import { assertNever } from '../../domain/shared/decider.js';
import { erasedPlaceholder } from '../../domain/shared/personal-data.js';
import { subjectErasedType } from '../../domain/user/user.events.js';
import { decodeKnown, distinct, foldRows } from '../shared/batch-fold.js';
import { withinParameterLimit } from '../shared/parameter-limit.js';
import { erasedSubjects } from '../shared/subject-erasures.js';
import { defineProjection } from '../runtime/projection.js';
import { appointmentsProjectionName, type AppointmentRow, type AppointmentsTables } from './appointments.table.js';

const codec = aggregates.appointment.codec;

async function migrate(db: Kysely<unknown>): Promise<void> {
  await db.schema
    .createTable('appointments')
    .addColumn('appointment_id', 'text', (c) => c.primaryKey())
    .addColumn('patient_id', 'text', (c) => c.notNull())
    .addColumn('doctor_id', 'text', (c) => c.notNull())
    .addColumn('start_at', 'timestamptz', (c) => c.notNull())
    .addColumn('end_at', 'timestamptz', (c) => c.notNull())
    .addColumn('status', 'text', (c) => c.notNull())
    .addColumn('reason', 'text', (c) => c.notNull())
    .addColumn('notes', 'text')
    .addColumn('scheduled_by', 'text', (c) => c.notNull())
    .addColumn('cancelled_by', 'text')
    .addColumn('cancellation_reason', 'text')
    .addColumn('late_cancellation', 'boolean')
    .addColumn('scheduled_at', 'timestamptz', (c) => c.notNull())
    .addColumn('updated_at', 'timestamptz', (c) => c.notNull())
    .addColumn('version', 'integer', (c) => c.notNull())
    .execute();
  // A patient's and a doctor's appointments, newest made first: `scheduled_at` is written once, so
  // pages keyed on it hold still while appointments are rescheduled between them.
  for (const party of ['patient_id', 'doctor_id']) {
    await db.schema.createIndex(`appointments_${party}_idx`).on('appointments').columns([party, 'scheduled_at desc', 'appointment_id desc']).execute();
  }
}

function evolve(row: AppointmentRow | undefined, event: AppointmentEvent, recorded: RecordedEvent): AppointmentRow | undefined {
  const at = { version: recorded.revision, updated_at: recorded.recordedAt };
  if (event.type === 'AppointmentScheduled') {
    const d = event.data;
    return {
      appointment_id: d.appointmentId,
      patient_id: d.patientId,
      doctor_id: d.doctorId,
      start_at: new Date(d.start),
      end_at: new Date(d.end),
      status: 'scheduled',
      reason: d.reason,
      notes: null,
      scheduled_by: d.scheduledBy,
      cancelled_by: null,
      cancellation_reason: null,
      late_cancellation: null,
      scheduled_at: new Date(d.scheduledAt),
      ...at,
    };
  }
  if (!row) return undefined;
  switch (event.type) {
    case 'AppointmentRescheduled':
      return { ...row, ...at, status: 'rescheduled', start_at: new Date(event.data.start), end_at: new Date(event.data.end) };
    case 'AppointmentCompleted':
      return { ...row, ...at, status: 'completed', notes: event.data.notes };
    case 'AppointmentCancelled':
      return {
        ...row,
        ...at,
        status: 'cancelled',
        cancelled_by: event.data.cancelledBy,
        cancellation_reason: event.data.reason,
        late_cancellation: event.data.lateCancellation,
      };
    case 'AppointmentMarkedNoShow':
      return { ...row, ...at, status: 'noShow' };
    case 'AppointmentAbandoned':
      return row;
    // Nothing a reader sees changed, but the version a client sends back as If-Match did.
    case 'RescheduleGivenUp':
      return { ...row, version: recorded.revision };
    default:
      return assertNever(event);
  }
}

async function apply(trx: Transaction<AppointmentsTables>, events: readonly RecordedEvent[]): Promise<void> {
  await upsertAppointments(trx, events);
  const erased = erasedSubjects(events);
  if (erased.length === 0) return;
  await trx
    .updateTable('appointments')
    .set((eb) => ({
      reason: erasedPlaceholder,
      notes: eb.case().when('notes', 'is', null).then(null).else(erasedPlaceholder).end(),
      cancellation_reason: eb.case().when('cancellation_reason', 'is', null).then(null).else(erasedPlaceholder).end(),
    }))
    .where('patient_id', 'in', erased)
    .execute();
}

async function upsertAppointments(trx: Transaction<AppointmentsTables>, events: readonly RecordedEvent[]): Promise<void> {
  const decoded = decodeKnown(codec, events);
  if (decoded.length === 0) return;
  const ids = distinct(decoded.map(({ event }) => event.data.appointmentId));
  const loaded = await trx.selectFrom('appointments').selectAll().where('appointment_id', 'in', ids).execute();
  const rows = foldRows({ events: decoded, loaded, keyOfRow: (row) => row.appointment_id, keyOfEvent: (event) => event.data.appointmentId, evolve });
  if (rows.length === 0) return;
  for (const run of withinParameterLimit(rows)) {
    await trx
      .insertInto('appointments')
      .values(run)
      .onConflict((oc) =>
        oc
          .column('appointment_id')
          .doUpdateSet((eb) => ({
            start_at: eb.ref('excluded.start_at'),
            end_at: eb.ref('excluded.end_at'),
            status: eb.ref('excluded.status'),
            notes: eb.ref('excluded.notes'),
            cancelled_by: eb.ref('excluded.cancelled_by'),
            cancellation_reason: eb.ref('excluded.cancellation_reason'),
            late_cancellation: eb.ref('excluded.late_cancellation'),
            updated_at: eb.ref('excluded.updated_at'),
            version: eb.ref('excluded.version'),
          }))
          .where('appointments.version', '<', sql<number>`excluded.version`),
      )
      .execute();
  }
}

/** Appointments by patient, by doctor and by id. */
export const appointmentsProjection = defineProjection<AppointmentsTables>({
  name: appointmentsProjectionName,
  // 3: the parties' indexes follow the page order (when made), no longer `start_at`. 4:
  // RescheduleGivenUp moves an appointment's version (its If-Match), which version 3's code does
  // not read: in a rolling deploy, its projector passes one written by new code, and the rebuild
  // this version starts reads it again. 5: a cancellation's reason (`cancellation_reason`).
  version: 5,
  eventTypes: [...codec.eventTypes, subjectErasedType],
  migrate,
  apply,
});
