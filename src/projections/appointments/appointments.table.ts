/** `noShow` as the decider spells it. */
export type AppointmentStatus = 'scheduled' | 'rescheduled' | 'completed' | 'cancelled' | 'noShow';

/**
 * One row per appointment. `reason`, `notes` and `cancellation_reason` are personal (health) data:
 * the query side shows them to the appointment's patient and doctor only.
 */
export type AppointmentsTable = {
  appointment_id: string;
  patient_id: string;
  doctor_id: string;
  start_at: Date;
  end_at: Date;
  status: AppointmentStatus;
  reason: string;
  notes: string | null;
  scheduled_by: string;
  cancelled_by: string | null;
  /** Why it was cancelled, as whoever cancelled it said (a schedule change says what changed). */
  cancellation_reason: string | null;
  late_cancellation: boolean | null;
  scheduled_at: Date;
  updated_at: Date;
  version: number;
};

export type AppointmentsTables = { appointments: AppointmentsTable };

export type AppointmentRow = AppointmentsTable;

export const appointmentsProjectionName = 'appointments';
