import type { JSONColumnType } from 'kysely';
import type { WeeklyHours } from '../../domain/doctor-schedule/weekly-schedule.js';

/** A doctor's working week as last set; withdrawn, it is kept but neither listed nor offered. */
export type DoctorSchedulesTable = {
  doctor_id: string;
  time_zone: string;
  slot_minutes: number;
  weekly_hours: JSONColumnType<WeeklyHours, string, string>;
  days_off: JSONColumnType<string[], string, string>;
  specialty: string | null;
  set_at: Date;
  withdrawn_at: Date | null;
};

/** The revision of each doctor's schedule stream that the schedule and slots reflect. */
export type DoctorStreamsTable = { doctor_id: string; version: number };

/**
 * The slots appointments hold, `[start_at, end_at)`, and beside them (`held_for_move`) the time a
 * reschedule under way holds for one; a released slot or dropped hold is deleted.
 */
export type DoctorSlotsTable = {
  doctor_id: string;
  appointment_id: string;
  start_at: Date;
  end_at: Date;
  held_for_move: boolean;
};

export type DoctorsTables = { doctor_schedules: DoctorSchedulesTable; doctor_streams: DoctorStreamsTable; doctor_slots: DoctorSlotsTable };

export const doctorsProjectionName = 'doctors';
