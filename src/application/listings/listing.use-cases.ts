import type { ListingDetails, ListingEvent, ListingPrice } from '../../domain/listing/listing.events.js';
import { listingCalendarStreamId } from '../../domain/listing-calendar/listing-calendar.decider.js';
import { listingDecider, listingStreamId, type ListingState } from '../../domain/listing/listing.decider.js';
import { hasRole } from '../../domain/shared/actor.js';
import { requireUserWithRole } from '../authorization/registered-users.js';
import { deterministicUuid } from '../ids.js';
import type { CommandSide } from '../command-handlers.js';
import { compensating, outcome, takeStep, unpinned, type CommandOutcome } from '../command-handling/command-outcome.js';
import { assertExpectedVersion } from '../command-handling/errors.js';
import type { CommandOptions, CommandResult } from '../command-handling/handle-command.js';

export type CreateListingInput = Omit<ListingDetails, 'timeZone'> & Partial<Pick<ListingDetails, 'timeZone'>> & ListingPrice & { ownerId?: string | undefined };
export type UpdateListingInput = Partial<ListingDetails & ListingPrice>;

export async function createListing(side: CommandSide, input: CreateListingInput, request: CommandOptions): Promise<CommandOutcome> {
  const listingId = deterministicUuid('listing', request.commandId);
  const { actor } = request.context;
  if (input.ownerId !== undefined && input.ownerId !== actor.id && hasRole(actor, 'ADMIN')) {
    await requireUserWithRole(side, input.ownerId, 'OWNER', 'unknown-owner');
  }
  const result = await side.handlers.listing.handle(
    listingStreamId(listingId),
    { type: 'CreateListing', data: { ...input, listingId, actor: request.context.actor } },
    unpinned(request),
  );
  return outcome(listingId, result);
}

export async function updateListing(
  side: CommandSide,
  listingId: string,
  input: UpdateListingInput,
  request: CommandOptions,
): Promise<CommandOutcome> {
  const result = await side.handlers.listing.handle(
    listingStreamId(listingId),
    { type: 'UpdateListing', data: { ...input, listingId, actor: request.context.actor } },
    request,
  );
  return outcome(listingId, result);
}

/**
 * Deactivation closes the listing's calendar first, then marks the listing: bookings are taken on
 * the calendar with an expected revision, so one decided on the listing as it was before either
 * landed before the close or is decided again after it and refused. Reactivation marks the
 * listing first, then reopens the calendar. Each also brings the calendar in line when the
 * listing already was as asked, which heals a calendar a crash left between the two steps.
 */
export async function setListingActive(
  side: CommandSide,
  listingId: string,
  active: boolean,
  request: CommandOptions,
): Promise<CommandOutcome> {
  const stream = listingStreamId(listingId);
  const calendar = listingCalendarStreamId(listingId);
  const data = { listingId, actor: request.context.actor };
  const command = active ? { type: 'ReactivateListing' as const, data } : { type: 'DeactivateListing' as const, data };
  if (!active) {
    // The listing's append comes last: a retry of a deactivation that went through is answered as it was.
    const original = await side.handlers.listing.applied(stream, request.commandId);
    if (original) return outcome(listingId, original);
    const { state, version } = await side.handlers.listing.read(stream);
    // Whatever would refuse the deactivation (who asks, a stale If-Match) refuses before the calendar closes.
    assertExpectedVersion(stream, request.expectedVersion, version, () => listingDecider.decide(command, state));
    listingDecider.decide(command, state);
    const close = (options: CommandOptions) =>
      // A retry whose close was undone below closes again rather than take the close for done.
      takeStep(
        options,
        (stepOptions) => side.handlers.listingCalendar.handle(calendar, { type: 'CloseCalendar', data: { listingId } }, stepOptions),
        (calendarState) => calendarState.closed,
      );
    const closed = await close(unpinned(request));
    // Nothing appended: someone else's close stands, maybe a deactivation about to be refused.
    const closedByOther = closed.events.length === 0 && !closed.alreadyApplied;
    let result: CommandResult<ListingState, ListingEvent>;
    try {
      result = await side.handlers.listing.handle(stream, command, request);
    } catch (error) {
      if (!closedByOther) await reopenUnlessDeactivated(side, listingId, request);
      throw error;
    }
    // That other deactivation, refused, undoes its close: the calendar is closed again now that
    // this one is in.
    if (closedByOther) await close({ ...unpinned(request), commandId: `${request.commandId}:closed-after` });
    return outcome(listingId, result);
  }
  const result = await side.handlers.listing.handle(stream, command, request);
  const reopened = await side.handlers.listingCalendar.handle(calendar, { type: 'ReopenCalendar', data: { listingId } }, unpinned(request));
  return outcome(listingId, result, reopened);
}

/**
 * A deactivation refused after its calendar closed (an If-Match that another change overtook)
 * must leave the listing as it found it: active and bookable. Left closed, the listing stayed
 * listed yet refused every booking until someone deactivated or reactivated it. When the
 * listing has been deactivated meanwhile the close is its own, and stays.
 */
async function reopenUnlessDeactivated(side: CommandSide, listingId: string, request: CommandOptions): Promise<void> {
  try {
    const { state } = await side.handlers.listing.read(listingStreamId(listingId));
    if (state.status !== 'active') return;
    const reopen = { type: 'ReopenCalendar' as const, data: { listingId } };
    const calendar = listingCalendarStreamId(listingId);
    // Under ids of its own, and taken again when a retry's refusal finds the close repeated.
    await takeStep(compensating(request, 'close'), (options) => side.handlers.listingCalendar.handle(calendar, reopen, options), (calendarState) => !calendarState.closed);
  } catch {
    // The refusal is what the caller hears; a calendar left closed is healed by the next
    // deactivation or reactivation, which bring it in line with the listing.
  }
}
