import { describe, expect, it } from 'vitest';
import { createEventCodec } from '../../src/application/command-handling/event-codec.js';
import { listingEventSchema } from '../../src/domain/listing/listing.events.js';
import { listingUpcasters } from '../../src/domain/listing/listing.upcasters.js';

const listingId = 'listing-a';
const codec = createEventCodec(listingEventSchema, listingUpcasters);
const byAdmin = { actorId: 'admin-1', actorRoles: ['ADMIN'], requestId: 'req-1' };

describe('ListingDeactivated v1 → v2', () => {
  it('writes new deactivations as version 2', () => expect(codec.schemaVersion('ListingDeactivated')).toBe(2));

  it('reads who made a version 1 deactivation from its metadata', () => {
    expect(codec.decode({ type: 'ListingDeactivated', data: { listingId }, metadata: { ...byAdmin, schemaVersion: 1 } })).toEqual({
      type: 'ListingDeactivated',
      data: { listingId, deactivatedBy: { id: 'admin-1', admin: true } },
    });
    const byOwner = { actorId: 'owner-1', actorRoles: ['OWNER'], schemaVersion: 1 };
    expect(codec.decode({ type: 'ListingDeactivated', data: { listingId }, metadata: byOwner }).data).toEqual({ listingId, deactivatedBy: { id: 'owner-1', admin: false } });
  });

  it('keeps the flag a version 1 deactivation recorded', () => {
    const event = codec.decode({ type: 'ListingDeactivated', data: { listingId, moderated: true }, metadata: { ...byAdmin, schemaVersion: 1 } });
    expect(event.data).toEqual({ listingId, moderated: true, deactivatedBy: { id: 'admin-1', admin: true } });
  });

  it('reads a version 1 deactivation whose metadata names no actor as it was', () =>
    expect(codec.decode({ type: 'ListingDeactivated', data: { listingId }, metadata: { schemaVersion: 1 } }).data).toEqual({ listingId }));

  it('reads a version 2 event as written', () =>
    expect(codec.decode({ type: 'ListingDeactivated', data: { listingId }, metadata: { ...byAdmin, schemaVersion: 2 } }).data).toEqual({ listingId }));

  it('refuses stored data that is not a v1 ListingDeactivated', () =>
    expect(() => codec.decode({ type: 'ListingDeactivated', data: { listingId, moderated: 'yes' }, metadata: { ...byAdmin, schemaVersion: 1 } })).toThrow());
});
