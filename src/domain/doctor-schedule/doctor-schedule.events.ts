import { z } from 'zod';
import { instantSchema } from '../shared/calendar-date.js';
import { weeklyScheduleShape } from './weekly-schedule.js';

/**
 * The doctor's working week was (re)defined. `affectedAppointmentIds` lists the booked
 * appointments that no longer fit it and that the command acknowledged: acknowledging one is
 * cancelling it. They keep their slots only until the application has cancelled them (through
 * the usual cancellation, by whoever set the schedule, saying what changed), right after this
 * event; a request that died first leaves them to its retry or, after its grace period, to the
 * hold-expiry process. Version 2 added `specialty` (see the upcasters).
 */
export const scheduleSetSchema = z.object({
  type: z.literal('ScheduleSet'),
  data: weeklyScheduleShape.extend({
    doctorId: z.string(),
    /** What the doctor practises, as they publish it beside their hours. */
    specialty: z.string().nullable(),
    affectedAppointmentIds: z.array(z.string()),
    setAt: instantSchema,
  }),
});

/** A slot `[start, end)` is now held by an appointment. */
export const slotBookedSchema = z.object({
  type: z.literal('SlotBooked'),
  data: z.object({
    doctorId: z.string(),
    appointmentId: z.string(),
    patientId: z.string(),
    start: instantSchema,
    end: instantSchema,
    bookedAt: instantSchema,
  }),
});

/** The appointment's slot is free again. */
export const slotReleasedSchema = z.object({
  type: z.literal('SlotReleased'),
  data: z.object({
    doctorId: z.string(),
    appointmentId: z.string(),
    start: instantSchema,
    end: instantSchema,
  }),
});

/**
 * One decision that freed the appointment's old slot and took the new one: how reschedules moved
 * slots before holds (`SlotMoveHeld`); no longer decided, still folded.
 */
export const slotMovedSchema = z.object({
  type: z.literal('SlotMoved'),
  data: z.object({
    doctorId: z.string(),
    appointmentId: z.string(),
    previousStart: instantSchema,
    previousEnd: instantSchema,
    start: instantSchema,
    end: instantSchema,
    movedAt: instantSchema,
  }),
});

/**
 * The appointment's slot went back from `previousStart` to where the appointment is, undoing a
 * move it did not follow; not on the grid of the schedule in force, necessarily, nor in the future.
 */
export const slotRestoredSchema = z.object({
  type: z.literal('SlotRestored'),
  data: slotMovedSchema.shape.data.omit({ movedAt: true }).extend({ restoredAt: instantSchema }),
});

/**
 * The slot `[start, end)` is held for a move of the appointment, which keeps its slot at
 * `previousStart` until the move completes or is dropped: both are taken from everyone else.
 */
export const slotMoveHeldSchema = z.object({
  type: z.literal('SlotMoveHeld'),
  data: slotMovedSchema.shape.data.omit({ movedAt: true }).extend({ heldAt: instantSchema }),
});

/** The appointment moved: the hold `[start, end)` is its slot now, and its previous slot is free. */
export const slotMoveCompletedSchema = z.object({
  type: z.literal('SlotMoveCompleted'),
  data: slotMovedSchema.shape.data.omit({ movedAt: true }).extend({ completedAt: instantSchema }),
});

/** The hold `[start, end)` for a move of the appointment is free again; its slot stays where it is. */
export const slotMoveDroppedSchema = z.object({
  type: z.literal('SlotMoveDropped'),
  data: slotReleasedSchema.shape.data,
});

/**
 * The schedule was taken down for good (its doctor's data was erased): no slot is booked or moved
 * onto it from now on. The appointments it holds keep their slots until they are released.
 */
export const scheduleWithdrawnSchema = z.object({
  type: z.literal('ScheduleWithdrawn'),
  data: z.object({
    doctorId: z.string(),
    withdrawnAt: instantSchema,
  }),
});

export const doctorScheduleEventSchema = z.discriminatedUnion('type', [
  scheduleSetSchema,
  slotBookedSchema,
  slotReleasedSchema,
  slotMovedSchema,
  slotRestoredSchema,
  slotMoveHeldSchema,
  slotMoveCompletedSchema,
  slotMoveDroppedSchema,
  scheduleWithdrawnSchema,
]);

export type ScheduleSet = z.infer<typeof scheduleSetSchema>;
export type ScheduleSetData = ScheduleSet['data'];
export type SlotBooked = z.infer<typeof slotBookedSchema>;
export type SlotReleased = z.infer<typeof slotReleasedSchema>;
export type SlotMoved = z.infer<typeof slotMovedSchema>;
export type SlotRestored = z.infer<typeof slotRestoredSchema>;
export type SlotMoveHeld = z.infer<typeof slotMoveHeldSchema>;
export type SlotMoveCompleted = z.infer<typeof slotMoveCompletedSchema>;
export type SlotMoveDropped = z.infer<typeof slotMoveDroppedSchema>;
export type ScheduleWithdrawn = z.infer<typeof scheduleWithdrawnSchema>;
export type DoctorScheduleEvent = z.infer<typeof doctorScheduleEventSchema>;
