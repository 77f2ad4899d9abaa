import { doctorScheduleStreamId } from '../../domain/doctor-schedule/doctor-schedule.decider.js';
import type { WeeklySchedule } from '../../domain/doctor-schedule/weekly-schedule.js';
import { hasRole } from '../../domain/shared/actor.js';
import { ForbiddenError } from '../../domain/shared/forbidden-error.js';
import { DomainError } from '../../domain/shared/domain-error.js';
import { isErased, requireUserWithRole } from '../authorization/registered-users.js';
import type { CommandSide } from '../command-handlers.js';
import { outcome, type CommandOutcome } from '../command-handling/command-outcome.js';
import type { CommandOptions } from '../command-handling/handle-command.js';

export type SetScheduleInput = WeeklySchedule & { specialty?: string | null; acknowledgedAffected?: string[] };

/** Only the doctor (or an admin) sets a doctor's working week; doctors are public, so others get 403. */
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
  const result = await side.handlers.doctorSchedule.handle(
    doctorScheduleStreamId(doctorId),
    {
      type: 'SetSchedule',
      data: { ...input, specialty: input.specialty ?? null, acknowledgedAffected: input.acknowledgedAffected ?? [], doctorId, now: side.clock.now().toISOString() },
    },
    request,
  );
  return outcome(doctorId, result);
}
