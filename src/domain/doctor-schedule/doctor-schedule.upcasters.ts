import { z } from 'zod';
import type { EventUpcaster } from '../shared/upcaster.js';
import { instantSchema } from '../shared/calendar-date.js';
import type { DoctorScheduleEvent, ScheduleSetData } from './doctor-schedule.events.js';
import { weeklyScheduleShape } from './weekly-schedule.js';

/** `ScheduleSet` as first written, before doctors published a specialty. Frozen. */
export const scheduleSetV1Schema = weeklyScheduleShape.extend({
  doctorId: z.string(),
  affectedAppointmentIds: z.array(z.string()),
  setAt: instantSchema,
});
export type ScheduleSetV1 = z.infer<typeof scheduleSetV1Schema>;

/** A schedule set before specialties were recorded published none. */
export function upcastScheduleSetV1(v1: ScheduleSetV1): ScheduleSetData {
  return { ...v1, specialty: null };
}

export const doctorScheduleUpcasters: readonly EventUpcaster<DoctorScheduleEvent>[] = [
  { type: 'ScheduleSet', fromVersion: 1, toVersion: 2, upcast: (data: unknown) => upcastScheduleSetV1(scheduleSetV1Schema.parse(data)) },
];
