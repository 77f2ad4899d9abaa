import type { ListingDetails, ListingPrice } from '../../domain/listing/listing.events.js';
import { listingStreamId } from '../../domain/listing/listing.decider.js';
import { deterministicUuid } from '../ids.js';
import type { CommandSide } from '../command-handlers.js';
import { outcome, unpinned, type CommandOutcome } from '../command-handling/command-outcome.js';
import type { CommandOptions } from '../command-handling/handle-command.js';

export type CreateListingInput = Omit<ListingDetails, 'timeZone'> & Partial<Pick<ListingDetails, 'timeZone'>> & ListingPrice;
export type UpdateListingInput = Partial<ListingDetails & ListingPrice>;

export async function createListing(side: CommandSide, input: CreateListingInput, request: CommandOptions): Promise<CommandOutcome> {
  const listingId = deterministicUuid('listing', request.commandId);
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

export async function setListingActive(
  side: CommandSide,
  listingId: string,
  active: boolean,
  request: CommandOptions,
): Promise<CommandOutcome> {
  const data = { listingId, actor: request.context.actor };
  const command = active ? { type: 'ReactivateListing' as const, data } : { type: 'DeactivateListing' as const, data };
  const result = await side.handlers.listing.handle(listingStreamId(listingId), command, request);
  return outcome(listingId, result);
}
