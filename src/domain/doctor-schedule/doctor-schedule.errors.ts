import { DomainError } from '../shared/domain-error.js';

/**
 * SetSchedule would leave booked appointments outside the new working week. The ids let the
 * caller show what is affected and send the command again with them acknowledged.
 */
export class ScheduleConflictError extends DomainError<'schedule-conflict'> {
  constructor(readonly affectedAppointmentIds: readonly string[]) {
    super(
      'schedule-conflict',
      `the new schedule leaves booked appointments outside working hours: ${affectedAppointmentIds.join(', ')}; ` +
        'acknowledge them to set it anyway',
      { affectedAppointmentIds: [...affectedAppointmentIds] },
    );
  }
}
