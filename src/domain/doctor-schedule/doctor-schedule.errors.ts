import { DomainError } from '../shared/domain-error.js';

/**
 * SetSchedule would leave booked appointments outside the new working week. The ids let the
 * caller show what is affected and send the command again with them acknowledged, which cancels them.
 */
export class ScheduleConflictError extends DomainError<'schedule-conflict'> {
  constructor(readonly affectedAppointmentIds: readonly string[]) {
    super(
      'schedule-conflict',
      `the new schedule leaves booked appointments outside working hours: ${affectedAppointmentIds.join(', ')}; ` +
        'acknowledge them to set it anyway, which cancels them',
      { affectedAppointmentIds: [...affectedAppointmentIds] },
    );
  }
}

/**
 * The schedule was withdrawn (its doctor's data erased): it takes no booking or move onto it, and
 * is not set again. An appointment booked onto it could never be completed.
 */
export class ScheduleWithdrawnError extends DomainError<'schedule-withdrawn'> {
  constructor(doctorId: string) {
    super('schedule-withdrawn', `doctor ${doctorId} takes no more appointments: their schedule was withdrawn`);
  }
}
