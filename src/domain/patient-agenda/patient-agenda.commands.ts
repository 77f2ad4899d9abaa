import { z } from 'zod';
import { instantSchema } from '../shared/calendar-date.js';

/** Reserve `[start, end)` of the patient's time for an appointment. */
export const reserveTimeSchema = z.object({
  type: z.literal('ReserveTime'),
  data: z.object({
    patientId: z.string().min(1),
    appointmentId: z.string().min(1),
    start: instantSchema,
    end: instantSchema,
  }),
});

/** Give back whatever time the appointment holds. */
export const releaseTimeSchema = z.object({
  type: z.literal('ReleaseTime'),
  data: z.object({
    patientId: z.string().min(1),
    appointmentId: z.string().min(1),
  }),
});

/**
 * Move the appointment's reservation to `[newStart, newEnd)`. `from`, if given, is where the mover
 * saw it start: a reservation found elsewhere was moved by someone else meanwhile.
 */
export const moveTimeSchema = z.object({
  type: z.literal('MoveTime'),
  data: z.object({
    patientId: z.string().min(1),
    appointmentId: z.string().min(1),
    from: instantSchema.optional(),
    newStart: instantSchema,
    newEnd: instantSchema,
  }),
});

export const patientAgendaCommandSchema = z.discriminatedUnion('type', [reserveTimeSchema, releaseTimeSchema, moveTimeSchema]);

export type ReserveTime = z.infer<typeof reserveTimeSchema>;
export type ReleaseTime = z.infer<typeof releaseTimeSchema>;
export type MoveTime = z.infer<typeof moveTimeSchema>;
export type PatientAgendaCommand = z.infer<typeof patientAgendaCommandSchema>;
