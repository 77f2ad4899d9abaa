import { appointmentDecider, appointmentStreamId } from '../../domain/appointment/appointment.decider.js';
import type { AppointmentCommand, RescheduleAppointment, ScheduleAppointment } from '../../domain/appointment/appointment.commands.js';
import { doctorScheduleStreamId } from '../../domain/doctor-schedule/doctor-schedule.decider.js';
import { patientAgendaStreamId } from '../../domain/patient-agenda/patient-agenda.decider.js';
import { hasRole, type Actor } from '../../domain/shared/actor.js';
import { DomainError, NotFoundError } from '../../domain/shared/domain-error.js';
import { deterministicUuid } from '../ids.js';
import type { CommandSide } from '../command-handlers.js';
import { compensating, outcome, unpinned, type CommandOutcome } from '../command-handling/command-outcome.js';
import type { CommandOptions } from '../command-handling/handle-command.js';

export type BookAppointmentInput = { doctorId: string; start: string; reason: string };

/**
 * The doctor's slot, then the patient's time, then the appointment. Each contended resource is
 * taken by the aggregate that owns it, with an expected revision, so concurrent bookings of one
 * slot, or of one patient's time, cannot both win. A refusal of the patient's time gives the
 * slot back at once; a crash between steps leaves holds that the orphan sweep releases.
 */
export async function bookAppointment(side: CommandSide, input: BookAppointmentInput, request: CommandOptions): Promise<CommandOutcome> {
  const appointmentId = deterministicUuid('appointment', request.commandId);
  const { actor } = request.context;
  const now = side.clock.now().toISOString();
  const start = new Date(input.start).toISOString();
  const end = await slotEnd(side, input.doctorId, start);
  const command: ScheduleAppointment = {
    type: 'ScheduleAppointment',
    data: { appointmentId, patientId: actor.id, doctorId: input.doctorId, start, end, reason: input.reason, actor, now },
  };
  // The appointment's own rules (who, when) are checked before anything is held for it.
  appointmentDecider.decide(command, appointmentDecider.initialState);
  const schedule = doctorScheduleStreamId(input.doctorId);
  await side.handlers.doctorSchedule.handle(schedule, { type: 'BookSlot', data: { appointmentId, patientId: actor.id, start, now } }, unpinned(request));
  try {
    await side.handlers.patientAgenda.handle(
      patientAgendaStreamId(actor.id),
      { type: 'ReserveTime', data: { patientId: actor.id, appointmentId, start, end } },
      unpinned(request),
    );
  } catch (error) {
    if (error instanceof DomainError) {
      await side.handlers.doctorSchedule.handle(schedule, { type: 'ReleaseSlot', data: { appointmentId } }, compensating(request, 'slot'));
    }
    throw error;
  }
  const result = await side.handlers.appointment.handle(appointmentStreamId(appointmentId), command, unpinned(request));
  return outcome(appointmentId, result);
}

/**
 * MoveSlot frees the old slot and takes the new one in one append, then the patient's time moves.
 * If the patient's time refuses, the slot moves back.
 */
export async function rescheduleAppointment(
  side: CommandSide,
  appointmentId: string,
  input: { start: string },
  request: CommandOptions,
): Promise<CommandOutcome> {
  const current = await visibleAppointment(side, appointmentId, request.context.actor);
  const { actor } = request.context;
  const now = side.clock.now().toISOString();
  const newStart = new Date(input.start).toISOString();
  const newEnd = await slotEnd(side, current.doctorId, newStart);
  const command: RescheduleAppointment = { type: 'RescheduleAppointment', data: { appointmentId, newStart, newEnd, actor, now } };
  if (appointmentDecider.decide(command, current).length === 0) {
    return outcome(appointmentId, await side.handlers.appointment.handle(appointmentStreamId(appointmentId), command, request));
  }
  const schedule = doctorScheduleStreamId(current.doctorId);
  await side.handlers.doctorSchedule.handle(schedule, { type: 'MoveSlot', data: { appointmentId, newStart, now } }, unpinned(request));
  try {
    await side.handlers.patientAgenda.handle(
      patientAgendaStreamId(current.patientId),
      { type: 'MoveTime', data: { patientId: current.patientId, appointmentId, newStart, newEnd } },
      unpinned(request),
    );
  } catch (error) {
    if (error instanceof DomainError) {
      await side.handlers.doctorSchedule.handle(
        schedule,
        { type: 'MoveSlot', data: { appointmentId, newStart: current.start, now } },
        compensating(request, 'slot'),
      );
    }
    throw error;
  }
  const result = await side.handlers.appointment.handle(appointmentStreamId(appointmentId), command, request);
  return outcome(appointmentId, result);
}

/** The appointment first (the fact), then its slot and the patient's time are given back. */
export async function cancelAppointment(
  side: CommandSide,
  appointmentId: string,
  input: { reason: string },
  request: CommandOptions,
): Promise<CommandOutcome> {
  const result = await actOn(side, appointmentId, request, (actor, now) => ({
    type: 'CancelAppointment',
    data: { appointmentId, reason: input.reason, actor, now },
  }));
  if (result.state.status !== 'none') await releaseAppointmentTime(side, result.state, request);
  return outcome(appointmentId, result);
}

export async function completeAppointment(
  side: CommandSide,
  appointmentId: string,
  input: { notes: string },
  request: CommandOptions,
): Promise<CommandOutcome> {
  const result = await actOn(side, appointmentId, request, (actor, now) => ({
    type: 'CompleteAppointment',
    data: { appointmentId, notes: input.notes, actor, now },
  }));
  return outcome(appointmentId, result);
}

export async function markNoShow(side: CommandSide, appointmentId: string, request: CommandOptions): Promise<CommandOutcome> {
  const result = await actOn(side, appointmentId, request, (actor, now) => ({ type: 'MarkAppointmentNoShow', data: { appointmentId, actor, now } }));
  return outcome(appointmentId, result);
}

/** A command on one existing appointment by someone who may know of it, at the clock's now. */
async function actOn(
  side: CommandSide,
  appointmentId: string,
  request: CommandOptions,
  command: (actor: Actor, now: string) => AppointmentCommand,
) {
  await visibleAppointment(side, appointmentId, request.context.actor);
  const now = side.clock.now().toISOString();
  return side.handlers.appointment.handle(appointmentStreamId(appointmentId), command(request.context.actor, now), request);
}

/** Frees the doctor's slot and the patient's time of an appointment; freeing what is free changes nothing. */
export async function releaseAppointmentTime(
  side: CommandSide,
  { appointmentId, doctorId, patientId }: { appointmentId: string; doctorId: string; patientId: string },
  request: CommandOptions,
) {
  await side.handlers.doctorSchedule.handle(doctorScheduleStreamId(doctorId), { type: 'ReleaseSlot', data: { appointmentId } }, unpinned(request));
  await side.handlers.patientAgenda.handle(
    patientAgendaStreamId(patientId),
    { type: 'ReleaseTime', data: { patientId, appointmentId } },
    unpinned(request),
  );
}

/** A slot lasts the doctor's slot length; a doctor without a schedule takes no appointments. */
async function slotEnd(side: CommandSide, doctorId: string, start: string): Promise<string> {
  const { state } = await side.handlers.doctorSchedule.read(doctorScheduleStreamId(doctorId));
  if (state.status === 'unset') throw new NotFoundError(`doctor ${doctorId}`);
  return new Date(Date.parse(start) + state.schedule.slotMinutes * 60_000).toISOString();
}

/** An appointment exists for its patient, its doctor and admins; for anyone else it does not. */
async function visibleAppointment(side: CommandSide, appointmentId: string, actor: Actor) {
  const { state } = await side.handlers.appointment.read(appointmentStreamId(appointmentId));
  if (state.status === 'none') throw new NotFoundError(`appointment ${appointmentId}`);
  const party = actor.id === state.patientId || actor.id === state.doctorId || hasRole(actor, 'ADMIN');
  if (!party) throw new NotFoundError(`appointment ${appointmentId}`);
  return state;
}
