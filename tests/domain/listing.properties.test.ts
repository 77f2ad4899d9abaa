import { fc, test } from '@fast-check/vitest';
import { expect } from 'vitest';
import type { Actor } from '../../src/domain/shared/actor.js';
import { DomainError } from '../../src/domain/shared/domain-error.js';
import type { ListingCommand } from '../../src/domain/listing/listing.commands.js';
import { listingDecider, type ListingState } from '../../src/domain/listing/listing.decider.js';

const listingId = 'listing-p';
const actors: Actor[] = [
  { id: 'owner-1', roles: ['OWNER'] },
  { id: 'owner-2', roles: ['OWNER'] },
  { id: 'admin-1', roles: ['ADMIN'] },
  { id: 'consumer-1', roles: ['CONSUMER'] },
];
const actor = fc.constantFrom(...actors);
// Mostly valid values, with some that a rule must refuse.
const price = fc.oneof(fc.integer({ min: 1, max: 100_000 }), fc.constantFrom(0, -5, 2.5));
const capacity = fc.oneof(fc.integer({ min: 1, max: 12 }), fc.constant(0));
const timeZone = fc.constantFrom('UTC', 'Europe/Lisbon', 'America/New_York', 'Not/AZone');
const currency = fc.constantFrom('EUR', 'USD');

const command: fc.Arbitrary<ListingCommand> = fc.oneof(
  fc.record({
    type: fc.constant('CreateListing' as const),
    data: fc.record({
      listingId: fc.constant(listingId),
      actor,
      title: fc.constantFrom('Cabin', 'Loft'),
      description: fc.constantFrom('', 'Nice'),
      category: fc.constantFrom('cabin', 'loft'),
      location: fc.constantFrom('Porto', 'Oslo'),
      capacity,
      timeZone,
      pricePerDay: price,
      currency,
    }),
  }),
  fc.record({
    type: fc.constant('UpdateListing' as const),
    data: fc.record(
      { listingId: fc.constant(listingId), actor, title: fc.constantFrom('Cabin', 'Hut'), capacity, timeZone, pricePerDay: price, currency },
      { requiredKeys: ['listingId', 'actor'] },
    ),
  }),
  fc.record({ type: fc.constant('DeactivateListing' as const), data: fc.record({ listingId: fc.constant(listingId), actor }) }),
  fc.record({ type: fc.constant('ReactivateListing' as const), data: fc.record({ listingId: fc.constant(listingId), actor }) }),
);

function decideOrKeep(command: ListingCommand, state: ListingState) {
  try {
    return listingDecider.decide(command, state);
  } catch (error) {
    if (error instanceof DomainError) return undefined;
    throw error;
  }
}

test.prop([fc.array(command, { maxLength: 30 })])('evolve accepts whatever decide emits and the listing stays well-formed', (commands) => {
  let state = listingDecider.initialState;
  let ownerId: string | undefined;
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
  }
});

test.prop([fc.array(command, { maxLength: 20 }), command])('a command that succeeded is already true when repeated', (history, cmd) => {
  let state = listingDecider.initialState;
  for (const earlier of history) for (const event of decideOrKeep(earlier, state) ?? []) state = listingDecider.evolve(state, event);
  const events = decideOrKeep(cmd, state);
  if (!events || cmd.type === 'CreateListing') return;
  for (const event of events) state = listingDecider.evolve(state, event);
  expect(listingDecider.decide(cmd, state)).toEqual([]);
});
