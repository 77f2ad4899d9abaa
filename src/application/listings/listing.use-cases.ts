import type { ListingDetails, ListingEvent, ListingPrice } from '../../domain/listing/listing.events.js';
import { listingCalendarStreamId, type ListingCalendarState } from '../../domain/listing-calendar/listing-calendar.decider.js';
import type { ListingCalendarEvent } from '../../domain/listing-calendar/listing-calendar.events.js';
import { listingDecider, listingStreamId, type ListingState } from '../../domain/listing/listing.decider.js';
import { hasRole } from '../../domain/shared/actor.js';
import { requireUserWithRole } from '../authorization/registered-users.js';
import { deterministicUuid } from '../ids.js';
import type { CommandSide } from '../command-handlers.js';
import { compensating, outcome, refusedAfter, takeStep, unpinned, type CommandOutcome } from '../command-handling/command-outcome.js';
import { appendedNothing, assertExpectedVersion, TooMuchContentionError, VersionMismatchError } from '../command-handling/errors.js';
import type { CommandOptions, CommandResult } from '../command-handling/handle-command.js';

export type CreateListingInput = Omit<ListingDetails, 'timeZone'> & Partial<Pick<ListingDetails, 'timeZone'>> & ListingPrice & { ownerId?: string | undefined };
export type UpdateListingInput = Partial<ListingDetails & ListingPrice>;

/** The listing `CreateListing` command `commandId` creates: a retry names the same one. */
export const createdListingId = (commandId: string): string => deterministicUuid('listing', commandId);

export async function createListing(side: CommandSide, input: CreateListingInput, request: CommandOptions): Promise<CommandOutcome> {
  const listingId = createdListingId(request.commandId);
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
 * listing first. Each ends with the calendar following the listing as it is then
 * (`calendarFollowsListing`), which also heals a calendar a crash left between the two steps.
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
  const follow = { ...unpinned(request), commandId: `${request.commandId}:follow` };
  if (active) {
    const result = await side.handlers.listing.handle(stream, command, request);
    return outcome(listingId, result, ...(await calendarFollowsListing(side, listingId, follow)));
  }
  // The listing's append comes last: a retry of a deactivation that went through is answered as it
  // was, and its calendar follows the listing again (answered with the close the first try
  // recorded, if it is found applied). The first try may not have got to it: its listing append
  // landed after its failure was answered, and the calendar was reopened meanwhile (the owner,
  // finding the listing still active, reactivated it).
  const original = await side.handlers.listing.applied(stream, request.commandId);
  if (original) return outcome(listingId, original, ...(await calendarFollowsListing(side, listingId, follow, { afterDeactivation: true })));
  const { state, version } = await side.handlers.listing.read(stream);
  // Whatever would refuse the deactivation (who asks, a stale If-Match) refuses before the calendar closes.
  assertExpectedVersion(stream, request.expectedVersion, version, () => listingDecider.decide(command, state));
  listingDecider.decide(command, state);
  // A retry whose close was undone below closes again rather than take the close for done.
  const closed = await takeStep(
    unpinned(request),
    (options) => side.handlers.listingCalendar.handle(calendar, { type: 'CloseCalendar', data: { listingId } }, options),
    (calendarState) => calendarState.closed,
  );
  let result: CommandResult<ListingState, ListingEvent>;
  try {
    result = await side.handlers.listing.handle(stream, command, request);
  } catch (error) {
    // Refused after the close (an If-Match another change overtook): the listing stays as it
    // was, active and bookable, unless it has been deactivated meanwhile. A failure that leaves
    // the append unknown (the connection died) is not undone: the append may still land, and
    // reopening now, on the listing still active, would leave it deactivated with its calendar
    // open. The caller hears the error either way; a calendar left behind (undone or not) is
    // healed by the hold-expiry process, or by the keyed retry.
    const followed = appendedNothing(error) ? await calendarFollowsListing(side, listingId, compensating(request, 'close')).catch(() => []) : [];
    refusedAfter(error, [closed, ...followed]);
    throw error;
  }
  return outcome(listingId, result, ...(await calendarFollowsListing(side, listingId, follow, { afterDeactivation: true })));
}

/** The id of the calendar step a follow takes for one version of the listing: retries and second instances take it once. */
function followStepId(follow: CommandOptions, listingVersion: number): string {
  return `${follow.commandId}@${listingVersion}`;
}

/** Tries of `calendarFollowsListing` that find the listing changed while they moved the calendar. */
const followAttempts = 20;

/**
 * The calendar closed while the listing is inactive and open while it is active, as the listing
 * is now. A deactivation and a reactivation racing each other both end here, and either could
 * move the calendar after the other on a listing it read before the other's append: so each moves
 * it only as the listing was at one version, and reads the listing again after; a version that
 * moved meanwhile means another look. The last one to move the calendar thus did so as the
 * listing still is.
 *
 * That alone left a window: a reactivation's reopen, decided on the listing before a deactivation,
 * could land after the deactivation had found the calendar closed and been answered, and holds
 * were taken until the reactivation's next look closed it again. So each look reads the calendar
 * before the listing, a reopen is pinned to the calendar as it was then, and a deactivation's
 * close is recorded even on a closed calendar (`afterDeactivation`): a reopen that read the
 * calendar before it is refused and looks again, and one that read it after reads the listing
 * deactivated. Each step's id names the listing version it follows: retries and second instances
 * take it once. Returns the steps, for the position a reader must reach to see the calendar as
 * they left it.
 */
export async function calendarFollowsListing(
  side: CommandSide,
  listingId: string,
  request: CommandOptions,
  options: { readonly afterDeactivation?: boolean } = {},
): Promise<CommandResult<ListingCalendarState, ListingCalendarEvent>[]> {
  const stream = listingStreamId(listingId);
  const calendar = listingCalendarStreamId(listingId);
  const steps: CommandResult<ListingCalendarState, ListingCalendarEvent>[] = [];
  for (let attempt = 1; ; attempt++) {
    // Each look that comes to no end is a write in between: past so many, the caller hears of it
    // (and the hold-expiry process, which also follows, keeps the listing pending) rather than
    // a calendar silently left out of step.
    if (attempt > followAttempts) throw new TooMuchContentionError(calendar, followAttempts);
    const calendarSeen = await side.handlers.listingCalendar.read(calendar);
    const seen = await side.handlers.listing.read(stream);
    if (seen.state.status === 'none') break;
    const open = seen.state.status === 'active';
    const commandId = followStepId(request, seen.version);
    if (open && !calendarSeen.state.closed) {
      // Open already: nothing to reopen, and nothing to pin a reopen to on a busy calendar. A
      // retry is answered with the reopen its first try made.
      const again = await side.handlers.listingCalendar.applied(calendar, commandId);
      steps.push(again ?? { streamId: calendar, ...calendarSeen, events: [], alreadyApplied: false });
    } else {
      const command = open
        ? { type: 'ReopenCalendar' as const, data: { listingId } }
        : { type: 'CloseCalendar' as const, data: { listingId, ...(options.afterDeactivation ? { afterDeactivation: true as const } : {}) } };
      const stepRequest = { ...request, commandId, ...(open ? { expectedVersion: calendarSeen.version } : {}) };
      try {
        steps.push(
          await takeStep(
            stepRequest,
            (stepOptions) => side.handlers.listingCalendar.handle(calendar, command, stepOptions),
            (calendarState) => calendarState.closed !== open,
          ),
        );
      } catch (error) {
        // The calendar moved since it was read: look at both again.
        if (error instanceof VersionMismatchError) continue;
        throw error;
      }
    }
    const now = await side.handlers.listing.read(stream);
    if (now.version === seen.version) return steps;
  }
  return steps;
}
