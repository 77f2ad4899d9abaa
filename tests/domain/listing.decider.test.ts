import { describe, expect, it } from 'vitest';
import type { Actor } from '../../src/domain/shared/actor.js';
import { fold } from '../../src/domain/shared/decider.js';
import { createListingSchema } from '../../src/domain/listing/listing.commands.js';
import type { CreateListing, ListingCommand } from '../../src/domain/listing/listing.commands.js';
import { listingDecider, listingStreamId } from '../../src/domain/listing/listing.decider.js';
import { listingEventSchema, maxCapacity, type ListingEvent } from '../../src/domain/listing/listing.events.js';
import { aggregates } from '../../src/application/aggregates/aggregates.js';
import { deciderSpec } from '../support/decider-spec.js';

const spec = deciderSpec(listingDecider);
const owner: Actor = { id: 'owner-1', roles: ['OWNER'] };
const stranger: Actor = { id: 'owner-2', roles: ['OWNER', 'CONSUMER'] };
const admin: Actor = { id: 'admin-1', roles: ['ADMIN'] };
/** The listing's owner who is also an admin: their deactivation is their own, not moderation. */
const ownerAdmin: Actor = { id: owner.id, roles: ['OWNER', 'ADMIN'] };
const listingId = 'listing-a';

const details = {
  title: 'Cabin by the lake',
  description: 'Quiet, wood stove, sleeps four.',
  category: 'cabin',
  location: 'Hallstatt',
  capacity: 4,
};

const create = (overrides: Partial<CreateListing['data']> = {}): CreateListing => ({
  type: 'CreateListing',
  data: { listingId, actor: owner, ...details, pricePerDay: 12_000, currency: 'EUR', timeZone: 'Europe/Vienna', ...overrides },
});

const created: ListingEvent = {
  type: 'ListingCreated',
  data: { listingId, ownerId: owner.id, ...details, timeZone: 'Europe/Vienna', pricePerDay: 12_000, currency: 'EUR' },
};
const deactivated: ListingEvent = { type: 'ListingDeactivated', data: { listingId } };
const moderated: ListingEvent = { type: 'ListingDeactivated', data: { listingId, moderated: true } };
/**
 * A deactivation as stored before moderation was recorded (version 1, no flag), read back as the
 * service reads it: through the listing's codec, with the metadata that says who made it.
 */
const storedBefore = (by: Actor | undefined): ListingEvent =>
  aggregates.listing.codec.decode({
    type: 'ListingDeactivated',
    data: { listingId },
    metadata: { schemaVersion: 1, ...(by ? { actorId: by.id, actorRoles: by.roles } : {}) },
  });

const update = (actor: Actor, changes: Record<string, unknown> = {}): ListingCommand => ({
  type: 'UpdateListing',
  data: { listingId, actor, ...changes },
});

describe('listing stream', () => {
  it('is named listing-<id>', () => expect(listingStreamId('abc')).toBe('listing-abc'));
});

describe('CreateListing', () => {
  it('creates a listing owned by the acting OWNER', () => spec.given([]).when(create()).then([created]));

  it('defaults the time zone to UTC', () => {
    const { timeZone: _omitted, ...withoutZone } = create().data;
    spec
      .given([])
      .when({ type: 'CreateListing', data: withoutZone })
      .then([{ type: 'ListingCreated', data: { ...created.data, timeZone: 'UTC' } }]);
  });

  it('refuses an actor without the OWNER role', () =>
    spec.given([]).when(create({ actor: { id: 'consumer-1', roles: ['CONSUMER'] } })).thenFails('forbidden'));

  it('lets an admin create a listing for an owner, owned by that owner', () =>
    spec.given([]).when(create({ actor: admin, ownerId: owner.id })).then([created]));

  it('refuses an admin without the OWNER role a listing of their own', () => spec.given([]).when(create({ actor: admin })).thenFails('forbidden'));

  it('refuses an owner creating a listing for another owner', () =>
    spec.given([]).when(create({ actor: stranger, ownerId: owner.id })).thenFails('forbidden'));

  it('accepts an owner naming themselves as the owner', () => spec.given([]).when(create({ ownerId: owner.id })).then([created]));

  it('refuses a listing id that exists already', () => spec.given([created]).when(create()).thenFails('already-exists'));

  it.each([0, -100, 12.5])('refuses price %s', (pricePerDay) =>
    spec.given([]).when(create({ pricePerDay })).thenFails('invalid-price'));

  it.each([0, -1, 1.5, maxCapacity + 1, 3_000_000_000])('refuses capacity %s', (capacity) => spec.given([]).when(create({ capacity })).thenFails('invalid-capacity'));

  it('takes the largest capacity there is', () =>
    spec.given([]).when(create({ capacity: maxCapacity })).then([{ ...created, data: { ...created.data, capacity: maxCapacity } }]));

  it('refuses an unknown time zone', () => spec.given([]).when(create({ timeZone: 'Mars/Olympus' })).thenFails('invalid-time-zone'));

  it('has a schema that rejects the same at the edge', () => {
    for (const bad of [{ pricePerDay: 0 }, { pricePerDay: 1.5 }, { currency: 'eur' }, { capacity: 0 }, { capacity: maxCapacity + 1 }, { timeZone: 'Nowhere' }, { title: '' }]) {
      expect(createListingSchema.safeParse(create(bad)).success, JSON.stringify(bad)).toBe(false);
    }
    expect(createListingSchema.safeParse(create()).success).toBe(true);
  });
});

describe('UpdateListing', () => {
  it('records changed details with all details after the change', () =>
    spec
      .given([created])
      .when(update(owner, { title: 'Lake cabin', capacity: 5 }))
      .then([
        {
          type: 'ListingDetailsUpdated',
          data: { listingId, ...details, title: 'Lake cabin', capacity: 5, timeZone: 'Europe/Vienna' },
        },
      ]));

  it('records a price change on its own', () =>
    spec
      .given([created])
      .when(update(owner, { pricePerDay: 15_000 }))
      .then([{ type: 'ListingPriceChanged', data: { listingId, pricePerDay: 15_000, currency: 'EUR' } }]));

  it('records both when both change', () =>
    spec
      .given([created])
      .when(update(owner, { location: 'Gosau', currency: 'CHF' }))
      .then([
        { type: 'ListingDetailsUpdated', data: { listingId, ...details, location: 'Gosau', timeZone: 'Europe/Vienna' } },
        { type: 'ListingPriceChanged', data: { listingId, pricePerDay: 12_000, currency: 'CHF' } },
      ]));

  it('records nothing when nothing differs', () =>
    spec.given([created]).when(update(owner, { title: details.title, pricePerDay: 12_000 })).then([]));

  it('may be done by an admin', () =>
    spec
      .given([created])
      .when(update(admin, { pricePerDay: 9_000 }))
      .then([{ type: 'ListingPriceChanged', data: { listingId, pricePerDay: 9_000, currency: 'EUR' } }]));

  it('may be done while inactive', () =>
    spec
      .given([created, deactivated])
      .when(update(owner, { pricePerDay: 9_000 }))
      .then([{ type: 'ListingPriceChanged', data: { listingId, pricePerDay: 9_000, currency: 'EUR' } }]));

  it('may be done by the owner while an admin holds it deactivated', () =>
    spec
      .given([created, moderated])
      .when(update(owner, { title: 'Lake cabin', pricePerDay: 9_000 }))
      .then([
        { type: 'ListingDetailsUpdated', data: { listingId, ...details, title: 'Lake cabin', timeZone: 'Europe/Vienna' } },
        { type: 'ListingPriceChanged', data: { listingId, pricePerDay: 9_000, currency: 'EUR' } },
      ]));

  it('refuses another owner', () => spec.given([created]).when(update(stranger, { title: 'Mine now' })).thenFails('forbidden'));
  it('refuses a listing that does not exist', () => spec.given([]).when(update(owner, { title: 'x' })).thenFails('not-found'));
  it('refuses a bad price', () => spec.given([created]).when(update(owner, { pricePerDay: -1 })).thenFails('invalid-price'));
  it.each([0, maxCapacity + 1])('refuses capacity %s', (capacity) => spec.given([created]).when(update(owner, { capacity })).thenFails('invalid-capacity'));

  it('still reads a listing stored with a capacity past today\'s bound, and changes its other terms', () => {
    const storedBefore: ListingEvent = { ...created, data: { ...created.data, capacity: 2_000_000 } };
    expect(fold(listingDecider, [storedBefore]).status).toBe('active');
    spec.given([storedBefore]).when(update(owner, { pricePerDay: 9_000 })).then([{ type: 'ListingPriceChanged', data: { listingId, pricePerDay: 9_000, currency: 'EUR' } }]);
  });
  it('refuses a bad time zone', () => spec.given([created]).when(update(owner, { timeZone: 'Nowhere' })).thenFails('invalid-time-zone'));

  it('makes the new price the one later bookings see', () => {
    const state = fold(listingDecider, [created, { type: 'ListingPriceChanged', data: { listingId, pricePerDay: 15_000, currency: 'EUR' } }]);
    expect(state.status === 'active' && state.listing.price).toEqual({ pricePerDay: 15_000, currency: 'EUR' });
  });
});

describe('DeactivateListing', () => {
  const deactivate = (actor: Actor): ListingCommand => ({ type: 'DeactivateListing', data: { listingId, actor } });
  it('deactivates an active listing', () => spec.given([created]).when(deactivate(owner)).then([deactivated]));
  it('by an admin who is not the owner, is recorded as moderation', () => spec.given([created]).when(deactivate(admin)).then([moderated]));
  it('by an owner who is an admin, is their own', () => spec.given([created]).when(deactivate(ownerAdmin)).then([deactivated]));
  it('by an admin, makes the deactivation the owner made first a moderated one', () =>
    spec.given([created, deactivated]).when(deactivate(admin)).then([moderated]));
  it('is already true for an inactive listing', () => spec.given([created, deactivated]).when(deactivate(owner)).then([]));
  it.each([
    ['its owner', owner],
    ['an admin', admin],
  ])('is already true for a moderated listing, asked by %s', (_who, actor) => spec.given([created, moderated]).when(deactivate(actor)).then([]));
  it('refuses another owner', () => spec.given([created]).when(deactivate(stranger)).thenFails('forbidden'));
  it('refuses a listing that does not exist', () => spec.given([]).when(deactivate(owner)).thenFails('not-found'));
  it('leaves an inactive listing', () => expect(fold(listingDecider, [created, deactivated]).status).toBe('inactive'));
  it('leaves an inactive listing that remembers whether it was moderated', () => {
    expect(fold(listingDecider, [created, deactivated])).toMatchObject({ status: 'inactive', moderated: false });
    expect(fold(listingDecider, [created, moderated])).toMatchObject({ status: 'inactive', moderated: true });
    expect(fold(listingDecider, [created, deactivated, moderated])).toMatchObject({ status: 'inactive', moderated: true });
  });
  it('reads a deactivation stored before moderation was recorded as the owner\'s own', () => {
    const stored = listingEventSchema.parse({ type: 'ListingDeactivated', data: { listingId } });
    expect(fold(listingDecider, [created, stored])).toMatchObject({ status: 'inactive', moderated: false });
  });
});

describe('a deactivation stored before moderation was recorded (version 1, read with its metadata)', () => {
  const reactivate = (actor: Actor): ListingCommand => ({ type: 'ReactivateListing', data: { listingId, actor } });
  const deactivate = (actor: Actor): ListingCommand => ({ type: 'DeactivateListing', data: { listingId, actor } });
  const reactivated: ListingEvent = { type: 'ListingReactivated', data: { listingId } };

  it('by an admin who is not the owner, was moderation: the owner may not reactivate it', () => {
    spec.given([created, storedBefore(admin)]).when(reactivate(owner)).thenFails('forbidden');
    expect(fold(listingDecider, [created, storedBefore(admin)])).toMatchObject({ status: 'inactive', moderated: true });
  });
  it('by an admin who is not the owner, an admin may reactivate', () => spec.given([created, storedBefore(admin)]).when(reactivate(admin)).then([reactivated]));
  it('by an admin who is not the owner, is already true when an admin deactivates again', () =>
    spec.given([created, storedBefore(admin)]).when(deactivate(admin)).then([]));
  it.each([
    ['its owner', owner],
    ['its owner, who is an admin', ownerAdmin],
    ['someone its metadata does not name', undefined],
  ])('by %s, is the owner\'s own: the owner may reactivate it', (_who, by) =>
    spec.given([created, storedBefore(by)]).when(reactivate(owner)).then([reactivated]));
  it('by its owner, becomes moderation when an admin deactivates it again', () =>
    spec.given([created, storedBefore(owner)]).when(deactivate(admin)).then([moderated]));
});

describe('ReactivateListing', () => {
  const reactivate = (actor: Actor): ListingCommand => ({ type: 'ReactivateListing', data: { listingId, actor } });
  const reactivated: ListingEvent = { type: 'ListingReactivated', data: { listingId } };
  it('reactivates an inactive listing', () => spec.given([created, deactivated]).when(reactivate(owner)).then([reactivated]));
  it('may be done by an admin', () => spec.given([created, deactivated]).when(reactivate(admin)).then([reactivated]));
  it('is already true for an active listing', () => spec.given([created]).when(reactivate(owner)).then([]));
  it('refuses another owner', () => spec.given([created, deactivated]).when(reactivate(stranger)).thenFails('forbidden'));
  it('refuses the owner a listing an admin deactivated, saying so', () => {
    spec.given([created, moderated]).when(reactivate(owner)).thenFails('forbidden');
    expect(() => listingDecider.decide(reactivate(owner), fold(listingDecider, [created, moderated]))).toThrow(/an admin deactivated/);
  });
  it('refuses the owner a listing an admin deactivated after the owner had', () =>
    spec.given([created, deactivated, moderated]).when(reactivate(owner)).thenFails('forbidden'));
  it.each([
    ['an admin', admin],
    ['an owner who is an admin', ownerAdmin],
  ])('lets %s reactivate a listing an admin deactivated', (_who, actor) => spec.given([created, moderated]).when(reactivate(actor)).then([reactivated]));
  it('lets the owner reactivate their own deactivation after an admin reactivated a moderated one', () =>
    spec.given([created, moderated, reactivated, deactivated]).when(reactivate(owner)).then([reactivated]));
  it('refuses a listing that does not exist', () => spec.given([]).when(reactivate(owner)).thenFails('not-found'));
  it('leaves an active listing', () => expect(fold(listingDecider, [created, deactivated, reactivated]).status).toBe('active'));
});
