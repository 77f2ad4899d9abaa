import { hasRole, type Actor } from '../shared/actor.js';
import { assertNever, type Decider } from '../shared/decider.js';
import { DomainError, NotFoundError } from '../shared/domain-error.js';
import { ForbiddenError } from '../shared/forbidden-error.js';
import { isTimeZone } from '../shared/time-zone.js';
import type {
  CreateListing,
  DeactivateListing,
  ListingCommand,
  ReactivateListing,
  UpdateListing,
} from './listing.commands.js';
import { maxCapacity, type ListingDeactivatedData, type ListingDetails, type ListingEvent, type ListingPrice } from './listing.events.js';

export const listingStreamId = (listingId: string) => `listing-${listingId}`;

export type Listing = {
  readonly listingId: string;
  readonly ownerId: string;
  readonly details: ListingDetails;
  readonly price: ListingPrice;
};

export type ListingState =
  | { readonly status: 'none' }
  | { readonly status: 'active'; readonly listing: Listing }
  /** `moderated`: an admin other than the owner deactivated it; the owner may not reactivate it. */
  | { readonly status: 'inactive'; readonly listing: Listing; readonly moderated: boolean };

export const initialState: ListingState = { status: 'none' };

function existing(state: ListingState, listingId: string): Listing {
  if (state.status === 'none') throw new NotFoundError(`listing ${listingId}`);
  return state.listing;
}

/** The owner manages their listing; an admin may step in (moderation, support). */
function assertMayManage(actor: Actor, listing: Listing): void {
  if (actor.id !== listing.ownerId && !hasRole(actor, 'ADMIN')) {
    throw new ForbiddenError(`only the owner of listing ${listing.listingId} or an admin may change it`);
  }
}

/** An admin acting on someone else's listing moderates it: its owner may not undo that. */
function moderates(actor: Actor, listing: Listing): boolean {
  return hasRole(actor, 'ADMIN') && actor.id !== listing.ownerId;
}

/**
 * Whether a deactivation moderated the listing: said so since moderation is recorded; on one
 * stored before, told from who made it by the rule of `moderates`.
 */
function wasModeration({ moderated, deactivatedBy }: ListingDeactivatedData, listing: Listing): boolean {
  if (moderated === true) return true;
  return deactivatedBy !== undefined && deactivatedBy.admin && deactivatedBy.id !== listing.ownerId;
}

/** Checked here as well as by the schemas, because a bad price or zone would poison every booking. */
function assertValidTerms(details: ListingDetails, price: ListingPrice): void {
  if (!Number.isSafeInteger(price.pricePerDay) || price.pricePerDay <= 0) {
    throw new DomainError('invalid-price', 'pricePerDay must be a positive whole number of minor units');
  }
  if (!Number.isSafeInteger(details.capacity) || details.capacity <= 0) throw invalidCapacity();
  if (!isTimeZone(details.timeZone)) throw new DomainError('invalid-time-zone', `unknown time zone ${details.timeZone}`);
}

/**
 * The bound holds for a capacity a command sets: a listing stored with more before the bound
 * existed keeps it, and its other terms can still change.
 */
function assertCapacitySet(capacity: number | undefined): void {
  if (capacity !== undefined && capacity > maxCapacity) throw invalidCapacity();
}

const invalidCapacity = () => new DomainError('invalid-capacity', `capacity must be a whole number from 1 to ${maxCapacity}`);

function sameDetails(a: ListingDetails, b: ListingDetails): boolean {
  return (
    a.title === b.title &&
    a.description === b.description &&
    a.category === b.category &&
    a.location === b.location &&
    a.capacity === b.capacity &&
    a.timeZone === b.timeZone
  );
}

function createListing({ data }: CreateListing, state: ListingState): ListingEvent[] {
  if (state.status !== 'none') throw new DomainError('already-exists', `listing ${data.listingId} already exists`);
  const ownerId = data.ownerId ?? data.actor.id;
  if (ownerId !== data.actor.id && !hasRole(data.actor, 'ADMIN')) throw new ForbiddenError('only an admin may create a listing for someone else');
  if (ownerId === data.actor.id && !hasRole(data.actor, 'OWNER')) {
    throw new ForbiddenError('only an OWNER may own a listing; an admin names the owner it creates one for (ownerId)');
  }
  const { title, description, category, location, capacity } = data;
  const details: ListingDetails = { title, description, category, location, capacity, timeZone: data.timeZone ?? 'UTC' };
  const price: ListingPrice = { pricePerDay: data.pricePerDay, currency: data.currency };
  assertValidTerms(details, price);
  assertCapacitySet(capacity);
  return [{ type: 'ListingCreated', data: { listingId: data.listingId, ownerId, ...details, ...price } }];
}

/** Only what differs becomes an event; an update that changes nothing is already true: no events. */
function updateListing({ data }: UpdateListing, state: ListingState): ListingEvent[] {
  const listing = existing(state, data.listingId);
  assertMayManage(data.actor, listing);
  const details: ListingDetails = {
    title: data.title ?? listing.details.title,
    description: data.description ?? listing.details.description,
    category: data.category ?? listing.details.category,
    location: data.location ?? listing.details.location,
    capacity: data.capacity ?? listing.details.capacity,
    timeZone: data.timeZone ?? listing.details.timeZone,
  };
  const price: ListingPrice = {
    pricePerDay: data.pricePerDay ?? listing.price.pricePerDay,
    currency: data.currency ?? listing.price.currency,
  };
  assertValidTerms(details, price);
  assertCapacitySet(data.capacity);
  const events: ListingEvent[] = [];
  if (!sameDetails(details, listing.details)) {
    events.push({ type: 'ListingDetailsUpdated', data: { listingId: listing.listingId, ...details } });
  }
  if (price.pricePerDay !== listing.price.pricePerDay || price.currency !== listing.price.currency) {
    events.push({ type: 'ListingPriceChanged', data: { listingId: listing.listingId, ...price } });
  }
  return events;
}

function deactivateListing({ data }: DeactivateListing, state: ListingState): ListingEvent[] {
  const listing = existing(state, data.listingId);
  assertMayManage(data.actor, listing);
  const moderated = moderates(data.actor, listing);
  // An admin still moderates a listing its owner deactivated: else the owner, having
  // deactivated it first, could reactivate it whenever they liked.
  if (state.status === 'inactive' && (state.moderated || !moderated)) return [];
  return [{ type: 'ListingDeactivated', data: { listingId: listing.listingId, ...(moderated ? { moderated: true as const } : {}) } }];
}

function reactivateListing({ data }: ReactivateListing, state: ListingState): ListingEvent[] {
  const listing = existing(state, data.listingId);
  assertMayManage(data.actor, listing);
  if (state.status === 'active') return [];
  if (state.status === 'inactive' && state.moderated && !hasRole(data.actor, 'ADMIN')) {
    throw new ForbiddenError(`an admin deactivated listing ${listing.listingId}; only an admin may reactivate it`);
  }
  return [{ type: 'ListingReactivated', data: { listingId: listing.listingId } }];
}

export function decide(command: ListingCommand, state: ListingState): ListingEvent[] {
  switch (command.type) {
    case 'CreateListing':
      return createListing(command, state);
    case 'UpdateListing':
      return updateListing(command, state);
    case 'DeactivateListing':
      return deactivateListing(command, state);
    case 'ReactivateListing':
      return reactivateListing(command, state);
    default:
      return assertNever(command);
  }
}

/** Total: an event that does not fit the state (never emitted by `decide`) leaves it as it is. */
export function evolve(state: ListingState, event: ListingEvent): ListingState {
  switch (event.type) {
    case 'ListingCreated': {
      const { listingId, ownerId, pricePerDay, currency, title, description, category, location, capacity, timeZone } = event.data;
      const details = { title, description, category, location, capacity, timeZone };
      return { status: 'active', listing: { listingId, ownerId, details, price: { pricePerDay, currency } } };
    }
    case 'ListingDetailsUpdated': {
      if (state.status === 'none') return state;
      const { title, description, category, location, capacity, timeZone } = event.data;
      return { ...state, listing: { ...state.listing, details: { title, description, category, location, capacity, timeZone } } };
    }
    case 'ListingPriceChanged': {
      if (state.status === 'none') return state;
      const { pricePerDay, currency } = event.data;
      return { ...state, listing: { ...state.listing, price: { pricePerDay, currency } } };
    }
    case 'ListingDeactivated': {
      if (state.status === 'none') return state;
      // Only a reactivation lifts moderation.
      const moderated = (state.status === 'inactive' && state.moderated) || wasModeration(event.data, state.listing);
      return { status: 'inactive', listing: state.listing, moderated };
    }
    case 'ListingReactivated':
      return state.status === 'none' ? state : { status: 'active', listing: state.listing };
    default:
      return assertNever(event);
  }
}

export const listingDecider: Decider<ListingCommand, ListingEvent, ListingState> = { initialState, decide, evolve };
