import { fc } from '@fast-check/vitest';
import { expect, it } from 'vitest';
import type { Actor } from '../../src/domain/shared/actor.js';
import { hasRole } from '../../src/domain/shared/actor.js';
import { DomainError } from '../../src/domain/shared/domain-error.js';
import { ForbiddenError } from '../../src/domain/shared/forbidden-error.js';
import type { ListingCommand } from '../../src/domain/listing/listing.commands.js';
import { listingDecider, type ListingState } from '../../src/domain/listing/listing.decider.js';
import type { ListingEvent } from '../../src/domain/listing/listing.events.js';
import { upcastListingDeactivatedV1 } from '../../src/domain/listing/listing.upcasters.js';

const listingId = 'listing-p';
const owner: Actor = { id: 'owner-1', roles: ['OWNER'] };
const otherOwner: Actor = { id: 'owner-2', roles: ['OWNER'] };
const admin: Actor = { id: 'admin-1', roles: ['ADMIN'] };
/** owner-1 holding the ADMIN role too: what they do to their own listing is not moderation. */
const ownerAdmin: Actor = { id: owner.id, roles: ['OWNER', 'ADMIN'] };
const consumer: Actor = { id: 'consumer-1', roles: ['CONSUMER'] };

/** Nine times in ten the usual, else the rare: mostly values the rules accept, so that runs get past the first refusal. */
const mostly = <T>(usual: fc.Arbitrary<T>, rare: fc.Arbitrary<T>) => fc.oneof({ weight: 9, arbitrary: usual }, { weight: 1, arbitrary: rare });

const validPrice = fc.integer({ min: 1, max: 100_000 });
const validCapacity = fc.integer({ min: 1, max: 12 });
const validTimeZone = fc.constantFrom('UTC', 'Europe/Lisbon', 'America/New_York');
const price = mostly(validPrice, fc.constantFrom(0, -5, 2.5));
const capacity = mostly(validCapacity, fc.constant(0));
const timeZone = mostly(validTimeZone, fc.constant('Not/AZone'));
const currency = fc.constantFrom('EUR', 'USD');
// Mostly someone who may manage owner-1's listing.
const actor = mostly(fc.constantFrom(owner, owner, admin, ownerAdmin), fc.constantFrom(otherOwner, consumer));

const createFrom = (values: { actor: fc.Arbitrary<Actor>; capacity: fc.Arbitrary<number>; timeZone: fc.Arbitrary<string>; pricePerDay: fc.Arbitrary<number> }) =>
  fc.record({
    type: fc.constant('CreateListing' as const),
    data: fc.record({
      listingId: fc.constant(listingId),
      actor: values.actor,
      title: fc.constantFrom('Cabin', 'Loft'),
      description: fc.constantFrom('', 'Nice'),
      category: fc.constantFrom('cabin', 'loft'),
      location: fc.constantFrom('Porto', 'Oslo'),
      capacity: values.capacity,
      timeZone: values.timeZone,
      pricePerDay: values.pricePerDay,
      currency,
    }),
  });
const validCreate = createFrom({ actor: fc.constant(owner), capacity: validCapacity, timeZone: validTimeZone, pricePerDay: validPrice });
const create = createFrom({ actor, capacity, timeZone, pricePerDay: price });

const changes = fc.record({ title: fc.constantFrom('Cabin', 'Hut'), capacity, timeZone, pricePerDay: price, currency }, { requiredKeys: [] });

const command: fc.Arbitrary<ListingCommand> = fc.oneof(
  { weight: 1, arbitrary: create },
  { weight: 4, arbitrary: fc.record({ actor, changes }).map(({ actor, changes }): ListingCommand => ({ type: 'UpdateListing', data: { listingId, actor, ...changes } })) },
  { weight: 2, arbitrary: actor.map((actor): ListingCommand => ({ type: 'DeactivateListing', data: { listingId, actor } })) },
  { weight: 2, arbitrary: actor.map((actor): ListingCommand => ({ type: 'ReactivateListing', data: { listingId, actor } })) },
);

// Nine runs in ten start with a listing, so that the commands after it have one to act on; the
// rest start from nothing, so that a create a rule refuses is tried too.
const history = fc.tuple(mostly(validCreate, create), fc.array(command, { minLength: 5, maxLength: 30 })).map(([first, rest]) => [first, ...rest]);

type ExistingListing = Exclude<ListingState, { status: 'none' }>;

/**
 * A command made for the listing as it stands, so that it usually succeeds and changes something:
 * by its owner or an admin, either an update or a switch to the other status.
 */
const nextChange = fc.record({ byAdmin: fc.boolean(), update: fc.option(changes, { freq: 3, nil: undefined }) }).map(
  ({ byAdmin, update }) =>
    (state: ExistingListing): ListingCommand => {
      const actor: Actor = byAdmin ? admin : { id: state.listing.ownerId, roles: ['OWNER'] };
      if (update) return { type: 'UpdateListing', data: { listingId, actor, ...update } };
      return { type: state.status === 'active' ? 'DeactivateListing' : 'ReactivateListing', data: { listingId, actor } };
    },
);

function decideOrKeep(command: ListingCommand, state: ListingState) {
  try {
    return listingDecider.decide(command, state);
  } catch (error) {
    if (error instanceof DomainError) return undefined;
    throw error;
  }
}

const numRuns = 200;

it('evolve accepts whatever decide emits and the listing stays well-formed', () => {
  let reactivatedRuns = 0;
  fc.assert(
    fc.property(history, (commands) => {
      let state = listingDecider.initialState;
      let ownerId: string | undefined;
      let reactivated = false;
      for (const cmd of commands) {
        const events = decideOrKeep(cmd, state);
        if (!events) continue;
        const before = state;
        for (const event of events) state = listingDecider.evolve(state, event);
        if (before.status !== 'none') expect(state.status).not.toBe('none');
        if (state.status === 'none') continue;
        ownerId ??= state.listing.ownerId;
        expect(state.listing.ownerId).toBe(ownerId);
        expect(Number.isSafeInteger(state.listing.price.pricePerDay) && state.listing.price.pricePerDay > 0).toBe(true);
        expect(state.listing.details.capacity).toBeGreaterThan(0);
        if (before.status === 'inactive' && state.status === 'active') reactivated = true;
      }
      if (reactivated) reactivatedRuns += 1;
    }),
    { numRuns },
  );
  // The generators are meant to take most runs through a whole life: created, changed, deactivated, back.
  expect(reactivatedRuns).toBeGreaterThan(numRuns / 4);
});

it('a command that succeeded is already true when repeated', () => {
  let changedRuns = 0;
  fc.assert(
    fc.property(history, nextChange, (commands, next) => {
      let state = listingDecider.initialState;
      for (const earlier of commands) for (const event of decideOrKeep(earlier, state) ?? []) state = listingDecider.evolve(state, event);
      if (state.status === 'none') return;
      const cmd = next(state);
      const events = decideOrKeep(cmd, state);
      if (!events) return;
      if (events.length > 0) changedRuns += 1;
      for (const event of events) state = listingDecider.evolve(state, event);
      expect(listingDecider.decide(cmd, state)).toEqual([]);
    }),
    { numRuns },
  );
  // Repeating a command that changed nothing proves little: most runs should repeat one that did.
  expect(changedRuns).toBeGreaterThan(numRuns / 2);
});

/** Twice the switches of `history`, so that most runs see an admin deactivate and the owner try to undo it. */
const switches = fc.oneof(
  command,
  fc.record({ type: fc.constantFrom('DeactivateListing' as const, 'ReactivateListing' as const), actor }).map(({ type, actor }): ListingCommand => ({ type, data: { listingId, actor } })),
);
const moderationHistory = fc.tuple(validCreate, fc.array(switches, { minLength: 5, maxLength: 30 })).map(([first, rest]) => [first, ...rest]);

it('an owner never reactivates a listing an admin deactivated; an admin may', () => {
  let refusedRuns = 0;
  fc.assert(
    fc.property(moderationHistory, (commands) => {
      let state = listingDecider.initialState;
      // Kept from the commands that went through, apart from the state the decider keeps.
      let moderated = false;
      let refused = false;
      for (const cmd of commands) {
        if (state.status === 'inactive' && moderated && cmd.type === 'ReactivateListing' && !hasRole(cmd.data.actor, 'ADMIN')) {
          expect(() => listingDecider.decide(cmd, state)).toThrow(ForbiddenError);
          if (cmd.data.actor.id !== state.listing.ownerId) continue;
          expect(() => listingDecider.decide(cmd, state)).toThrow(/an admin deactivated/);
          refused = true;
          continue;
        }
        const events = decideOrKeep(cmd, state);
        if (state.status === 'inactive' && moderated && cmd.type === 'ReactivateListing') expect(events).toEqual([{ type: 'ListingReactivated', data: { listingId } }]);
        if (!events) continue;
        for (const event of events) state = listingDecider.evolve(state, event);
        if (state.status === 'none') continue;
        const byModerator = hasRole(cmd.data.actor, 'ADMIN') && cmd.data.actor.id !== state.listing.ownerId;
        if (cmd.type === 'DeactivateListing' && byModerator) moderated = true;
        if (cmd.type === 'ReactivateListing') moderated = false;
        expect(state.status === 'inactive' && state.moderated).toBe(state.status === 'inactive' && moderated);
      }
      if (refused) refusedRuns += 1;
    }),
    { numRuns },
  );
  expect(refusedRuns).toBeGreaterThan(numRuns / 10);
});

/** A deactivation as version 1 stored it before moderation was recorded, read back: no flag, who made it from the metadata. */
const storedBeforeModeration = (event: ListingEvent, by: Actor): ListingEvent =>
  event.type === 'ListingDeactivated'
    ? { type: 'ListingDeactivated', data: upcastListingDeactivatedV1({ listingId: event.data.listingId }, { actorId: by.id, actorRoles: by.roles }) }
    : event;

it('a history stored before moderation was recorded, read back through the upcaster, folds to the same state', () => {
  let moderatedRuns = 0;
  fc.assert(
    fc.property(moderationHistory, (commands) => {
      let state = listingDecider.initialState;
      let stored = listingDecider.initialState;
      let moderated = false;
      for (const cmd of commands) {
        for (const event of decideOrKeep(cmd, state) ?? []) {
          state = listingDecider.evolve(state, event);
          stored = listingDecider.evolve(stored, storedBeforeModeration(event, cmd.data.actor));
        }
        expect(stored).toEqual(state);
        if (state.status === 'inactive' && state.moderated) moderated = true;
      }
      if (moderated) moderatedRuns += 1;
    }),
    { numRuns },
  );
  expect(moderatedRuns).toBeGreaterThan(numRuns / 4);
});
