import { aggregates } from './aggregates/aggregates.js';
import { commandHandler, type CommandHandlerDeps } from './command-handling/handle-command.js';
import type { Clock } from './ports/clock.js';

/** One command handler (with its own state cache) per aggregate. */
export function createCommandHandlers(deps: CommandHandlerDeps) {
  return {
    user: commandHandler(aggregates.user, deps),
    listing: commandHandler(aggregates.listing, deps),
    listingCalendar: commandHandler(aggregates.listingCalendar, deps),
    booking: commandHandler(aggregates.booking, deps),
    payment: commandHandler(aggregates.payment, deps),
    review: commandHandler(aggregates.review, deps),
    doctorSchedule: commandHandler(aggregates.doctorSchedule, deps),
    patientAgenda: commandHandler(aggregates.patientAgenda, deps),
    appointment: commandHandler(aggregates.appointment, deps),
  };
}

export type CommandHandlers = ReturnType<typeof createCommandHandlers>;

/** What every use case of the command side is given. */
export type CommandSide = {
  readonly handlers: CommandHandlers;
  readonly clock: Clock;
  readonly policy: {
    /** How long requested dates stay held for payment. */
    readonly holdMinutes: number;
  };
};
