import type { ListingDetails, ListingPrice } from '../../domain/listing/listing.events.js';
import { listingCalendarStreamId } from '../../domain/listing-calendar/listing-calendar.decider.js';
import { listingDecider, listingStreamId } from '../../domain/listing/listing.decider.js';
import { hasRole } from '../../domain/shared/actor.js';
import { requireUserWithRole } from '../authorization/registered-users.js';
import { deterministicUuid } from '../ids.js';
import type { CommandSide } from '../command-handlers.js';
import { outcome, unpinned, type CommandOutcome } from '../command-handling/command-outcome.js';
import { assertExpectedVersion } from '../command-handling/errors.js';
import type { CommandOptions } from '../command-handling/handle-command.js';

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
    assertExpectedVersion(stream, request.expectedVersion, version);
    listingDecider.decide(command, state);
    await side.handlers.listingCalendar.handle(calendar, { type: 'CloseCalendar', data: { listingId } }, unpinned(request));
  }
  const result = await side.handlers.listing.handle(stream, command, request);
  if (!active) return outcome(listingId, result);
  const reopened = await side.handlers.listingCalendar.handle(calendar, { type: 'ReopenCalendar', data: { listingId } }, unpinned(request));
  return outcome(listingId, result, reopened);
}
