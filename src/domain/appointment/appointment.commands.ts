import { z } from 'zod';
import { actorSchema } from '../shared/actor.js';
import { instantSchema } from '../shared/calendar-date.js';

// Free text a person writes: bounded so that one request cannot bloat the stream.
const text = z.string().trim().min(1).max(4_000);

/** Book the appointment for `[start, end)`, the slot the doctor's schedule granted. */
export const scheduleAppointmentSchema = z.object({
  type: z.literal('ScheduleAppointment'),
  data: z.object({
    appointmentId: z.string().min(1),
    patientId: z.string().min(1),
    doctorId: z.string().min(1),
    start: instantSchema,
    end: instantSchema,
    reason: text,
    actor: actorSchema,
    now: instantSchema,
  }),
});

/** Move the appointment to `[newStart, newEnd)`, the slot HoldSlotForMove held for it. */
export const rescheduleAppointmentSchema = z.object({
  type: z.literal('RescheduleAppointment'),
  data: z.object({
    appointmentId: z.string().min(1),
    newStart: instantSchema,
    newEnd: instantSchema,
    actor: actorSchema,
    now: instantSchema,
  }),
});

export const completeAppointmentSchema = z.object({
  type: z.literal('CompleteAppointment'),
  data: z.object({
    appointmentId: z.string().min(1),
    notes: text,
    actor: actorSchema,
    now: instantSchema,
  }),
});

export const cancelAppointmentSchema = z.object({
  type: z.literal('CancelAppointment'),
  data: z.object({
    appointmentId: z.string().min(1),
    reason: text,
    actor: actorSchema,
    now: instantSchema,
  }),
});

export const markAppointmentNoShowSchema = z.object({
  type: z.literal('MarkAppointmentNoShow'),
  data: z.object({
    appointmentId: z.string().min(1),
    actor: actorSchema,
    now: instantSchema,
  }),
});

/** The expiry process's: the id of an appointment whose request died before making it is given up. */
export const abandonAppointmentSchema = z.object({
  type: z.literal('AbandonAppointment'),
  data: z.object({
    appointmentId: z.string().min(1),
    now: instantSchema,
  }),
});

/**
 * The expiry process's: a reschedule to `to` whose request seems dead (its slot held there past the
 * grace period, the appointment elsewhere) is given up. Pinned to the version the process read, so
 * that the request's own append, pinned to the version it read, cannot land after it.
 */
export const giveUpRescheduleSchema = z.object({
  type: z.literal('GiveUpReschedule'),
  data: z.object({
    appointmentId: z.string().min(1),
    to: instantSchema,
    now: instantSchema,
  }),
});

export const appointmentCommandSchema = z.discriminatedUnion('type', [
  scheduleAppointmentSchema,
  rescheduleAppointmentSchema,
  completeAppointmentSchema,
  cancelAppointmentSchema,
  markAppointmentNoShowSchema,
  abandonAppointmentSchema,
  giveUpRescheduleSchema,
]);

export type ScheduleAppointment = z.infer<typeof scheduleAppointmentSchema>;
export type RescheduleAppointment = z.infer<typeof rescheduleAppointmentSchema>;
export type CompleteAppointment = z.infer<typeof completeAppointmentSchema>;
export type CancelAppointment = z.infer<typeof cancelAppointmentSchema>;
export type MarkAppointmentNoShow = z.infer<typeof markAppointmentNoShowSchema>;
export type AbandonAppointment = z.infer<typeof abandonAppointmentSchema>;
export type GiveUpReschedule = z.infer<typeof giveUpRescheduleSchema>;
export type AppointmentCommand = z.infer<typeof appointmentCommandSchema>;
