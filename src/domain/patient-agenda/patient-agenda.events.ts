import { z } from 'zod';
import { instantSchema } from '../shared/calendar-date.js';

/** The patient's time `[start, end)` is now spoken for by an appointment. */
export const timeReservedSchema = z.object({
  type: z.literal('TimeReserved'),
  data: z.object({
    patientId: z.string(),
    appointmentId: z.string(),
    start: instantSchema,
    end: instantSchema,
  }),
});

/** The appointment no longer needs the patient's time. */
export const timeReleasedSchema = z.object({
  type: z.literal('TimeReleased'),
  data: z.object({
    patientId: z.string(),
    appointmentId: z.string(),
    start: instantSchema,
    end: instantSchema,
  }),
});

/** The appointment's reservation moved to `[start, end)` in one decision. */
export const timeMovedSchema = z.object({
  type: z.literal('TimeMoved'),
  data: z.object({
    patientId: z.string(),
    appointmentId: z.string(),
    previousStart: instantSchema,
    previousEnd: instantSchema,
    start: instantSchema,
    end: instantSchema,
  }),
});

export const patientAgendaEventSchema = z.discriminatedUnion('type', [timeReservedSchema, timeReleasedSchema, timeMovedSchema]);

export type TimeReserved = z.infer<typeof timeReservedSchema>;
export type TimeReleased = z.infer<typeof timeReleasedSchema>;
export type TimeMoved = z.infer<typeof timeMovedSchema>;
export type PatientAgendaEvent = z.infer<typeof patientAgendaEventSchema>;
