import { bookings, doctorScheduleStreamId, type DoctorScheduleState } from '../../domain/doctor-schedule/doctor-schedule.decider.js';
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
  const result = await side.handlers.doctorSchedule.handle(
    doctorScheduleStreamId(doctorId),
    {
      type: 'SetSchedule',
      data: { ...input, specialty: input.specialty ?? null, acknowledgedAffected: acknowledged, doctorId, now: side.clock.now().toISOString() },
    },
    request,
  );
  // Each cancellation under an id of its own, derived from the request's: a retry finds those it made.
  const cancellation = (appointmentId: string) => ({ ...unpinned(request), commandId: `${request.commandId}:cancel-affected:${appointmentId}` });
  const cancelled = await cancelAffectedAppointments(side, doctorId, affectedByChange(result, acknowledged), cancellation);
  return outcome(doctorId, result, ...cancelled);
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
 * `appointmentIds` whose slot (or time held for its move) the doctor's schedule in force does not
 * offer and that has not ended: as the decider's `affectedBy` finds them. One the schedule offers
 * again, or moved onto it since, is kept; one released already (cancelled by someone else,
 * say) is left alone. A cancellation refused by a rule (cancelled by the patient meanwhile,
 * completed) is not this change's to make: nothing is appended for it. `request` gives each
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
    const held = bookings(state.booked).filter((slot) => slot.appointmentId === appointmentId && isBefore(now, slot.end));
    const change = held.map((slot) => whatNoLongerFits(state.schedule, slot)).find((what) => what !== undefined);
    if (change === undefined) continue;
    try {
      cancelled.push(await cancelAppointment(side, appointmentId, { reason: `The doctor's schedule changed: ${change}` }, request(appointmentId)));
    } catch (error) {
      if (!(error instanceof DomainError)) throw error;
    }
  }
  return cancelled;
}

/** Why `schedule` no longer offers `slot`, as the patient is told; undefined if it does. */
function whatNoLongerFits(schedule: WeeklySchedule, slot: TimeSlot): string | undefined {
  const problem = slotProblem(schedule, slot.start);
  if (problem) return problem.message;
  return slotEnd(schedule, slot.start) === slot.end ? undefined : `appointments now last ${schedule.slotMinutes} minutes`;
}
