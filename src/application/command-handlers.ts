import { aggregates } from './aggregates/aggregates.js';
import { commandHandler, type CommandHandlerDeps } from './command-handling/handle-command.js';
import type { Clock } from './ports/clock.js';
import type { EventStore } from './ports/event-store.js';
import type { PaymentGateway } from './ports/payment-gateway.js';
import type { PersonalDataVault } from './privacy/personal-data-vault.js';

/**
 * One command handler (with its own state cache) per aggregate. Users, bookings, reviews and
 * appointments carry personal data, so the vault that seals it is required here.
 */
export function createCommandHandlers(deps: CommandHandlerDeps & { readonly personalData: PersonalDataVault }) {
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
  /** Told of what a use case could not do and gave up on, which no caller hears of (a refused undo, say). */
  readonly onError?: (error: unknown, what: string) => void;
  /**
   * The payment provider, for a use case that must ask it what our log may not know yet: a card
   * taken within the hold whose webhook is late, before the booking is expired. A function, so a
   * process builds its gateway only once something asks (a tool never does); absent, the log
   * alone decides.
   */
  readonly paymentGateway?: () => PaymentGateway;
  /**
   * Where what `paymentGateway` tells a use case is kept when it fits no payment (unmatched, for
   * reconciliation), as the webhook keeps it; absent, it is only told to `onError`.
   */
  readonly providerEventStore?: EventStore;
};
