import { appointmentStreamId, isMade } from '../../domain/appointment/appointment.decider.js';
import { doctorScheduleStreamId, type DoctorScheduleState } from '../../domain/doctor-schedule/doctor-schedule.decider.js';
import type { DoctorScheduleEvent, ScheduleSet } from '../../domain/doctor-schedule/doctor-schedule.events.js';
import { slotEnd, slotProblem, type WeeklySchedule } from '../../domain/doctor-schedule/weekly-schedule.js';
import { hasRole } from '../../domain/shared/actor.js';
import { ForbiddenError } from '../../domain/shared/forbidden-error.js';
import { DomainError } from '../../domain/shared/domain-error.js';
import { isBefore, type TimeSlot } from '../../domain/shared/time-slot.js';
import { cancelAppointment } from '../appointments/appointment.use-cases.js';
import { isErased, requireUserWithRole } from '../authorization/registered-users.js';
import type { CommandSide } from '../command-handlers.js';
import { outcome, unpinned, type CommandOutcome } from '../command-handling/command-outcome.js';
import type { CommandOptions, CommandResult } from '../command-handling/handle-command.js';

export type SetScheduleInput = WeeklySchedule & { specialty?: string | null; acknowledgedAffected?: string[] };

/**
 * Only the doctor (or an admin) sets a doctor's working week; doctors are public, so others get 403.
 * Booked appointments the new week leaves out are refused (`schedule-conflict`) unless
 * acknowledged; acknowledged, they are cancelled once the week is set, by whoever set it, saying
 * why (`cancelAffectedAppointments`), which gives their slots and their patients' time back. A
 * request that dies in between leaves them to its retry (same key), which finds the week set and
 * cancels what is left, or else to the hold-expiry process after its grace period.
 */
export async function setSchedule(
  side: CommandSide,
  doctorId: string,
  input: SetScheduleInput,
  request: CommandOptions,
): Promise<CommandOutcome> {
  const { actor } = request.context;
  const ownAsDoctor = actor.id === doctorId && hasRole(actor, 'DOCTOR');
  if (!ownAsDoctor && !hasRole(actor, 'ADMIN')) throw new ForbiddenError("only the doctor or an admin may change a doctor's schedule");
  // A published schedule makes its id bookable as a doctor: an admin's own id included, unless they are one.
  if (!ownAsDoctor) await requireUserWithRole(side, doctorId, 'DOCTOR', 'unknown-doctor');
  // Erasure withdraws a schedule that exists; a doctor erased before publishing one still holds a
  // token for some minutes, which must not publish a schedule nobody could keep.
  else if (await isErased(side, doctorId)) throw new DomainError('unknown-doctor', `${doctorId} was erased`);
  const acknowledged = input.acknowledgedAffected ?? [];
  const schedule = doctorScheduleStreamId(doctorId);
  const result = await side.handlers.doctorSchedule.handle(
    schedule,
    {
      type: 'SetSchedule',
      data: { ...input, specialty: input.specialty ?? null, acknowledgedAffected: acknowledged, doctorId, now: side.clock.now().toISOString() },
    },
    request,
  );
  // Each cancellation under an id of its own, derived from the request's: a retry finds those it made.
  const cancellation = (appointmentId: string) => ({ ...unpinned(request), commandId: `${request.commandId}:cancel-affected:${appointmentId}` });
  const cancelled = await cancelAffectedAppointments(side, doctorId, affectedByChange(result, acknowledged), cancellation);
  if (cancelled.length === 0) return outcome(doctorId, result);
  // Each cancellation gave its slot back on this stream: the version answered (the ETag a next
  // change pins with If-Match) is the one after them, not the schedule's own, stale by then.
  const after = await side.handlers.doctorSchedule.read(schedule);
  return { ...outcome(doctorId, result, ...cancelled, after), version: after.version };
}

/**
 * The appointments the change left out: those its `ScheduleSet` names. A retry finds the change
 * made (its answer names no events): what it acknowledged is what it may have left out, which
 * `cancelAffectedAppointments` narrows to what the schedule still leaves out.
 */
function affectedByChange(result: CommandResult<DoctorScheduleState, DoctorScheduleEvent>, acknowledged: readonly string[]): readonly string[] {
  const set = result.events.find((event): event is ScheduleSet => event.type === 'ScheduleSet');
  if (set) return set.data.affectedAppointmentIds;
  return result.alreadyApplied ? acknowledged : [];
}

/**
 * Cancels, through the usual cancellation (its slot and its patient's time given back), each of
 * `appointmentIds` (of this doctor) whose own time, as the appointment now says, the doctor's
 * schedule in force does not offer and that has not ended. The appointment decides, not the slots
 * the schedule holds for it: a reschedule that died after moving it (or is still on its way) leaves
 * the old slot held beside the new one, and an appointment moved into the new hours is kept, as
 * is one the schedule offers again. A cancellation refused by a rule (cancelled by the patient
 * meanwhile, completed) is not this change's to make: nothing is appended for it; its own
 * cancellation found made by a retry gives back what it still holds. `request` gives each
 * cancellation its options, whose actor is the one it is in the name of. Returns the steps taken.
 */
export async function cancelAffectedAppointments(
  side: CommandSide,
  doctorId: string,
  appointmentIds: readonly string[],
  request: (appointmentId: string) => CommandOptions,
): Promise<CommandOutcome[]> {
  if (appointmentIds.length === 0) return [];
  const { state } = await side.handlers.doctorSchedule.read(doctorScheduleStreamId(doctorId));
  if (state.status === 'unset') return [];
  const now = side.clock.now().toISOString();
  const cancelled: CommandOutcome[] = [];
  for (const appointmentId of appointmentIds) {
    const appointment = (await side.handlers.appointment.read(appointmentStreamId(appointmentId))).state;
    if (!isMade(appointment) || appointment.doctorId !== doctorId || !isBefore(now, appointment.end)) continue;
    const change = whatNoLongerFits(state.schedule, appointment);
    if (change === undefined) continue;
    try {
      cancelled.push(await cancelAppointment(side, appointmentId, { reason: `The doctor's schedule changed: ${change}` }, request(appointmentId)));
    } catch (error) {
      if (!(error instanceof DomainError)) throw error;
    }
  }
  return cancelled;
}

/** Why `schedule` no longer offers an appointment at `time`, as the patient is told; undefined if it does. */
function whatNoLongerFits(schedule: WeeklySchedule, time: TimeSlot): string | undefined {
  const problem = slotProblem(schedule, time.start);
  if (problem) return problem.message;
  return slotEnd(schedule, time.start) === time.end ? undefined : `appointments now last ${schedule.slotMinutes} minutes`;
}
