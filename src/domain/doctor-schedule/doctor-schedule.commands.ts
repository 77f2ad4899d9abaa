import { z } from 'zod';
import { instantSchema } from '../shared/calendar-date.js';
import { specialtySchema } from './specialty.js';
import { weeklyScheduleSchema } from './weekly-schedule.js';

/**
 * Replace the doctor's working week and the specialty published with it (none when null).
 * Booked appointments that would no longer fit are refused with `schedule-conflict` unless their
 * ids are in `acknowledgedAffected`: acknowledged, they are cancelled once the week is set.
 */
export const setScheduleSchema = z.object({
  type: z.literal('SetSchedule'),
  data: weeklyScheduleSchema.safeExtend({
    doctorId: z.string().min(1),
    specialty: specialtySchema.nullable().default(null),
    acknowledgedAffected: z.array(z.string()).default([]),
    now: instantSchema,
  }),
});

/** Hold the slot starting at `start` for an appointment. */
export const bookSlotSchema = z.object({
  type: z.literal('BookSlot'),
  data: z.object({
    appointmentId: z.string().min(1),
    patientId: z.string().min(1),
    start: instantSchema,
    now: instantSchema,
  }),
});

/** Free whatever slot the appointment holds, and a hold for its move if it has one. */
export const releaseSlotSchema = z.object({
  type: z.literal('ReleaseSlot'),
  data: z.object({ appointmentId: z.string().min(1) }),
});

/**
 * Hold the slot at `newStart` for a move of the appointment, keeping the slot it has: the first
 * step of a reschedule. Nobody else can book either meanwhile, so a reschedule refused later
 * gives back only the hold, never an old slot someone else may have taken. `from` is where the
 * mover saw the appointment: a slot found elsewhere was moved by someone else meanwhile.
 */
export const holdSlotForMoveSchema = z.object({
  type: z.literal('HoldSlotForMove'),
  data: z.object({
    appointmentId: z.string().min(1),
    from: instantSchema,
    newStart: instantSchema,
    now: instantSchema,
  }),
});

/**
 * The hold at `to` becomes the appointment's slot and its previous slot is freed: the appointment
 * has moved there. With `heldAt`, only the hold made then (`SlotMoveHeld.data.heldAt`) does; a
 * newer hold at `to` is another try's, and this one finds none.
 */
export const completeSlotMoveSchema = z.object({
  type: z.literal('CompleteSlotMove'),
  data: z.object({
    appointmentId: z.string().min(1),
    to: instantSchema,
    now: instantSchema,
    heldAt: instantSchema.optional(),
  }),
});

/**
 * Free the appointment's hold at `to`: the move it was held for will not happen. With `heldAt`,
 * only the hold made then: one who saw a hold and acts on it later (the hold-expiry process) must
 * not free a newer one at the same time that a retry of the move took meanwhile.
 */
export const dropSlotHoldSchema = z.object({
  type: z.literal('DropSlotHold'),
  data: z.object({
    appointmentId: z.string().min(1),
    to: instantSchema,
    heldAt: instantSchema.optional(),
  }),
});

/**
 * Put the appointment's slot back to `[start, end)` exactly, from `from` where the restorer saw it:
 * the undo of a move the appointment did not follow. It is where the appointment still is, which
 * a schedule changed since (its affected appointments acknowledged) or the passing time may no
 * longer offer as a slot; so only another appointment holding that time refuses it.
 */
export const restoreSlotSchema = z.object({
  type: z.literal('RestoreSlot'),
  data: z.object({
    appointmentId: z.string().min(1),
    from: instantSchema,
    start: instantSchema,
    end: instantSchema,
    now: instantSchema,
  }),
});

/**
 * Take the schedule down for good: nothing more is booked or moved onto it, and it is not set
 * again; what is booked stays until it is released. Sent when the doctor's data is erased, even
 * before they published any (then `doctorId` names them in the event: no schedule does yet).
 */
export const withdrawScheduleSchema = z.object({
  type: z.literal('WithdrawSchedule'),
  data: z.object({ doctorId: z.string().min(1), now: instantSchema }),
});

export const doctorScheduleCommandSchema = z.discriminatedUnion('type', [
  setScheduleSchema,
  bookSlotSchema,
  releaseSlotSchema,
  holdSlotForMoveSchema,
  completeSlotMoveSchema,
  dropSlotHoldSchema,
  restoreSlotSchema,
  withdrawScheduleSchema,
]);

export type SetSchedule = z.infer<typeof setScheduleSchema>;
export type BookSlot = z.infer<typeof bookSlotSchema>;
export type ReleaseSlot = z.infer<typeof releaseSlotSchema>;
export type HoldSlotForMove = z.infer<typeof holdSlotForMoveSchema>;
export type CompleteSlotMove = z.infer<typeof completeSlotMoveSchema>;
export type DropSlotHold = z.infer<typeof dropSlotHoldSchema>;
export type RestoreSlot = z.infer<typeof restoreSlotSchema>;
export type WithdrawSchedule = z.infer<typeof withdrawScheduleSchema>;
export type DoctorScheduleCommand = z.infer<typeof doctorScheduleCommandSchema>;
