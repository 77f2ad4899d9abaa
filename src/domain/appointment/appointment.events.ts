import { z } from 'zod';
import { instantSchema } from '../shared/calendar-date.js';
import { personal } from '../shared/personal-data.js';

/** In whose name a person acted on the appointment; recorded because rules depend on it. */
export const partySchema = z.enum(['patient', 'doctor', 'admin']);
export type Party = z.infer<typeof partySchema>;

export const appointmentScheduledSchema = z.object({
  type: z.literal('AppointmentScheduled'),
  data: z.object({
    appointmentId: z.string(),
    patientId: z.string(),
    doctorId: z.string(),
    start: instantSchema,
    end: instantSchema,
    reason: personal(z.string()),
    scheduledBy: partySchema,
    scheduledAt: instantSchema,
  }),
});

export const appointmentRescheduledSchema = z.object({
  type: z.literal('AppointmentRescheduled'),
  data: z.object({
    appointmentId: z.string(),
    previousStart: instantSchema,
    previousEnd: instantSchema,
    start: instantSchema,
    end: instantSchema,
    rescheduledBy: partySchema,
    rescheduledAt: instantSchema,
  }),
});

/** The doctor held the appointment. */
export const appointmentCompletedSchema = z.object({
  type: z.literal('AppointmentCompleted'),
  data: z.object({
    appointmentId: z.string(),
    notes: personal(z.string()),
    completedAt: instantSchema,
  }),
});

/** `lateCancellation`: the patient cancelled less than 24 hours before the start. */
export const appointmentCancelledSchema = z.object({
  type: z.literal('AppointmentCancelled'),
  data: z.object({
    appointmentId: z.string(),
    reason: personal(z.string()),
    cancelledBy: partySchema,
    lateCancellation: z.boolean(),
    cancelledAt: instantSchema,
  }),
});

/** The patient did not come; the doctor said so at `markedAt`. */
export const appointmentMarkedNoShowSchema = z.object({
  type: z.literal('AppointmentMarkedNoShow'),
  data: z.object({
    appointmentId: z.string(),
    markedAt: instantSchema,
  }),
});

/**
 * The request that held a slot and the patient's time for this appointment died before making
 * it; the expiry process gave them back. Claims the id first, so a late retry of that request
 * cannot make the appointment after its slot was given back (nor the sweep give back the slot of
 * an appointment made meanwhile).
 */
export const appointmentAbandonedSchema = z.object({
  type: z.literal('AppointmentAbandoned'),
  data: z.object({
    appointmentId: z.string(),
    abandonedAt: instantSchema,
  }),
});

/**
 * The system gave up a reschedule to `to` whose request seemed dead, and dropped the slot held
 * there for it. Changes nothing of the appointment but its stream's version: a fact for its
 * history, and a fence, as the request's own append (pinned to the version it read) is then
 * refused instead of moving the appointment onto time that was given back.
 */
export const rescheduleGivenUpSchema = z.object({
  type: z.literal('RescheduleGivenUp'),
  data: z.object({
    appointmentId: z.string(),
    to: instantSchema,
    givenUpAt: instantSchema,
  }),
});

export const appointmentEventSchema = z.discriminatedUnion('type', [
  appointmentScheduledSchema,
  appointmentRescheduledSchema,
  appointmentCompletedSchema,
  appointmentCancelledSchema,
  appointmentMarkedNoShowSchema,
  appointmentAbandonedSchema,
  rescheduleGivenUpSchema,
]);

export type AppointmentScheduled = z.infer<typeof appointmentScheduledSchema>;
export type AppointmentRescheduled = z.infer<typeof appointmentRescheduledSchema>;
export type AppointmentCompleted = z.infer<typeof appointmentCompletedSchema>;
export type AppointmentCancelled = z.infer<typeof appointmentCancelledSchema>;
export type AppointmentMarkedNoShow = z.infer<typeof appointmentMarkedNoShowSchema>;
export type AppointmentAbandoned = z.infer<typeof appointmentAbandonedSchema>;
export type RescheduleGivenUp = z.infer<typeof rescheduleGivenUpSchema>;
export type AppointmentEvent = z.infer<typeof appointmentEventSchema>;
